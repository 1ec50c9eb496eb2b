// A model folder picked from disk (`<input type=file webkitdirectory>`): manifest.json and the
// files it names, each checked against its size and sha256 as a download is, then stored in the
// model cache so that the worker loads it like any cached model.
import { FlamingoError, MODEL_FILE_ROLES, withShards, type Manifest } from '../engine/types';
import { validateManifest } from '../engine/manifest';
import { localModelUrl, recordModel } from './modelCatalog';
import { storeVerifiedFile } from './modelStore';

/** `files` from a directory input (each with its `webkitRelativePath`). Returns the folder's model URL. */
export async function importModelFolder(
  files: readonly File[],
  onFile?: (path: string) => void,
): Promise<{ url: string; manifest: Manifest }> {
  const path = (file: File) => file.webkitRelativePath || file.name;
  // The shallowest manifest.json is the model's (a folder may hold others deeper down).
  const manifestFile = files
    .filter((file) => path(file).split('/').pop() === 'manifest.json')
    .sort((a, b) => path(a).split('/').length - path(b).split('/').length)[0];
  if (!manifestFile) throw new FlamingoError('This folder has no manifest.json: pick a flamingo-web model folder.');
  const root = path(manifestFile).slice(0, -'manifest.json'.length);
  const folderName = root.replace(/\/$/, '') || 'model';

  let manifest: Manifest;
  try {
    manifest = validateManifest(JSON.parse(await manifestFile.text()));
  } catch (cause) {
    throw new FlamingoError(
      `${root}manifest.json is not a usable flamingo-web model manifest: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  const byPath = new Map(files.map((file) => [path(file), file]));
  for (const entry of MODEL_FILE_ROLES.flatMap((role) => withShards(manifest.files[role]))) {
    const file = byPath.get(`${root}${entry.path}`);
    if (!file) throw new FlamingoError(`The folder ${folderName} has no ${entry.path}, which its manifest names.`);
    onFile?.(entry.path);
    await storeVerifiedFile(entry, new Uint8Array(await file.arrayBuffer())); // one file (or shard) in memory at a time
  }
  const url = localModelUrl(folderName);
  await recordModel(url, manifest, 'folder');
  return { url, manifest };
}
