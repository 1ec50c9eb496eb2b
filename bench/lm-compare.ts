// Two or more lm.onnx files side by side, decode steps as the engine runs them on the CPU and WASM:
// one token, the cache growing by one position a step from `--past`, fetching logits and new_*.
// The files take turns, round by round, so that a busy host's drift falls on each alike; prints
// the median ms per step of each file at each starting length and writes JSON. Asserts nothing.
//
//   npx tsx bench/lm-compare.ts A/lm.onnx B/lm.onnx [--backend wasm,cpu] [--past 4,228] [--rounds 60]
//                               [--steps 32] [--out FILE]
//
// wasm is onnxruntime-web's WASM build in this Node process (the browser's WASM EP, one thread);
// cpu is onnxruntime-node (its default threads).
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { feeds, type Ort } from './feeds';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { values, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    backend: { type: 'string', default: 'wasm,cpu' }, past: { type: 'string', default: '4,228' },
    rounds: { type: 'string', default: '60' }, steps: { type: 'string', default: '32' }, out: { type: 'string' },
  },
});
if (files.length < 2) throw new Error('lm-compare: give two or more lm.onnx files');
const rounds = Number(values.rounds);
const steps = Number(values.steps);
const pasts = values.past.split(',').map(Number);
const warmUpRounds = Math.ceil(rounds / 3); // V8 tiers the wasm up over the first ~1,000 runs

const results: { backend: string; file: string; past: number; msPerStep: number }[] = [];
for (const backend of values.backend.split(',')) {
  const ort = (backend === 'wasm' ? await import('onnxruntime-web') : await import('onnxruntime-node')) as unknown as Ort;
  if (backend === 'wasm') ort.env.wasm.numThreads = 1;
  const sessions: InferenceSession[] = [];
  for (const file of files) {
    sessions.push(await ort.InferenceSession.create(new Uint8Array(readFileSync(file)), { executionProviders: [backend], graphOptimizationLevel: 'all' }));
  }
  const layers = sessions[0].inputNames.filter((n) => n.startsWith('past_key_')).length;
  const fetches = ['logits', ...Array.from({ length: layers }, (_, i) => [`new_key_${i}`, `new_value_${i}`]).flat()];
  // one image's cross-attention K/V, the decode steps' inputs for every cache length they meet
  const stepFeeds = (past: number): Record<string, Tensor>[] =>
    Array.from({ length: steps }, (_, s) => feeds(ort, sessions[0], { batch: 1, seq: 1, past: past + s, media_latents: 8 }));
  const byPast = new Map(pasts.map((p) => [p, stepFeeds(p)]));
  const times = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const past of pasts) {
      for (const [i, session] of sessions.entries()) {
        const t0 = performance.now();
        for (const f of byPast.get(past)!) await session.run(f, fetches);
        const key = `${i} ${past}`;
        if (round >= warmUpRounds) times.set(key, [...(times.get(key) ?? []), (performance.now() - t0) / steps]);
      }
    }
  }
  for (const past of pasts) {
    for (const [i, file] of files.entries()) {
      const msPerStep = median(times.get(`${i} ${past}`)!);
      results.push({ backend, file, past, msPerStep });
      console.log(`${backend.padEnd(5)} past ${String(past).padStart(4)}  ${msPerStep.toFixed(3)} ms/step  ${file}`);
    }
  }
  await Promise.all(sessions.map((s) => s.release()));
}
if (values.out) {
  const report = { machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, loadavg: loadavg() }, date: new Date().toISOString(), rounds, steps, results };
  await writeFile(values.out, JSON.stringify(report, null, 2) + '\n');
}
