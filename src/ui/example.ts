// "Load example": a small 2-shot prompt shipped in public/examples/, in the episode format
// (DESIGN.md, "Episode files"): image paths relative to the JSON file.
import { FlamingoError } from '../engine/types';
import type { NewImage } from './usePrompt';

interface ExampleFile {
  segments: ({ image: string } | { text: string })[];
}

export async function loadExample(): Promise<({ text: string } | NewImage)[]> {
  const url = new URL(`${import.meta.env.BASE_URL}examples/two-shot.json`, window.location.href);
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const example = (await response.json()) as ExampleFile;
    return await Promise.all(
      example.segments.map(async (segment) => {
        if ('text' in segment) return { text: segment.text };
        const image = await fetch(new URL(segment.image, url));
        if (!image.ok) throw new Error(`${segment.image}: HTTP ${image.status}`);
        return { blob: await image.blob(), name: segment.image.split('/').pop() ?? segment.image };
      }),
    );
  } catch (cause) {
    throw new FlamingoError('Could not load the example prompt.', { cause });
  }
}
