// Each quantised variant of the bundled model loads in onnxruntime-node and stays within the
// accuracy change the model card reports for it (models/eval/variants.json, written from full
// `eval --variant` runs): on a fixed subset of the committed episodes its answers agree with
// float32's at least as often as reported over all episodes, less a sampling margin.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEpisode, runEpisode, type EpisodeIO, type EpisodeResult } from '../engine/evaluate';
import { BUNDLED_MODEL_DIR, createNodeEngine, loadModelDir, readPng, REPO_ROOT } from './node';

const EPISODES = join(REPO_ROOT, 'models/eval/episodes/all.jsonl');
const REPORTED = JSON.parse(readFileSync(join(REPO_ROOT, 'models/eval/variants.json'), 'utf8')) as {
  variants: Record<string, { agreement: number }>;
};
const manifest = JSON.parse(readFileSync(join(BUNDLED_MODEL_DIR, 'manifest.json'), 'utf8')) as {
  variants?: Record<string, unknown>;
};
const PER_TASK = 3;

/** The first PER_TASK episodes of every task without RICES (RICES encodes a whole pool: slow). */
function subset() {
  const counts = new Map<string, number>();
  const lines = readFileSync(EPISODES, 'utf8').split('\n').filter((l) => l.trim());
  return lines
    .map((line, i) => parseEpisode(line, `${EPISODES}:${i + 1}`))
    .filter((e) => {
      if (e.rices) return false;
      const n = counts.get(e.task) ?? 0;
      counts.set(e.task, n + 1);
      return n < PER_TASK;
    });
}

async function predictions(variant: string): Promise<EpisodeResult[]> {
  const engine = await createNodeEngine(BUNDLED_MODEL_DIR, { backend: 'cpu' }, variant);
  const base = dirname(EPISODES);
  const io: EpisodeIO = { loadImage: (p) => readPng(resolve(base, p)), loadPool: () => Promise.reject(new Error('no RICES here')) };
  const results = [];
  for (const episode of subset()) results.push(await runEpisode(engine, episode, io));
  await engine.release();
  return results;
}

describe('quantised variants of the bundled model', () => {
  const names = Object.keys(manifest.variants ?? {});
  let float32: Promise<EpisodeResult[]> | undefined;

  it('lists its variants with reported numbers', () => {
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(REPORTED.variants[name]?.agreement, name).toBeTypeOf('number');
  });

  it('names the variants there are when asked for one that is not', async () => {
    await expect(loadModelDir(BUNDLED_MODEL_DIR, 'q9')).rejects.toThrow(/no variant "q9" \(it has: .*float32\)/);
  });

  it.each(names)('%s loads its own files, sha256-verified', async (name) => {
    const { manifest: seen, files, variant } = await loadModelDir(BUNDLED_MODEL_DIR, name);
    expect(variant).toBe(name);
    expect(seen.files.lm.path).toMatch(new RegExp(`\\.${name}\\.onnx$`));
    expect(files.lm.byteLength).toBe(seen.files.lm.bytes);
  });

  it.each(names)('%s agrees with float32 on a fixed subset as often as reported', async (name) => {
    float32 ??= predictions('float32');
    const [reference, quantised] = [await float32, await predictions(name)];
    const same = quantised.filter((r, i) => r.prediction === reference[i].prediction).length / quantised.length;
    const reported = REPORTED.variants[name].agreement;
    // Three standard errors of a share measured on this many episodes.
    const margin = 3 * Math.sqrt((reported * (1 - reported)) / quantised.length);
    expect(same).toBeGreaterThanOrEqual(reported - margin);
  }, 300_000);
});
