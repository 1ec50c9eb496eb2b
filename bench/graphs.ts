// Times single ONNX graphs, session.run only, on onnxruntime-node (CPU EP) and onnxruntime-web's
// WASM build in this Node process (the browser's WASM EP, minus the browser): where a model's
// step time goes, graph by graph (docs/BENCHMARKS.md, "OpenFlamingo").
//
//   npx tsx bench/graphs.ts FILE.onnx... [--backend cpu,wasm] [--runs 5] [--threads 1]
//                           [--dims batch=1,seq=1,past=16,media_latents=64,n=1,frames=1,media=1]
//
// Inputs are made from the graph's own metadata: symbolic dimensions from --dims, float inputs
// zero, int64 inputs one (a token id, an image index, logits_to_keep). External data shards are
// the files next to the graph named `<file>.data-NN`. Prints one line per graph and backend and
// a JSON array at the end; asserts nothing.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { feeds, type Ort } from './feeds';


const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function externalData(file: string) {
  const shard = new RegExp(`^${basename(file).replace(/[.]/g, '\\.')}\\.data-\\d+$`);
  return readdirSync(dirname(file))
    .filter((name) => shard.test(name))
    .map((name) => ({ path: name, data: new Uint8Array(readFileSync(join(dirname(file), name))) }));
}


async function timeGraph(ort: Ort, backend: string, file: string, dims: Record<string, number>, runs: number, threads: number) {
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(file)), {
    executionProviders: [backend],
    externalData: externalData(file),
    intraOpNumThreads: threads,
    graphOptimizationLevel: 'all',
  });
  const createMs = performance.now() - t0;
  const input = feeds(ort, session, dims);
  const ms: number[] = [];
  for (let r = 0; r <= runs; r++) {
    const t = performance.now();
    await session.run(input);
    if (r > 0) ms.push(performance.now() - t); // the first run is a warm-up
  }
  await session.release();
  return { graph: file, backend, createMs, runMs: median(ms), allRunsMs: ms };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: {
      backend: { type: 'string', default: 'cpu,wasm' },
      runs: { type: 'string', default: '5' },
      threads: { type: 'string', default: '1' },
      dims: { type: 'string', default: 'batch=1,seq=1,past=16,media_latents=64,media=1,n=1,frames=1' },
    },
  });
  const dims = Object.fromEntries(values.dims.split(',').map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]));
  const threads = Number(values.threads);
  const results = [];
  for (const backend of values.backend.split(',')) {
    const ort = (backend === 'wasm' ? await import('onnxruntime-web') : await import('onnxruntime-node')) as unknown as Ort;
    if (backend === 'wasm') ort.env.wasm.numThreads = threads;
    for (const file of positionals) {
      const r = await timeGraph(ort, backend, file, dims, Number(values.runs), threads);
      console.error(`${backend.padEnd(5)} ${basename(file).padEnd(28)} run ${r.runMs.toFixed(1).padStart(9)} ms   create ${r.createMs.toFixed(0)} ms`);
      results.push(r);
    }
  }
  console.log(JSON.stringify(results, null, 2));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
