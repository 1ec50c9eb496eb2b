// `flamingo-web bench`: time-to-first-token, decode speed and image encoding against the number
// of shots, on this machine's CPU through onnxruntime-node. Prints a table and writes JSON.
// Every timed call does real work: fresh images per run (the latent cache would otherwise skip
// the vision graphs) and a fixed number of decode steps (<|endofchunk|> ignored).
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { Prompt, RgbaImage } from '../engine/types';
import { seededRandom } from '../engine/sampling';
import { countList, optionFlag, positiveInt } from './flags';
import { BUNDLED_MODEL_DIR, createNodeEngine } from './node';

function noiseImage(size: number, random: () => number): RgbaImage {
  const data = new Uint8Array(size * size * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : Math.floor(random() * 256);
  return { width: size, height: size, data };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function runBench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' }, out: { type: 'string' }, shots: { type: 'string', default: '0,4,16,32' },
      tokens: { type: 'string', default: '16' }, repeats: { type: 'string', default: '3' }, variant: { type: 'string' },
    },
  });
  const shots = countList(values.shots, 'shots');
  const tokens = optionFlag(values.tokens, 'tokens', 'maxNewTokens')!;
  const repeats = positiveInt(values.repeats, 'repeats')!;
  const variant = values.variant ?? 'float32';
  const engine = await createNodeEngine(values.model ?? BUNDLED_MODEL_DIR, undefined, variant);
  const size = engine.manifest.vision.image_size;
  const random = seededRandom(1);
  const rows = [];
  // one warm-up so session initialisation is not counted
  await engine.generate([{ image: noiseImage(size, random) }, { text: 'Output:' }], { maxNewTokens: 2 }, () => undefined);
  const decode = async (prompt: Prompt) =>
    (await engine.generate(prompt, { maxNewTokens: tokens, ignoreEndOfChunk: true }, () => undefined)).tokensPerSecond;
  for (const k of shots) {
    const ttft: number[] = [];
    const tps: number[] = [];
    const tpsTextShots: number[] = [];
    const encodeMs: number[] = [];
    let promptTokens = 0;
    for (let r = 0; r < repeats; r++) {
      const prompt: Prompt = [];
      for (let i = 0; i < k; i++) prompt.push({ image: noiseImage(size, random) }, { text: 'Output: dog face.' });
      prompt.push({ image: noiseImage(size, random) }, { text: 'Output:' });
      const t0 = performance.now();
      for (const s of prompt) if ('image' in s) await engine.encodeMedia([s.image]);
      encodeMs.push(performance.now() - t0);
      const done = await engine.generate(prompt, { maxNewTokens: tokens, ignoreEndOfChunk: true }, () => undefined);
      ttft.push(done.ttftMs); // images cached just above: this is tokenisation + prefill + first sample
      tps.push(done.tokensPerSecond);
      promptTokens = done.promptTokens;
      // The same examples without their images: separates the cost of a longer context from the
      // cost of cross-attending to more images at every step.
      tpsTextShots.push(await decode(prompt.filter((s, i) => !('image' in s) || i === prompt.length - 2)));
    }
    rows.push({
      shots: k, images: k + 1, promptTokens, decodeTokens: tokens,
      imageEncodeMsPerImage: median(encodeMs) / (k + 1), prefillTtftMs: median(ttft), decodeTokensPerSecond: median(tps),
      decodeTokensPerSecondTextOnlyShots: median(tpsTextShots),
    });
  }
  console.log('shots  images  prompt-tokens  encode ms/img  prefill+TTFT ms  decode tok/s  (text-only shots)');
  for (const r of rows) {
    console.log(`${String(r.shots).padStart(5)}  ${String(r.images).padStart(6)}  ${String(r.promptTokens).padStart(13)}  ${r.imageEncodeMsPerImage.toFixed(2).padStart(13)}  ${r.prefillTtftMs.toFixed(1).padStart(15)}  ${r.decodeTokensPerSecond.toFixed(1).padStart(12)}  ${r.decodeTokensPerSecondTextOnlyShots.toFixed(1).padStart(17)}`);
  }
  const report = {
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, backend: engine.backend },
    model: engine.manifest.name, version: engine.manifest.version, variant, repeats, rows,
  };
  if (values.out) {
    await writeFile(values.out, JSON.stringify(report, null, 2) + '\n');
    console.log(`written to ${values.out}`);
  }
}
