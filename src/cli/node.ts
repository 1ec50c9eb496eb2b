// Node-side model and image loading for the CLI and the tests: the same manifest checks and
// sha256 verification as the browser's model store, reading from disk instead of the network.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { FlamingoEngine, type EngineOptions } from '../engine/engine';
import { validateManifest } from '../engine/manifest';
import type { Manifest, ModelFileRole, RgbaImage } from '../engine/types';
import { FlamingoError } from '../engine/types';
import { checkImageFile } from '../engine/limits';
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

export async function loadModelDir(dir: string): Promise<{ manifest: Manifest; files: Record<ModelFileRole, Uint8Array> }> {
  const manifestPath = join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse((await readOrFail(manifestPath, 'the model manifest')).toString('utf8'));
  } catch (err) {
    if (err instanceof FlamingoError) throw err;
    throw new FlamingoError(`${manifestPath} is not valid JSON`, { cause: err });
  }
  const manifest = validateManifest(raw);
  const files = {} as Record<ModelFileRole, Uint8Array>;
  for (const [role, entry] of Object.entries(manifest.files) as [ModelFileRole, Manifest['files'][ModelFileRole]][]) {
    const path = join(dir, entry.path);
    const bytes = new Uint8Array(await readOrFail(path, 'model file'));
    await verifyFile(bytes, entry, path);
    files[role] = bytes;
  }
  return { manifest, files };
}

export async function createNodeEngine(dir: string, options: EngineOptions = { backend: 'cpu' }): Promise<FlamingoEngine> {
  const { manifest, files } = await loadModelDir(dir);
  return FlamingoEngine.create(ort, manifest, files, options);
}

export async function readPng(path: string): Promise<RgbaImage> {
  const bytes = await readOrFail(path, 'image');
  const header = checkImageFile(bytes, path);
  if (header.format !== 'png') {
    throw new FlamingoError(`${path} is a ${header.format.toUpperCase()} image; the command line reads PNG (the app reads the others): convert it to PNG.`);
  }
  try {
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
  } catch (err) {
    throw new FlamingoError(`${path} is not a readable PNG image (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}
