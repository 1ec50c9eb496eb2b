// The example library: labelled images the visitor keeps between visits, in IndexedDB
// (`flamingo-web-library`, one entry per example). Each is a PNG and the text that followed it in
// a prompt. An example already in the library (same image, same text) is not added twice.
import { del, entries, setMany } from 'idb-keyval';
import { FlamingoError } from '../engine/types';
import { parseLibraryFile, serializeLibrary, type ExampleRecord } from './exampleLibraryFile';
import { openStore, StorageUnavailable } from './openStore';
import { sha256Hex } from './verify';

export interface LibraryExample {
  id: string;
  name: string;
  text: string;
  /** image/png */
  image: Blob;
  /** sha256 of the PNG: the same image under another name is the same example. */
  sha256: string;
  addedAt: number;
}

export interface NewExample {
  name: string;
  text: string;
  /** A PNG file (the caller converts other formats). */
  png: Uint8Array;
}

const library = openStore('flamingo-web-library', 'examples');

const sameExample = (a: { sha256: string; text: string }, b: { sha256: string; text: string }) =>
  a.sha256 === b.sha256 && a.text.trim() === b.text.trim();

/** Oldest first. */
export async function listExamples(): Promise<LibraryExample[]> {
  try {
    const all = await entries<string, LibraryExample>(await library());
    return all.map(([, example]) => example).sort((a, b) => a.addedAt - b.addedAt || a.id.localeCompare(b.id));
  } catch (cause) {
    if (cause instanceof StorageUnavailable) {
      throw new FlamingoError('The example library is kept in the browser’s storage (IndexedDB), which is not available here: it cannot be used on this page.', { cause });
    }
    throw new FlamingoError('Could not read the example library from the browser’s storage.', { cause });
  }
}

/** Adds the examples not already there; returns how many were added. */
export async function addExamples(examples: readonly NewExample[], addedAt = Date.now()): Promise<number> {
  const existing = await listExamples();
  const fresh: LibraryExample[] = [];
  for (const [index, example] of examples.entries()) {
    const sha256 = await sha256Hex(example.png);
    const candidate = { sha256, text: example.text };
    if ([...existing, ...fresh].some((other) => sameExample(other, candidate))) continue;
    fresh.push({
      id: crypto.randomUUID(),
      name: example.name,
      text: example.text,
      image: new Blob([example.png.slice().buffer], { type: 'image/png' }),
      sha256,
      addedAt: addedAt + index,
    });
  }
  if (fresh.length === 0) return 0;
  try {
    await setMany(fresh.map((example) => [example.id, example]), await library());
  } catch (cause) {
    const quota = cause instanceof DOMException && cause.name === 'QuotaExceededError';
    throw new FlamingoError(
      quota
        ? 'Not enough browser storage to add these examples to the library.'
        : 'Could not save the examples in the browser’s storage.',
      { cause },
    );
  }
  return fresh.length;
}

export async function deleteExample(id: string): Promise<void> {
  try {
    await del(id, await library());
  } catch (cause) {
    throw new FlamingoError('Could not delete the example from the browser’s storage.', { cause });
  }
}

export async function exportLibrary(examples: readonly LibraryExample[]): Promise<string> {
  const records: ExampleRecord[] = await Promise.all(
    examples.map(async ({ name, text, image, addedAt }) => ({ name, text, addedAt, png: new Uint8Array(await image.arrayBuffer()) })),
  );
  return serializeLibrary(records);
}

/**
 * Reads a library file and adds its examples (the ones not already there). The whole file is
 * checked first: a bad file throws a LibraryFileError and the library stays as it was.
 */
export async function importLibrary(contents: string): Promise<{ added: number; inFile: number }> {
  const records = parseLibraryFile(contents);
  const added = await addExamples(records.map(({ name, text, png }) => ({ name, text, png })));
  return { added, inFile: records.length };
}
