// The model store: manifest → files, each from IndexedDB when it is there, else downloaded with
// progress, verified against its sha256 and stored. Files are keyed by their sha256, so a file
// that two models (or two versions) share is stored once, and a changed file is a new key. A
// graph's external data shards are files of their own, fetched one after another: a download
// holds one shard in flight, and each is verified before the next starts. A downloaded file is
// handed on as soon as it is verified; its write to IndexedDB (a few hundred ms for the bundled
// model) goes on beside the sessions' creation, and `stored` settles when every write has. Each
// file is stored as chunks (src/store/chunkedFiles.ts), written while it downloads; it counts as
// stored only once verified and complete.
// Runs in the worker and in the page (idb-keyval works in both).
import { clear, createStore, get, type UseStore } from 'idb-keyval';
import {
  causeText,
  FlamingoError,
  type Manifest,
  type ManifestFile,
  type ModelFileRole,
  type ExternalData,
  type ProgressEvent,
  MODEL_FILE_ROLES,
  withShards,
} from '../engine/types';
import { validateManifest } from '../engine/manifest';
import { download, DOWNLOAD_RETRIES } from './download';
import { FLOAT32, variantFiles } from '../engine/variants';
import { clearLatentStore } from './latentStore';
import { verifyFile } from './verify';
import {
  chunkWriter,
  deleteStoredFiles,
  idbKeyValue,
  isFileStored,
  readStoredFile,
  storedHashes,
  storeFileBytes,
  type KeyValueStore,
} from './chunkedFiles';

/** Something went wrong that the user should know about, but the model still runs. */
export interface StoreWarning {
  type: 'warning';
  code: 'cache-unavailable' | 'cache-write-failed' | 'cache-corrupt' | 'download-retry';
  message: string;
  file?: string;
  cause?: string;
}

export interface LoadedModel {
  manifest: Manifest;
  files: Record<ModelFileRole, Uint8Array>;
  /** The shards of graphs whose weights are external data. */
  externalData: ExternalData;
  /** Where each file came from this time (a graph with shards: 'cache' only when they all were). */
  sources: Record<ModelFileRole, 'cache' | 'network'>;
  /** The variant whose files these are (`float32`: the default files). */
  variant: string;
  warnings: StoreWarning[];
  /** The cache writes still in flight. Never rejects: a failed write is a warning. Await it before reporting the load. */
  stored: Promise<void>;
}

export interface LoadModelOptions {
  /** A manifest already in hand (the bundled model's, imported at build time): not fetched. */
  manifest?: Manifest;
  onWarning?: (warning: StoreWarning) => void;
  signal?: AbortSignal;
  /** A variant's files in place of the roles it replaces (default: float32). */
  variant?: string;
}

const ROLES: readonly ModelFileRole[] = MODEL_FILE_ROLES;

let fileStore: UseStore | undefined;
function modelFilesStore(): UseStore {
  fileStore ??= createStore('flamingo-web-models', 'files');
  return fileStore;
}
const modelFiles = (): KeyValueStore => idbKeyValue(modelFilesStore());

/** `baseUrl` is the model folder (with or without a trailing slash), absolute or page-relative. */
export async function loadModel(
  baseUrl: string,
  onProgress: (event: ProgressEvent) => void,
  opts: LoadModelOptions = {},
): Promise<LoadedModel> {
  const base = folderUrl(baseUrl);
  const warnings: StoreWarning[] = [];
  const warn = (warning: StoreWarning) => {
    warnings.push(warning);
    opts.onWarning?.(warning);
  };

  const manifest = opts.manifest ?? (await fetchManifest(base, onProgress, opts.signal));
  const variant = opts.variant ?? FLOAT32;
  const entries = variantFiles(manifest, variant);
  const cache = await openCache(warn);
  // Files load in parallel; the first failure stops the others (no progress after the error).
  const siblings = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, siblings.signal]) : siblings.signal;
  const writes: Promise<void>[] = [];
  const loadGraph = async (file: ManifestFile) => {
    const graph = await loadFile(base, file, cache, onProgress, warn, signal);
    writes.push(graph.stored);
    const shards: { path: string; data: Uint8Array }[] = [];
    let source = graph.source;
    for (const shard of file.external_data ?? []) {
      const { bytes, source: from, stored } = await loadFile(base, shard, cache, onProgress, warn, signal);
      writes.push(stored);
      shards.push({ path: shard.path, data: bytes });
      if (from === 'network') source = 'network';
    }
    return { bytes: graph.bytes, shards, source };
  };
  const loaded = await Promise.all(
    ROLES.map((role) =>
      loadGraph(entries[role]).catch((error: unknown) => {
        siblings.abort();
        throw error;
      }),
    ),
  );
  const files = {} as Record<ModelFileRole, Uint8Array>;
  const externalData: ExternalData = {};
  const sources = {} as Record<ModelFileRole, 'cache' | 'network'>;
  ROLES.forEach((role, i) => {
    files[role] = loaded[i].bytes;
    if (loaded[i].shards.length) externalData[role] = loaded[i].shards;
    sources[role] = loaded[i].source;
  });
  return { manifest, files, externalData, sources, variant, warnings, stored: Promise.all(writes).then(() => undefined) };
}

