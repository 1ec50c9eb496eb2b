// Why a WASM decode step fetches new_key_* instead of present_* (docs/BENCHMARKS.md, "Decode in the
// browser: the outputs"): what allocating an output-sized array costs in Chromium and in Node, and
// whether onnxruntime-web's WASM build fills a pre-allocated output. Prints both and writes JSON;
// asserts nothing. (lm.onnx's run time per fetched output set is in `npm run bench`:
// browser_wasm_lm_run_ms.)
//
//   npx tsx bench/outputs.ts [--out FILE]
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import * as ortWeb from 'onnxruntime-web/wasm';
import { chromiumLaunchOptions } from '../e2e/browser';
import { BUNDLED_MODEL_DIR } from '../src/cli/node';
import { feeds, type Ort } from './feeds';

const { values } = parseArgs({ args: process.argv.slice(2), options: { out: { type: 'string' } } });
const SIZES_KB = [1, 16, 32, 48, 64, 128, 256];

/** µs per `new Float32Array` of each size, 2,000 in a loop (the same function runs in the page). */
function allocationCost(sizesKb: number[]): Record<string, number> {
  const out: Record<string, number> = {};
  let keep = 0;
  for (const kb of sizesKb) {
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) keep += new Float32Array(kb * 256).length;
    out[`${kb}KB`] = Math.round(((performance.now() - t0) / 2000) * 1000 * 10) / 10;
  }
  if (keep < 0) throw new Error('unreachable');
  return out;
}

/** Does onnxruntime-web's WASM build write a decode step's present_key_0 into a tensor handed in as the output? */
async function preallocatedOutputFilled(): Promise<boolean> {
  ortWeb.env.wasm.numThreads = 1;
  const session = await ortWeb.InferenceSession.create(new Uint8Array(readFileSync(join(BUNDLED_MODEL_DIR, 'lm.onnx'))), { executionProviders: ['wasm'] });
  const manifest = JSON.parse(readFileSync(join(BUNDLED_MODEL_DIR, 'manifest.json'), 'utf8')) as { resampler: { n_latents: number } };
  const dims: Record<string, number> = { batch: 1, seq: 1, past: 8, media_latents: manifest.resampler.n_latents };
  const inputs = feeds(ortWeb as unknown as Ort, session, dims, Math.sin) as Record<string, ortWeb.Tensor>;
  const plain = (await session.run(inputs, ['present_key_0'])).present_key_0.data as Float32Array;
  const mine = new Float32Array(plain.length).fill(7);
  await session.run(inputs, { present_key_0: new ortWeb.Tensor('float32', mine, [...inputs.past_key_0.dims.slice(0, 2), 9, inputs.past_key_0.dims[3]]) });
  await session.release();
  return mine.every((x, i) => x === plain[i]);
}

const node = allocationCost(SIZES_KB);
const browser = await chromium.launch(chromiumLaunchOptions({ webgpu: false }));
let page: Record<string, number>;
try {
  const tab = await browser.newPage();
  await tab.goto('about:blank');
  page = await tab.evaluate(`(${allocationCost.toString()})(${JSON.stringify(SIZES_KB)})`);
} finally {
  await browser.close();
}
const filled = await preallocatedOutputFilled();
console.log('new Float32Array, µs each (2,000 in a loop)');
console.log(`  ${'size'.padEnd(8)}${'Chromium'.padStart(10)}${'Node'.padStart(10)}`);
for (const kb of SIZES_KB) console.log(`  ${`${kb} KB`.padEnd(8)}${String(page[`${kb}KB`]).padStart(10)}${String(node[`${kb}KB`]).padStart(10)}`);
console.log(`onnxruntime-web WASM build fills a pre-allocated CPU output: ${filled ? 'yes' : 'no (the tensor comes back untouched)'}`);
const result = { date: new Date().toISOString(), chromium: browser.version(), node: process.version, allocation_us: { chromium: page, node }, preallocated_output_filled: filled };
if (values.out) await writeFile(values.out, `${JSON.stringify(result, null, 2)}\n`);
