// The prompt the user built survives a reload: the segment list (small, rewritten on every
// edit), each image's original file and each clip's frame files (written once, when added)
// live in IndexedDB.
import { delMany, get, keys, set } from 'idb-keyval';
import { openStore } from '../store/openStore';

export { StorageUnavailable } from '../store/openStore';

export type EditorSegment =
  | { id: string; kind: 'image'; name: string }
  /** A video clip: `frames` image files (the frames of a video file are stored as PNG). */
  | { id: string; kind: 'clip'; name: string; frames: number }
  | { id: string; kind: 'text'; text: string };

interface SavedPrompt {
  version: 1;
  segments: EditorSegment[];
}

const uiStore = openStore('flamingo-web-ui', 'prompt');

const PROMPT_KEY = 'prompt';
const imageKey = (id: string) => `image:${id}`;
const clipKey = (id: string) => `clip:${id}`;
const isFileKey = (key: string) => key.startsWith('image:') || key.startsWith('clip:');

/** `blobs`: an image's file (one) or a clip's frame files, by segment id. */
export async function loadSavedPrompt(): Promise<{ segments: EditorSegment[]; blobs: Map<string, Blob[]> }> {
  const saved = await get<SavedPrompt>(PROMPT_KEY, await uiStore());
  const segments: EditorSegment[] = [];
  const blobs = new Map<string, Blob[]>();
  if (saved?.version !== 1) return { segments, blobs };
  for (const segment of saved.segments) {
    // A segment whose files are gone (or of a kind this version does not know) is dropped; the rest stays.
    if (segment.kind === 'image') {
      const blob = await get<Blob>(imageKey(segment.id), await uiStore());
      if (!(blob instanceof Blob)) continue;
      blobs.set(segment.id, [blob]);
    } else if (segment.kind === 'clip') {
      const frames = await get<Blob[]>(clipKey(segment.id), await uiStore());
      if (!Array.isArray(frames) || frames.length === 0 || !frames.every((frame) => frame instanceof Blob)) continue;
      blobs.set(segment.id, frames);
      segments.push({ ...segment, frames: frames.length });
      continue;
    } else if (segment.kind !== 'text') {
      continue;
    }
    segments.push(segment);
  }
  return { segments, blobs };
}

/** `dropOrphans` also deletes stored images and clips that no segment uses any more (once per visit is enough). */
export async function savePrompt(segments: EditorSegment[], dropOrphans = false): Promise<void> {
  await set(PROMPT_KEY, { version: 1, segments } satisfies SavedPrompt, await uiStore());
  if (dropOrphans) await dropOrphanImages(segments);
}

/** Images and clips saved during this visit: never orphans, even if saved while orphans are dropped. */
const savedThisVisit = new Set<string>();

export async function saveImage(id: string, blob: Blob): Promise<void> {
  savedThisVisit.add(imageKey(id));
  return set(imageKey(id), blob, await uiStore());
}

/** A clip's frames, in order, as one entry (an array of files). */
export async function saveClip(id: string, frames: Blob[]): Promise<void> {
  savedThisVisit.add(clipKey(id));
  return set(clipKey(id), frames, await uiStore());
}

/** Deletes the stored files of a segment (image or clip; nothing for text). */
export async function deleteFiles(id: string): Promise<void> {
  return delMany([imageKey(id), clipKey(id)], await uiStore());
}

async function dropOrphanImages(segments: EditorSegment[]): Promise<void> {
  const live = new Set([
    ...savedThisVisit,
    ...segments.flatMap((segment) => [imageKey(segment.id), clipKey(segment.id)]),
  ]);
  const orphans = (await keys(await uiStore())).filter((key) => typeof key === 'string' && isFileKey(key) && !live.has(key));
  if (orphans.length > 0) await delMany(orphans, await uiStore());
}
