// Test support for the cross-language parity tests (parity.test.ts, openflamingo.test.ts): a
// Python script of models/tools/ writes a model folder and expected.json into a fresh temporary
// folder; the TypeScript side compares what it computes with what is expected.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO_ROOT } from '../cli/node';
import type { Manifest } from './types';

export const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';

/** Runs models/tools/`script` OUT_DIR ...args; returns OUT_DIR, its expected.json and model/manifest.json. */
export function pythonFixture<T>(script: string, args: string[], prefix: string): { dir: string; expected: T; manifest: Manifest } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  execFileSync(PYTHON, [join(REPO_ROOT, 'models/tools', script), dir, ...args], { stdio: 'pipe' });
  return {
    dir,
    expected: JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as T,
    manifest: JSON.parse(readFileSync(join(dir, 'model/manifest.json'), 'utf8')) as Manifest,
  };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