/** The manifest alone (validated), e.g. to choose a variant before any file is loaded. */
export function loadManifest(baseUrl: string, onProgress: (event: ProgressEvent) => void, signal?: AbortSignal) {
  return fetchManifest(folderUrl(baseUrl), onProgress, signal);
}

async function fetchManifest(base: URL, onProgress: (event: ProgressEvent) => void, signal?: AbortSignal) {
  const url = new URL('manifest.json', base);
  onProgress({ type: 'progress', phase: 'manifest', file: 'manifest.json', loadedBytes: 0, totalBytes: 0 });
  let response: Response;
  try {
    response = await fetch(url, { cache: 'no-cache', signal });
  } catch (cause) {
    throw new FlamingoError(`Could not fetch the model manifest ${url.href}.`, { cause });
  }
  if (!response.ok) {
    throw new FlamingoError(`Could not fetch the model manifest ${url.href}: HTTP ${response.status}.`);
  }
  let json: unknown;
  try {
    json = await response.json();
  } catch (cause) {
    throw new FlamingoError(`The model manifest ${url.href} is not valid JSON.`, { cause });
  }
  try {
    return validateManifest(json);
  } catch (cause) {
    throw new FlamingoError(`${url.href} is not a usable flamingo-web model manifest: ${(cause as Error).message}`, { cause });
  }
}

async function loadFile(
  base: URL,
  file: ManifestFile,
  cache: KeyValueStore | undefined,
  onProgress: (event: ProgressEvent) => void,
  warn: (warning: StoreWarning) => void,
  signal?: AbortSignal,
): Promise<{ bytes: Uint8Array; source: 'cache' | 'network'; stored: Promise<void> }> {
  const name = file.path;
  const progress = (phase: ProgressEvent['phase'], loadedBytes: number) =>
    onProgress({ type: 'progress', phase, file: name, loadedBytes, totalBytes: file.bytes });

  const cached = cache && (await readCached(cache, file, warn));
  if (cached) {
    progress('verify', 0);
    try {
      await verifyFile(cached, file, name);
      progress('verify', file.bytes);
      return { bytes: cached, source: 'cache', stored: Promise.resolve() };
    } catch (cause) {
      // A damaged cache entry must not stick: drop it and download the file again.
      warn({
        type: 'warning',
        code: 'cache-corrupt',
        file: name,
        message: `The cached copy of ${name} was damaged; downloading it again.`,
        cause: causeText(cause),
      });
      await deleteStoredFiles(cache, [file.sha256]).catch(() => undefined);
    }
  }

  const writer = cache && chunkWriter(cache, file);
  const onBytes = (loaded: number, bytes: Uint8Array) => {
    progress('download', loaded);
    writer?.add(bytes, loaded);
  };
  let bytes: Uint8Array;
  try {
    bytes = await download(new URL(name, base), file, onBytes, {
      signal,
      onRetry: (attempt, loadedBytes, cause) =>
        warn({
          type: 'warning',
          code: 'download-retry',
          file: name,
          message: `The download of ${name} broke off${loadedBytes ? ` after ${formatBytes(loadedBytes)}` : ''}; trying again (${attempt} of ${DOWNLOAD_RETRIES}).`,
          cause: causeText(cause),
        }),
    });
    progress('verify', 0);
    await verifyFile(bytes, file, name);
  } catch (error) {
    // A file that failed or failed its hash is never stored: no record, and its chunks go.
    void writer?.discard().catch(() => undefined);
    throw error;
  }
  progress('verify', file.bytes);

  return { bytes, source: 'network', stored: writer ? storeFile(writer, file, bytes, progress, warn) : Promise.resolve() };
}

