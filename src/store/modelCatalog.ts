// Which models this browser has loaded: their manifests, by folder URL, in IndexedDB
// (`flamingo-web-model-index`), next to the file cache (`flamingo-web-models`, keyed by sha256,
// modelStore.ts). The model manager lists them with what of each is cached; a model folder
// picked from disk lives only here and in the cache, under a `local://<folder>/` URL.
import { del, entries, get, set } from 'idb-keyval';
import { FlamingoError, MODEL_FILE_ROLES, withShards, type Manifest, type ManifestFile } from '../engine/types';
import { validateManifest } from '../engine/manifest';
import { cachedFileHashes, deleteCachedFiles } from './modelStore';
import { openStore, StorageUnavailable } from './openStore';

export type ModelSource = 'url' | 'folder';

interface CatalogEntry {
  url: string;
  manifest: Manifest;
  source: ModelSource;
  lastLoadedAt: number;
}

export interface StoredModel {
  url: string;
  manifest: Manifest;
  source: ModelSource | 'bundled';
  files: (ManifestFile & { cached: boolean })[];
  cachedBytes: number;
  totalBytes: number;
}

export const LOCAL_MODEL_SCHEME = 'local:';
export const isLocalModelUrl = (url: string) => url.startsWith(`${LOCAL_MODEL_SCHEME}//`);
export const localModelUrl = (folder: string) => `${LOCAL_MODEL_SCHEME}//${encodeURIComponent(folder)}/`;

const catalog = openStore('flamingo-web-model-index', 'models');

const folder = (url: string) => (url.endsWith('/') ? url : `${url}/`);

/** Remembers a model that loaded (called by the worker after every load). */
export async function recordModel(url: string, manifest: Manifest, source: ModelSource = 'url'): Promise<void> {
  const key = folder(url);
  const previous = await get<CatalogEntry>(key, await catalog());
  await set(key, { url: key, manifest, source: previous?.source ?? source, lastLoadedAt: Date.now() } satisfies CatalogEntry, await catalog());
}

/** The manifest of a model folder picked from disk. */
export async function localManifest(url: string): Promise<Manifest> {
  const entry = await get<CatalogEntry>(folder(url), await catalog());
  if (!entry) throw new FlamingoError(`The model folder ${decodeURIComponent(url)} is no longer in this browser: pick it again.`);
  return validateManifest(entry.manifest);
}

const filesOf = (manifest: Manifest) => MODEL_FILE_ROLES.flatMap((role) => withShards(manifest.files[role]));

/** Every model known here (the bundled one first), each with which of its files are cached. */
export async function listModels(bundled: { url: string; manifest: Manifest }): Promise<StoredModel[]> {
  let records: [string, CatalogEntry][] = [];
  let hashes = new Set<string>();
  try {
    [records, hashes] = await Promise.all([entries<string, CatalogEntry>(await catalog()), cachedFileHashes()]);
  } catch (cause) {
    if (!(cause instanceof StorageUnavailable)) throw cause; // no IndexedDB: nothing is stored, the bundled model is listed
  }
  const known = new Map<string, { manifest: Manifest; source: StoredModel['source'] }>();
  known.set(folder(bundled.url), { manifest: bundled.manifest, source: 'bundled' });
  for (const [, entry] of records.sort((a, b) => a[1].lastLoadedAt - b[1].lastLoadedAt)) {
    if (!known.has(entry.url)) known.set(entry.url, { manifest: entry.manifest, source: entry.source });
  }
  return [...known].map(([url, { manifest, source }]) => {
    const files = filesOf(manifest).map((file) => ({ ...file, cached: hashes.has(file.sha256.toLowerCase()) }));
    return {
      url,
      manifest,
      source,
      files,
      cachedBytes: files.reduce((sum, file) => sum + (file.cached ? file.bytes : 0), 0),
      totalBytes: files.reduce((sum, file) => sum + file.bytes, 0),
    };
  });
}

/**
 * Deletes a model's cached files that no other known model uses, and forgets it (the bundled
 * model stays listed: it downloads again when used).
 */
export async function deleteModel(model: StoredModel, all: readonly StoredModel[]): Promise<void> {
  const shared = new Set(
    all.filter((other) => other.url !== model.url).flatMap((other) => other.files.map((file) => file.sha256.toLowerCase())),
  );
  await deleteCachedFiles(model.files.filter((file) => !shared.has(file.sha256.toLowerCase())));
  if (model.source !== 'bundled') {
    try {
      await del(model.url, await catalog());
    } catch (cause) {
      throw new FlamingoError('Could not update the list of models in the browser’s storage.', { cause });
    }
  }
}
