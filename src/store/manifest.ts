// Reading a manifest.json: enough checks that a wrong URL or another format fails with a clear
// message here instead of deep inside the engine.
import { FlamingoError, type Manifest, type ModelFileRole } from '../engine/types';

const ROLES: readonly ModelFileRole[] = ['vision_encoder', 'resampler', 'lm', 'tokenizer'];

export function parseManifest(json: unknown, source: string): Manifest {
  const bad = (why: string) => new FlamingoError(`${source} is not a flamingo-web model manifest: ${why}.`);
  if (typeof json !== 'object' || json === null) throw bad('not a JSON object');
  const manifest = json as Partial<Manifest>;
  if (manifest.format !== 'flamingo-web/1') throw bad(`format is ${JSON.stringify(manifest.format)}, expected "flamingo-web/1"`);
  for (const role of ROLES) {
    const file = manifest.files?.[role];
    if (
      !file ||
      typeof file.path !== 'string' ||
      !Number.isInteger(file.bytes) ||
      typeof file.sha256 !== 'string' ||
      !/^[0-9a-f]{64}$/i.test(file.sha256)
    ) {
      throw bad(`files.${role} is missing or has no valid path, bytes and sha256`);
    }
    if (file.path.includes('..') || /^[a-z]+:/i.test(file.path) || file.path.startsWith('/')) {
      throw bad(`files.${role}.path must be a path inside the model folder`);
    }
  }
  return manifest as Manifest;
}