/** Writes a verified file to the cache; a failure is a warning (the model runs from memory). */
async function storeFile(
  writer: ReturnType<typeof chunkWriter>,
  file: ManifestFile,
  bytes: Uint8Array,
  progress: (phase: ProgressEvent['phase'], loadedBytes: number) => void,
  warn: (warning: StoreWarning) => void,
): Promise<void> {
  const name = file.path;
  progress('cache', 0);
  try {
    await writer.commit(bytes);
    progress('cache', file.bytes);
  } catch (cause) {
    const quota = cause instanceof DOMException && cause.name === 'QuotaExceededError';
    warn({
      type: 'warning',
      code: 'cache-write-failed',
      file: name,
      message: quota
        ? `Not enough browser storage to keep ${name} (${formatBytes(file.bytes)}). The model runs from memory now and will be downloaded again on the next visit.`
        : `Could not store ${name} in the browser's storage. The model runs from memory now and will be downloaded again on the next visit.`,
      cause: causeText(cause),
    });
  }
}

/** The file store, or undefined (after one warning) where IndexedDB does not work at all. */
async function openCache(warn: (warning: StoreWarning) => void): Promise<KeyValueStore | undefined> {
  try {
    await get('probe', modelFilesStore());
    return modelFiles();
  } catch (cause) {
    warn({
      type: 'warning',
      code: 'cache-unavailable',
      message: "The browser's storage (IndexedDB) is not available here, so the model is downloaded on every visit.",
      cause: causeText(cause),
    });
    return undefined;
  }
}

async function readCached(
  cache: KeyValueStore,
  file: ManifestFile,
  warn: (warning: StoreWarning) => void,
): Promise<Uint8Array | undefined> {
  try {
    return await readStoredFile(cache, file);
  } catch (cause) {
    warn({
      type: 'warning',
      code: 'cache-corrupt',
      file: file.path,
      message: `Could not read the cached copy of ${file.path}; downloading it again.`,
      cause: causeText(cause),
    });
    // A record whose chunks are gone must not outlive a download that breaks off.
    await deleteStoredFiles(cache, [file.sha256]).catch(() => undefined);
    return undefined;
  }
}

function folderUrl(baseUrl: string): URL {
  const withSlash = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return new URL(withSlash, globalThis.location?.href);
}

/** Deletes every cached model file (all models), and the image latents computed with them. */
export async function clearModelCache(): Promise<void> {
  try {
    await Promise.all([clear(modelFilesStore()), clearLatentStore()]);
  } catch (cause) {
    throw new FlamingoError("Could not clear the model cache in the browser's storage.", { cause });
  }
}

/** The sha256 (lower-case hex) of every file in the cache: what the model manager lists. */
export async function cachedFileHashes(): Promise<Set<string>> {
  return storedHashes(modelFiles());
}

/** Bytes of these files (shards included) already in the cache: what a download would skip. */
export async function cachedBytes(files: readonly ManifestFile[]): Promise<number> {
  try {
    const hashes = await cachedFileHashes();
    return files.flatMap(withShards).reduce((sum, f) => sum + (hashes.has(f.sha256.toLowerCase()) ? f.bytes : 0), 0);
  } catch {
    return 0;
  }
}

/** Deletes these files from the cache (files another model shares are the caller's to keep). */
export async function deleteCachedFiles(files: readonly ManifestFile[]): Promise<void> {
  try {
    await deleteStoredFiles(modelFiles(), files.map((file) => file.sha256));
  } catch (cause) {
    throw new FlamingoError("Could not delete model files from the browser's storage.", { cause });
  }
}

/** Stores a file already checked against its manifest entry (a model folder picked from disk). */
export async function storeVerifiedFile(file: ManifestFile, bytes: Uint8Array): Promise<void> {
  await verifyFile(bytes, file, file.path);
  try {
    await storeFileBytes(modelFiles(), file, bytes);
  } catch (cause) {
    const quota = cause instanceof DOMException && cause.name === 'QuotaExceededError';
    throw new FlamingoError(
      quota
        ? `Not enough browser storage to keep ${file.path} (${formatBytes(file.bytes)}).`
        : `Could not store ${file.path} in the browser's storage.`,
      { cause },
    );
  }
}

/** True when every file of the manifest is in IndexedDB (no check of their contents). */
export async function isModelCached(manifest: Manifest): Promise<boolean> {
  try {
    const all = ROLES.flatMap((role) => withShards(manifest.files[role]));
    const store = modelFiles();
    return (await Promise.all(all.map((file) => isFileStored(store, file)))).every(Boolean);
  } catch {
    return false;
  }
}

let persistenceAsked: Promise<boolean> | undefined;
/**
 * Asks the browser once per page to exempt this origin's storage from eviction, so the cached
 * model survives storage pressure. Window only (`persist()` is not exposed in workers).
 */
export function requestPersistentStorage(): Promise<boolean> {
  persistenceAsked ??= (async () => {
    const storage = globalThis.navigator?.storage;
    if (!storage?.persist) return false;
    try {
      return (await storage.persisted()) || (await storage.persist());
    } catch {
      return false;
    }
  })();
  return persistenceAsked;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
