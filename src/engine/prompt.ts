// Segments ⇄ OpenFlamingo-style text (DESIGN.md, "Prompts"). Every visual segment becomes
// <image>; every text segment that something follows is closed with <|endofchunk|> (so text-only
// zero-shot examples stay separate chunks too).
import type { Manifest, Prompt, RgbaImage } from './types';
import { FlamingoError } from './types';

type Special = Manifest['special_tokens'];

export interface PromptText {
  text: string;
  /** One entry per <image> in `text`, in order: the frames of that image or clip. */
  media: RgbaImage[][];
}

export function promptToText(prompt: Prompt, special: Special): PromptText {
  let text = '';
  const media: RgbaImage[][] = [];
  prompt.forEach((segment, i) => {
    if ('text' in segment) {
      if (segment.text.includes(special.image) || segment.text.includes(special.end_of_chunk)) {
        throw new FlamingoError(
          `Text segment ${i + 1} contains ${special.image} or ${special.end_of_chunk}: add an image segment instead`,
        );
      }
      text += segment.text;
      if (i < prompt.length - 1) text += special.end_of_chunk;
      return;
    }
    const frames = 'image' in segment ? [segment.image] : segment.video;
    if (frames.length === 0) throw new FlamingoError(`Video segment ${i + 1} has no frames`);
    text += special.image;
    media.push(frames);
  });
  return { text, media };
}

/** The CLI's raw string form, e.g. "<image>Output: a cat.<|endofchunk|><image>Output:", plus its images. */
export function textToPrompt(text: string, images: RgbaImage[], special: Special): Prompt {
  const nImages = text.split(special.image).length - 1;
  if (nImages !== images.length) {
    throw new FlamingoError(`The prompt has ${nImages} ${special.image} marker(s) but ${images.length} image(s) were given`);
  }
  const prompt: Prompt = [];
  let next = 0;
  const markers = new RegExp(`(${escapeRegExp(special.image)}|${escapeRegExp(special.end_of_chunk)})`);
  for (const piece of text.split(markers)) {
    if (piece === special.image) prompt.push({ image: images[next++] });
    else if (piece !== special.end_of_chunk && piece !== '') prompt.push({ text: piece });
  }
  return prompt;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
