// Decode cost of each model variant through onnxruntime-node: CPU time per generated token with
// ONNX Runtime on one thread, and wall time. CPU time is the number to compare on a shared
// machine, where wall time also measures the neighbours. Prints a table and writes JSON.
//
//   npx tsx scripts/variant-speed.ts [--model DIR] [--variants float32,q4,fp16] [--shots 0,8] [--out FILE]
import { writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { BUNDLED_MODEL_DIR, loadModelDir } from '../src/cli/node';
import { FlamingoEngine, type OrtModule } from '../src/engine/engine';
import { seededRandom } from '../src/engine/sampling';
import type { Prompt, RgbaImage } from '../src/engine/types';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: BUNDLED_MODEL_DIR }, variants: { type: 'string', default: 'float32,q4,fp16' },
    shots: { type: 'string', default: '0,8' }, tokens: { type: 'string', default: '32' },
    repeats: { type: 'string', default: '5' }, out: { type: 'string' },
  },
});
const tokens = Number(values.tokens);
const repeats = Number(values.repeats);

// The engine takes ONNX Runtime as an argument: hand it one whose sessions use a single thread.
const create = ((model: Uint8Array, options: ort.InferenceSession.SessionOptions) =>
  ort.InferenceSession.create(model, { ...options, intraOpNumThreads: 1, interOpNumThreads: 1 })) as typeof ort.InferenceSession.create;
const oneThread = { InferenceSession: { create }, Tensor: ort.Tensor } as unknown as OrtModule;

function noiseImage(size: number, random: () => number): RgbaImage {
  const data = new Uint8Array(size * size * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : Math.floor(random() * 256);
  return { width: size, height: size, data };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

// Every variant's engine is loaded at once and the repeats go round the variants, so that a
// neighbour's load falls on all of them alike.
const variants = values.variants.split(',');
const engines = [];
for (const variant of variants) {
  const { manifest, files } = await loadModelDir(values.model, variant);
  engines.push(await FlamingoEngine.create(oneThread, manifest, files, { backend: 'cpu' }));
}
const rows = [];
for (const k of values.shots.split(',').map(Number)) {
  const size = engines[0].manifest.vision.image_size;
  const random = seededRandom(k + 1);
  const prompt: Prompt = [];
  for (let i = 0; i <= k; i++) prompt.push({ image: noiseImage(size, random) }, { text: i < k ? 'Output: dog face.' : 'Output:' });
  const run = async (engine: FlamingoEngine, maxNewTokens: number) => {
    const [c0, t0] = [cpuMs(), performance.now()];
    await engine.generate(prompt, { maxNewTokens, ignoreEndOfChunk: true }, () => undefined);
    return [cpuMs() - c0, performance.now() - t0];
  };
  for (const engine of engines) await run(engine, tokens + 1); // warm-up; the latents are cached from here on
  const cpu: number[][] = variants.map(() => []);
  const wall: number[][] = variants.map(() => []);
  for (let r = 0; r < repeats; r++) {
    for (const [v, engine] of engines.entries()) {
      // The same prompt with 1 and with 1 + tokens new tokens: the difference is `tokens` decode steps.
      const [c1, w1] = await run(engine, 1);
      const [cn, wn] = await run(engine, 1 + tokens);
      cpu[v].push((cn - c1) / tokens);
      wall[v].push((wn - w1) / tokens);
    }
  }
  for (const [v, variant] of variants.entries()) {
    const row = { variant, shots: k, cpuMsPerToken: median(cpu[v]), wallMsPerToken: median(wall[v]) };
    rows.push(row);
    console.log(`${variant.padEnd(8)} ${String(k).padStart(2)} shots  CPU ${row.cpuMsPerToken.toFixed(2)} ms/token (${(1000 / row.cpuMsPerToken).toFixed(0)} tokens/s)  wall ${row.wallMsPerToken.toFixed(2)} ms/token`);
  }
}
for (const engine of engines) await engine.release();
const report = {
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, loadAverage: loadavg(), node: process.version },
  how: `onnxruntime-node, CPU EP, 1 intra-op thread; median of ${repeats}; ${tokens} decode steps after a prompt of noise images`,
  rows,
};
if (values.out) await writeFile(values.out, JSON.stringify(report, null, 2) + '\n');
