// Node-side model and image loading for the CLI and the tests: the same manifest checks and
// sha256 verification as the browser's model store, reading from disk instead of the network.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { FlamingoEngine, type EngineOptions } from '../engine/engine';
import { validateManifest } from '../engine/manifest';
import { pickVariant, variantFiles, withVariant, type VariantChoice } from '../engine/variants';
import type { Backend, ExternalData, Manifest, ManifestFile, ModelFileRole, RgbaImage } from '../engine/types';
import { FlamingoError } from '../engine/types';
import { checkImageFile, orientPixels } from '../engine/limits';
import { verifyFile } from '../store/verify';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BUNDLED_MODEL_DIR = join(REPO_ROOT, 'public/models/emojiworld');

async function readOrFail(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new FlamingoError(`Cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

/**
 * The manifest and every role's file, sha256-verified; with `variant`, its files in place of the
 * roles it replaces (`manifest` is then as the engine should see it: the variant's file entries).
 */
export async function loadModelDir(
  dir: string,
  variant: VariantChoice = 'float32',
  backend: Backend = 'cpu',
): Promise<{ manifest: Manifest; files: Record<ModelFileRole, Uint8Array>; externalData: ExternalData; variant: string }> {
  const manifestPath = join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse((await readOrFail(manifestPath, 'the model manifest')).toString('utf8'));
  } catch (err) {
    if (err instanceof FlamingoError) throw err;
    throw new FlamingoError(`${manifestPath} is not valid JSON`, { cause: err });
  }
  const full = validateManifest(raw);
  const chosen = pickVariant(full, backend, new Set(), variant); // no adapter features in Node
  const files = {} as Record<ModelFileRole, Uint8Array>;
  const externalData: ExternalData = {};
  const read = async (entry: ManifestFile) => {
    const path = join(dir, entry.path);
    const bytes = new Uint8Array(await readOrFail(path, 'model file'));
    await verifyFile(bytes, entry, path);
    return bytes;
  };
  for (const [role, entry] of Object.entries(variantFiles(full, chosen)) as [ModelFileRole, ManifestFile][]) {
    files[role] = await read(entry);
    if (entry.external_data) {
      externalData[role] = [];
      for (const shard of entry.external_data) externalData[role].push({ path: shard.path, data: await read(shard) });
    }
  }
  return { manifest: withVariant(full, chosen), files, externalData, variant: chosen };
}

/** `variant`: `auto` (for the CPU: a variant that lists `cpu`, else float32), `float32` or a name. */
export async function createNodeEngine(
  dir: string,
  options: EngineOptions = { backend: 'cpu' },
  variant: VariantChoice = 'float32',
): Promise<FlamingoEngine> {
  const { manifest, files, externalData } = await loadModelDir(dir, variant, options.backend);
  return FlamingoEngine.create(ort, manifest, files, { externalData, ...options });
}

export async function readPng(path: string): Promise<RgbaImage> {
  const bytes = await readOrFail(path, 'image');
  const header = checkImageFile(bytes, path);
  if (header.format !== 'png') {
    throw new FlamingoError(`${path} is a ${header.format.toUpperCase()} image; the command line reads PNG (the app reads the others): convert it to PNG.`);
  }
  try {
    const png = PNG.sync.read(bytes);
    const image = { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    return orientPixels(image, header.orientation); // an eXIf orientation, applied as the browser does
  } catch (err) {
    throw new FlamingoError(`${path} is not a readable PNG image (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}
