// The bench page for our engine: the app's own worker client (src/worker/client.ts), so the
// figures include what the app pays (comlink, events to the page). Every timed run does real
// work: fresh noise images per run, a fixed number of tokens (<|endofchunk|> ignored).
import { seededRandom } from '../../src/engine/sampling';
import type { InferenceSession } from 'onnxruntime-common';
import { FlamingoEngine, type OrtModule } from '../../src/engine/engine';
import type { DoneEvent, ModelFileRole, Prompt, RgbaImage } from '../../src/engine/types';
import { bundledManifest, BUNDLED_MODEL_PATH } from '../../src/store/bundledModel';
import { FlamingoClient } from '../../src/worker/client';
import type { DecodeSample, FlamingoBenchApi, LmFetch, PhaseSample, ShotSample } from './protocol';

const client = new FlamingoClient();

/**
 * The same engine on this page's thread, on the WASM build, with session.run wrapped in a timer:
 * what a decode step spends inside ONNX Runtime and what around it. Created on first use.
 */
let timedEngine: Promise<{ engine: FlamingoEngine; clock: { runs: number[] } }> | undefined;
function pageEngine() {
  timedEngine ??= (async () => {
    const ort = await import('onnxruntime-web/wasm');
    ort.env.wasm.wasmPaths = new URL(`${import.meta.env.BASE_URL}ort/`, window.location.href).href;
    const clock = { runs: [] as number[] };
    const create = ort.InferenceSession.create.bind(ort.InferenceSession) as (
      bytes: Uint8Array,
      options?: InferenceSession.SessionOptions,
    ) => Promise<InferenceSession>;
    const timedOrt: OrtModule = {
      Tensor: ort.Tensor,
      InferenceSession: {
        async create(bytes: Uint8Array, options?: InferenceSession.SessionOptions) {
          const session = await create(bytes, options);
          // lm.onnx only: xattn_kv.onnx also runs once per prompt, before the prefill
          if (!session.inputNames.includes('input_ids')) return session;
          const run = session.run.bind(session);
          session.run = (async (...args: Parameters<typeof run>) => {
            const t0 = performance.now();
            try {
              return await run(...args);
            } finally {
              clock.runs.push(performance.now() - t0);
            }
          }) as typeof session.run;
          return session;
        },
      } as unknown as OrtModule['InferenceSession'],
    };
    const base = new URL(`${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, window.location.href);
    const files = {} as Record<ModelFileRole, Uint8Array>;
    for (const role of Object.keys(bundledManifest.files) as ModelFileRole[]) {
      files[role] = new Uint8Array(await (await fetch(new URL(bundledManifest.files[role].path, base))).arrayBuffer());
    }
    return { engine: await FlamingoEngine.create(timedOrt, bundledManifest, files, { backend: 'wasm' }), clock };
  })();
  return timedEngine;
}
let lmSession: Promise<InferenceSession> | undefined;
const bundledUrl = new URL(`${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, window.location.href).href;
/** The image size of the model loaded last (the bundled one's until load is given another). */
let imageSize = bundledManifest.vision.image_size;

function noiseImage(size: number, random: () => number): RgbaImage {
  const data = new Uint8Array(size * size * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : Math.floor(random() * 256);
  return { width: size, height: size, data };
}

/** A generate call timed from the page: when the first token event and the done event arrived. */
async function timedGenerate(prompt: Prompt, newTokens: number) {
  let firstToken = NaN;
  let doneArrived = NaN;
  const started = performance.now();
  const done: DoneEvent = await client.generate(prompt, { maxNewTokens: newTokens, ignoreEndOfChunk: true, stopAtNewline: false }, (event) => {
    if (event.type === 'token' && Number.isNaN(firstToken)) firstToken = performance.now();
    if (event.type === 'done') doneArrived = performance.now();
  });
  return { done, span: doneArrived - firstToken, pageTotalMs: performance.now() - started };
}

/** Per decode sample: the engine's figures and the same steps seen from the page. */
function decodeSample({ done, span, pageTotalMs }: Awaited<ReturnType<typeof timedGenerate>>): DecodeSample {
  return {
    promptTokens: done.promptTokens,
    tokens: done.tokens,
    tokensPerSecond: done.tokensPerSecond,
    ttftMs: done.ttftMs,
    // The tokens after the first, from the first token event to the done event (token events
    // carry text pieces, about one per frame: src/worker/tokenStream.ts).
    pageTokensPerSecond: ((done.tokens - 1) * 1000) / span,
    pageTotalMs,
    timings: done.timings,
  };
}

/** The same shot prompt as the CLI bench (src/cli/bench.ts), with fresh images from `random`. */
function shotPrompt(shots: number, random: () => number): Prompt {
  const size = imageSize;
  const prompt: Prompt = [];
  for (let i = 0; i < shots; i++) prompt.push({ image: noiseImage(size, random) }, { text: 'Output: dog face.' });
  prompt.push({ image: noiseImage(size, random) }, { text: 'Output:' });
  return prompt;
}

/** A structured copy of a prompt (its pixel buffers are transferred, so each call needs its own). */
function copyPrompt(prompt: Prompt): Prompt {
  return prompt.map((s) => ('image' in s ? { image: { ...s.image, data: s.image.data.slice() } } : s));
}

const api: FlamingoBenchApi = {
  async load(backend, model) {
    const result = await client.load(model?.url ?? bundledUrl, { backend, variant: model?.variant }, () => undefined);
    imageSize = result.manifest.vision.image_size;
    const { variant, loadMs, timings, fromCache, fallbackReason } = result;
    const warnings = result.warnings.map((w) => `${w.code}${w.file ? ` (${w.file})` : ''}: ${w.message}${w.cause ? ` [${w.cause}]` : ''}`);
    return { backend: result.backend, variant, loadMs, timings, fromCache, fallbackReason, warnings };
  },

  async decodeText(text, newTokens): Promise<DecodeSample> {
    return decodeSample(await timedGenerate([{ text }], newTokens));
  },

  async decodeImage(text, newTokens, seed): Promise<DecodeSample> {
    const prompt: Prompt = [{ image: noiseImage(imageSize, seededRandom(seed)) }, { text }];
    return decodeSample(await timedGenerate(prompt, newTokens));
  },

  async shots(shots, newTokens, seed): Promise<ShotSample> {
    const random = seededRandom(seed);
    const images = shotPrompt(shots, random);
    const media = images.flatMap((s) => ('image' in s ? [[s.image]] : []));
    const t0 = performance.now();
    await client.encode(media.map((frames) => frames.map((f) => ({ ...f, data: f.data.slice() }))));
    const encodeMs = performance.now() - t0;
    const cached = await timedGenerate(copyPrompt(images), newTokens); // latents cached just above
    const fresh = await timedGenerate(shotPrompt(shots, random), newTokens);
    return {
      shots,
      images: shots + 1,
      promptTokens: cached.done.promptTokens,
      encodeMs,
      ttftMs: cached.done.ttftMs,
      ttftFreshMs: fresh.done.ttftMs,
      tokensPerSecond: cached.done.tokensPerSecond,
      timings: cached.done.timings,
    };
  },

  async decodePhases(text, newTokens): Promise<PhaseSample> {
    const { engine, clock } = await pageEngine();
    clock.runs = [];
    const done = await engine.generate([{ text }], { maxNewTokens: newTokens, ignoreEndOfChunk: true, stopAtNewline: false }, () => undefined);
    // The first lm call is the prefill; each later one is a decode step of this same generation.
    const steps = clock.runs.slice(1);
    const stepMs = 1000 / done.tokensPerSecond;
    const runMs = steps.reduce((sum, ms) => sum + ms, 0) / steps.length;
    return { tokens: done.tokens, tokensPerSecond: done.tokensPerSecond, stepMs, runMs, engineMs: stepMs - runMs };
  },

  async lmRuns(outputs: LmFetch, past: number, runs: number): Promise<number> {
    const ort = await import('onnxruntime-web/wasm');
    ort.env.wasm.wasmPaths = new URL(`${import.meta.env.BASE_URL}ort/`, window.location.href).href;
    const base = new URL(`${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, window.location.href);
    lmSession ??= ort.InferenceSession.create(new Uint8Array(await (await fetch(new URL(bundledManifest.files.lm.path, base))).arrayBuffer()), {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    const session = await lmSession;
    const { layers } = bundledManifest.lm;
    const dims: Record<string, number> = { batch: 1, seq: 1, past, media_latents: bundledManifest.resampler.n_latents };
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const meta of session.inputMetadata) {
      if (!meta.isTensor) continue;
      const shape = meta.shape.map((d) => (typeof d === 'number' ? d : dims[d]));
      const count = shape.reduce((a, b) => a * b, 1);
      feeds[meta.name] = meta.type === 'int64' ? new ort.Tensor('int64', new BigInt64Array(count).fill(meta.name === 'logits_to_keep' ? 1n : 0n), shape) : new ort.Tensor('float32', new Float32Array(count), shape);
    }
    const fetches = ['logits'];
    if (outputs !== 'logits') for (let i = 0; i < layers; i++) fetches.push(`${outputs}_key_${i}`, `${outputs}_value_${i}`);
    const ms: number[] = [];
    for (let r = 0; r < 2 * runs; r++) {
      const t0 = performance.now();
      await session.run(feeds, fetches);
      if (r >= runs) ms.push(performance.now() - t0);
    }
    return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
  },

  async memoryMb() {
    const measure = (performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }> })
      .measureUserAgentSpecificMemory;
    if (!window.crossOriginIsolated || !measure) return null;
    return (await measure.call(performance)).bytes / 2 ** 20;
  },
};

window.flamingoBench = api;
