// The bundled model's manifest, read from disk, for unit tests of UI logic (no virtual module).
import { readFileSync } from 'node:fs';
import { validateManifest } from '../engine/manifest';
import type { Manifest } from '../engine/types';

export function bundledManifestForTests(): Manifest {
  return validateManifest(JSON.parse(readFileSync(new URL('../../public/models/emojiworld/manifest.json', import.meta.url), 'utf8')));
}
