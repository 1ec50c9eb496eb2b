// The studio's gallery: ready few-shot prompts in public/examples/gallery/ (written by
// scripts/make-gallery.mjs from held-out evaluation episodes), in the episode format.
import { FlamingoError } from '../engine/types';
import type { TaskId } from './presets';
import type { NewImage } from './usePrompt';

export interface GalleryExample {
  id: string;
  task: TaskId;
  title: string;
  description: string;
  segments: ({ image: string } | { text: string })[];
  answer: string;
  options?: string[];
}

const TASK_IDS: readonly TaskId[] = ['caption', 'question_answering', 'classify', 'teach'];

export const galleryUrl = () => new URL(`${import.meta.env.BASE_URL}examples/gallery/gallery.json`, window.location.href);

/** An image of an example, as a URL (thumbnails). */
export const galleryImageUrl = (path: string) => new URL(path, galleryUrl()).href;

export async function loadGallery(): Promise<GalleryExample[]> {
  try {
    const response = await fetch(galleryUrl());
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const json = (await response.json()) as { examples?: unknown };
    if (!Array.isArray(json.examples)) throw new Error('no examples list');
    return json.examples.filter(isExample);
  } catch (cause) {
    throw new FlamingoError('Could not load the gallery of examples.', { cause });
  }
}

function isExample(value: unknown): value is GalleryExample {
  const example = value as Partial<GalleryExample>;
  return (
    typeof example.id === 'string' &&
    typeof example.title === 'string' &&
    TASK_IDS.includes(example.task as TaskId) &&
    Array.isArray(example.segments)
  );
}

/** The example's prompt, its images fetched as files. */
export async function galleryPrompt(example: GalleryExample): Promise<({ text: string } | NewImage)[]> {
  try {
    return await Promise.all(
      example.segments.map(async (segment) => {
        if ('text' in segment) return { text: segment.text };
        const response = await fetch(galleryImageUrl(segment.image));
        if (!response.ok) throw new Error(`${segment.image}: HTTP ${response.status}`);
        return { blob: await response.blob(), name: segment.image };
      }),
    );
  } catch (cause) {
    throw new FlamingoError(`Could not load the example “${example.title}”.`, { cause });
  }
}
