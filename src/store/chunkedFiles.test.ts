import { describe, expect, it } from 'vitest';
import {
  chunkWriter,
  deleteStoredFiles,
  isFileStored,
  readStoredFile,
  storedHashes,
  storeFileBytes,
  type KeyValueStore,
} from './chunkedFiles';

/**
 * An object store in memory that, like Chromium off the record, refuses a value over `maxValueBytes`;
 * values are structured-cloned as IndexedDB does. `failSet` makes chosen writes fail.
 */
function memoryStore(maxValueBytes: number, failSet: (key: string) => boolean = () => false) {
  const map = new Map<string, unknown>();
  const store: KeyValueStore = {
    get: async (key) => map.get(key),
    set: async (key, value) => {
      if (value instanceof ArrayBuffer && value.byteLength > maxValueBytes) {
        throw new DOMException('The serialized keys and/or value are too large.', 'UnknownError');
      }
      if (failSet(key)) throw new DOMException('write failed', 'UnknownError');
      map.set(key, structuredClone(value));
    },
    delMany: async (keys) => keys.forEach((key) => map.delete(key)),
    keys: async () => [...map.keys()],
  };
  return { store, map };
}

const CHUNK = 64;
const FILE = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) % 251); // 15 full chunks and 40 bytes
const file = { sha256: 'AB'.repeat(32), bytes: FILE.length };
const hex = file.sha256.toLowerCase();

describe('model files stored as chunks', () => {
  it('round-trips a file larger than one value may be, byte-exact, as it downloads', async () => {
    const { store, map } = memoryStore(CHUNK);
    const writer = chunkWriter(store, file, CHUNK);
    // the download's buffer fills in uneven steps; each completed chunk is written at once
    const buffer = new Uint8Array(FILE.length);
    for (const loaded of [10, 64, 200, 999]) {
      buffer.set(FILE.subarray(0, loaded));
      writer.add(buffer, loaded);
    }
    expect([...map.keys()].filter((key) => key.startsWith('chunk:'))).toHaveLength(15);
    buffer.set(FILE);
    await writer.commit(buffer);
    expect(map.size).toBe(16 + 1);
    expect(await isFileStored(store, file)).toBe(true);
    expect(await storedHashes(store)).toEqual(new Set([hex]));
    const read = await readStoredFile(store, file);
    expect(read).toEqual(FILE);
    expect(read!.buffer.byteLength).toBe(FILE.length);
  });

  it('does not take an interrupted write as stored', async () => {
    const { store } = memoryStore(CHUNK);
    const writer = chunkWriter(store, file, CHUNK);
    writer.add(FILE, 500); // the download broke off (or the tab closed) here: no commit
    await Promise.resolve();
    expect(await isFileStored(store, file)).toBe(false);
    expect(await readStoredFile(store, file)).toBeUndefined();
    expect(await storedHashes(store)).toEqual(new Set());
  });

  it('removes what it wrote when a chunk write fails, and stores nothing', async () => {
    const { store, map } = memoryStore(CHUNK, (key) => key.endsWith(':9'));
    await expect(storeFileBytes(store, file, FILE, CHUNK)).rejects.toThrow('write failed');
    expect(map.size).toBe(0);
  });

  it('refuses an entry with a chunk missing', async () => {
    const { store, map } = memoryStore(CHUNK);
    await storeFileBytes(store, file, FILE, CHUNK);
    map.delete(`chunk:${hex}:3`);
    await expect(readStoredFile(store, file)).rejects.toThrow('Chunk 3 of 16');
  });

  it('deletes every chunk of a file, those of a broken-off write too, and no other file', async () => {
    const { store, map } = memoryStore(CHUNK);
    const other = { sha256: 'cd'.repeat(32), bytes: 100 };
    await storeFileBytes(store, other, FILE.subarray(0, 100), CHUNK);
    await storeFileBytes(store, file, FILE, CHUNK);
    map.set(`chunk:${hex}:99`, new ArrayBuffer(1)); // left by an older, interrupted write
    await deleteStoredFiles(store, [file.sha256]);
    expect([...map.keys()].some((key) => key.includes(hex))).toBe(false);
    expect(await readStoredFile(store, other)).toEqual(FILE.subarray(0, 100));
  });

  it('reads a file stored whole by the version before chunks, and deletes it', async () => {
    const { store, map } = memoryStore(Infinity);
    map.set(`sha256:${hex}`, FILE.slice().buffer);
    expect(await isFileStored(store, file)).toBe(true);
    expect(await storedHashes(store)).toEqual(new Set([hex]));
    expect(await readStoredFile(store, file)).toEqual(FILE);
    await deleteStoredFiles(store, [hex]);
    expect(map.size).toBe(0);
  });

  it('stores an empty file as one empty chunk', async () => {
    const { store } = memoryStore(CHUNK);
    const empty = { sha256: 'ef'.repeat(32), bytes: 0 };
    await storeFileBytes(store, empty, new Uint8Array(0), CHUNK);
    expect(await readStoredFile(store, empty)).toEqual(new Uint8Array(0));
  });
});
