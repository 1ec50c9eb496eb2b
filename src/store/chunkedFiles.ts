// Model files in IndexedDB as chunks, not one value each: off the record (a private window,
// Playwright's default context) Chromium refuses any single value over 127 MiB, and a model's
// shards are 500 MB. Per file, `hex` being its sha256:
//   `sha256:<hex>`       {chunks, bytes, chunkBytes}, written last: once every chunk is stored and
//                        the file verified. Without it (a download or a write broken off) the file
//                        is not stored, whatever chunks it left.
//   `chunk:<hex>:<i>`    bytes [i·chunkBytes, (i+1)·chunkBytes) of the file, an ArrayBuffer.
// Before chunking, `sha256:<hex>` held the whole file as one ArrayBuffer; such an entry is still
// read as it is (its sha256 is checked on load like any other), and deleted with the same key.
import { delMany, get, keys, set, type UseStore } from 'idb-keyval';

/** Under the 127 MiB limit with room to spare; a few chunks in flight cost little memory. */
export const CHUNK_BYTES = 64 * 1024 * 1024;

/** The part of an IndexedDB object store used here (tests give a Map-backed one). */
export interface KeyValueStore {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  delMany(keys: string[]): Promise<void>;
  keys(): Promise<IDBValidKey[]>;
}

export function idbKeyValue(store: UseStore): KeyValueStore {
  return {
    get: (key) => get(key, store),
    set: (key, value) => set(key, value, store),
    delMany: (keys) => delMany(keys, store),
    keys: () => keys(store),
  };
}

interface FileRecord {
  chunks: number;
  bytes: number;
  chunkBytes: number;
}

/** What a file is known by: its sha256 (any case) and size, as in its manifest entry. */
export interface StoredFileId {
  sha256: string;
  bytes: number;
}

const RECORD_PREFIX = 'sha256:';
const recordKey = (hex: string) => `${RECORD_PREFIX}${hex}`;
const chunkPrefix = (hex: string) => `chunk:${hex}:`;
const chunkKey = (hex: string, index: number) => `${chunkPrefix(hex)}${index}`;

function isRecord(value: unknown): value is FileRecord {
  const r = value as FileRecord | undefined;
  return typeof r === 'object' && r !== null && [r.chunks, r.bytes, r.chunkBytes].every(Number.isSafeInteger);
}

/** True when the file is stored whole (either layout); its chunks are not read. */
export async function isFileStored(store: KeyValueStore, file: StoredFileId): Promise<boolean> {
  const value = await store.get(recordKey(file.sha256.toLowerCase()));
  return value instanceof ArrayBuffer || isRecord(value);
}

/**
 * Writes one file chunk by chunk while it downloads: `add` stores each chunk the bytes so far
 * complete, `commit` (after the sha256 check) the rest and then the record; a commit that fails
 * removes what was written, as `discard` does. Chunks are copies: a view would store its whole underlying buffer.
 */
export function chunkWriter(store: KeyValueStore, file: StoredFileId, chunkBytes = CHUNK_BYTES) {
  const hex = file.sha256.toLowerCase();
  const chunks = Math.max(1, Math.ceil(file.bytes / chunkBytes));
  const writes: Promise<void>[] = [];
  let next = 0;
  const add = (bytes: Uint8Array, loadedBytes: number) => {
    for (; next < chunks && Math.min((next + 1) * chunkBytes, file.bytes) <= loadedBytes; next++) {
      const start = next * chunkBytes;
      const write = store.set(chunkKey(hex, next), bytes.slice(start, Math.min(start + chunkBytes, file.bytes)).buffer);
      write.catch(() => undefined); // reported by commit; not an unhandled rejection meanwhile
      writes.push(write);
    }
  };
  const discard = async (): Promise<void> => {
    await Promise.allSettled(writes);
    await deleteStoredFiles(store, [hex]);
  };
  const commit = async (bytes: Uint8Array): Promise<void> => {
    try {
      add(bytes, file.bytes);
      await Promise.all(writes);
      await store.set(recordKey(hex), { chunks, bytes: file.bytes, chunkBytes } satisfies FileRecord);
    } catch (error) {
      await discard().catch(() => undefined);
      throw error;
    }
  };
  return { add, commit, discard };
}

/** Stores a whole file in memory (chunked all the same). */
export const storeFileBytes = (store: KeyValueStore, file: StoredFileId, bytes: Uint8Array, chunkBytes = CHUNK_BYTES) =>
  chunkWriter(store, file, chunkBytes).commit(bytes);

/** The file's bytes, reassembled; undefined when it is not stored. Throws when the entry is damaged. */
export async function readStoredFile(store: KeyValueStore, file: StoredFileId): Promise<Uint8Array | undefined> {
  const hex = file.sha256.toLowerCase();
  const value = await store.get(recordKey(hex));
  if (value instanceof ArrayBuffer) return new Uint8Array(value); // the layout before chunks
  if (!isRecord(value)) return undefined;
  const bytes = new Uint8Array(value.bytes);
  // One chunk read at a time: the file and one chunk in memory, never the file twice.
  for (let i = 0; i < value.chunks; i++) {
    const chunk = await store.get(chunkKey(hex, i));
    const start = i * value.chunkBytes;
    const expected = Math.min(value.chunkBytes, value.bytes - start);
    if (!(chunk instanceof ArrayBuffer) || chunk.byteLength !== expected) {
      throw new Error(`Chunk ${i} of ${value.chunks} is missing or has the wrong size.`);
    }
    bytes.set(new Uint8Array(chunk), start);
  }
  return bytes;
}

/** The sha256 of every file stored whole: a record (or an old whole value), never bare chunks. */
export async function storedHashes(store: KeyValueStore): Promise<Set<string>> {
  const all = await store.keys();
  return new Set(all.flatMap((key) => (typeof key === 'string' && key.startsWith(RECORD_PREFIX) ? [key.slice(RECORD_PREFIX.length)] : [])));
}

/** Deletes these files: their records and every chunk, also those a broken-off write left. */
export async function deleteStoredFiles(store: KeyValueStore, sha256s: readonly string[]): Promise<void> {
  const prefixes = sha256s.map((hex) => chunkPrefix(hex.toLowerCase()));
  const chunks = (await store.keys()).filter(
    (key): key is string => typeof key === 'string' && prefixes.some((prefix) => key.startsWith(prefix)),
  );
  await store.delMany([...sha256s.map((hex) => recordKey(hex.toLowerCase())), ...chunks]);
}
