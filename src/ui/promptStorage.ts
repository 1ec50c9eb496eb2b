// The prompt the user built survives a reload: the segment list (small, rewritten on every
// edit) and each image's original file (written once, when it is added) live in IndexedDB.
import { createStore, del, delMany, get, keys, set, type UseStore } from 'idb-keyval';

export type EditorSegment =
  | { id: string; kind: 'image'; name: string }
  | { id: string; kind: 'text'; text: string };

interface SavedPrompt {
  version: 1;
  segments: EditorSegment[];
}

let store: UseStore | undefined;
function uiStore(): UseStore {
  store ??= createStore('flamingo-web-ui', 'prompt');
  return store;
}

const PROMPT_KEY = 'prompt';
const imageKey = (id: string) => `image:${id}`;

export async function loadSavedPrompt(): Promise<{ segments: EditorSegment[]; blobs: Map<string, Blob> }> {
  const saved = await get<SavedPrompt>(PROMPT_KEY, uiStore());
  const segments: EditorSegment[] = [];
  const blobs = new Map<string, Blob>();
  if (saved?.version !== 1) return { segments, blobs };
  for (const segment of saved.segments) {
    if (segment.kind === 'image') {
      const blob = await get<Blob>(imageKey(segment.id), uiStore());
      if (!(blob instanceof Blob)) continue; // its file is gone: drop the segment, keep the rest
      blobs.set(segment.id, blob);
    }
    segments.push(segment);
  }
  return { segments, blobs };
}

/** `dropOrphans` also deletes stored images that no segment uses any more (once per visit is enough). */
export async function savePrompt(segments: EditorSegment[], dropOrphans = false): Promise<void> {
  await set(PROMPT_KEY, { version: 1, segments } satisfies SavedPrompt, uiStore());
  if (dropOrphans) await dropOrphanImages(segments);
}

/** Images saved during this visit: never orphans, even if saved while orphans are dropped. */
const savedThisVisit = new Set<string>();

export function saveImage(id: string, blob: Blob): Promise<void> {
  savedThisVisit.add(imageKey(id));
  return set(imageKey(id), blob, uiStore());
}

export function deleteImage(id: string): Promise<void> {
  return del(imageKey(id), uiStore());
}

async function dropOrphanImages(segments: EditorSegment[]): Promise<void> {
  const live = new Set([...savedThisVisit, ...segments.map((segment) => imageKey(segment.id))]);
  const orphans = (await keys(uiStore())).filter((key) => typeof key === 'string' && key.startsWith('image:') && !live.has(key));
  if (orphans.length > 0) await delMany(orphans, uiStore());
}
