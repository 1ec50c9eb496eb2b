// The worker owns the model: one FlamingoEngine, loaded from the model store, driven by the UI
// through comlink (api.ts). The UI thread never runs ONNX Runtime, so it never blocks.
import * as Comlink from 'comlink';
import type { PersistentLatentStore } from '../engine/caches';
import { FlamingoEngine } from '../engine/engine';
import { checkRequirements, type Capacity } from '../engine/requirements';
import { FlamingoError, MODEL_FILE_ROLES, type Backend, type Manifest } from '../engine/types';
import { pickVariant, variantFiles, withVariant, type VariantChoice } from '../engine/variants';
import { BUNDLED_MODEL_PATH, bundledManifest } from '../store/bundledModel';
import { indexedDbLatentStore } from '../store/latentStore';
import { isLocalModelUrl, localManifest, recordModel } from '../store/modelCatalog';
import { cachedBytes, loadManifest, loadModel, type LoadedModel } from '../store/modelStore';
import {
  installErrorTransfer,
  type BackendChoice,
  type FlamingoWorkerApi,
  type LoadEvent,
  type LoadResult,
  type LoadTimings,
  type WarningEvent,
} from './api';
import { webGpuAdapterFeatures, webGpuAdapterLimits } from './adapter';
import { buildFor, loadRuntime, runtimeSpan, yielding, type OrtRuntime } from './ort';
import { tokenStream } from './tokenStream';

installErrorTransfer();

let engine: FlamingoEngine | undefined;
/** The running generate or score call, so that a reload can stop it and wait for it. */
let running: { controller: AbortController; done: Promise<unknown> } | undefined;
/** The warm-up after a WASM load (warmUpInBackground); a request stops it and waits for its current run. */
let warming: { controller: AbortController; done: Promise<unknown> } | undefined;
/** Loads run one after another (a backend switch while loading waits its turn). */
let loadQueue: Promise<unknown> = Promise.resolve();
/** What the last load ran: a lost GPU device is replaced by the same model on WASM. */
let loaded: { url: string; manifest: Manifest; variant: VariantChoice } | undefined;
/** The WebGPU engine's device loss (its reason), watched from the moment the engine starts. */
let deviceLost: { engine: FlamingoEngine; reason: Promise<string> } | undefined;
/** The move onto WASM after a device loss, while it runs (requests wait for it). */
let recovering: Promise<void> | undefined;
/** The page's listeners for what it did not ask for: a backend change, latents not saved (api.watch). */
const watchers = new Set<(event: WarningEvent) => void>();

/**
 * The latents' IndexedDB store, telling the page (api.watch) when a write fails: once, until a
 * write succeeds again, and not where the last load found no IndexedDB at all (its warning says
 * so already). The engine carries on from memory; the failure stays in its latentStoreError.
 */
let latentWritesFailing = false;
/** Whether the latest load found no IndexedDB (its cache-unavailable warning); each load sets it afresh. */
let storageUnavailable = false;
const latentStore: PersistentLatentStore = {
  getMany: (keys) => indexedDbLatentStore.getMany(keys),
  async setMany(entries) {
    try {
      await indexedDbLatentStore.setMany(entries);
      latentWritesFailing = false;
    } catch (cause) {
      if (!latentWritesFailing && !storageUnavailable) {
        latentWritesFailing = true;
        const why = cause instanceof DOMException && cause.name === 'QuotaExceededError' ? 'it is full' : messageOf(cause);
        const message = `Encoded pictures could not be saved in this browser's storage (${why}): answers still work, but pictures are encoded again after a reload.`;
        for (const watcher of watchers) void watcher({ type: 'warning', code: 'latents-not-saved', message, cause: String(cause) });
      }
      throw cause;
    }
  },
};

const bundledModelUrl = new URL(`${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, self.location.href).href;

const api: FlamingoWorkerApi = {
  load(modelUrl, options, onEvent) {
    const next = loadQueue.then(() => load(modelUrl, options.backend, options.variant ?? 'auto', onEvent));
    loadQueue = next.catch(() => undefined);
    return next.finally(() => releaseCallback(onEvent));
  },

  async generate(prompt, options, onEvent) {
    // Characters of the answer already streamed: an answer that starts again on WASM (the GPU
    // was lost) does not send them twice; greedy answers are the same on both backends.
    let sent = 0;
    const arrived = performance.now();
    const stream = tokenStream((event) => void onEvent(event));
    try {
      return await exclusive(async (signal) => {
        // the time to first token counts from the request: a warm-up it waited for included
        const waited = performance.now() - arrived;
        let text = '';
        const done = await currentEngine().generate(
          prompt,
          options,
          (event) => {
            if (event.type === 'token') {
              const start = text.length;
              text += event.text;
              if (text.length <= sent) return;
              event = { ...event, text: text.slice(Math.max(start, sent)) };
              sent = text.length;
            } else if (event.type === 'done' && event.tokens > 0) {
              event = { ...event, ttftMs: event.ttftMs + waited };
            }
            stream.push(event);
          },
          signal,
        );
        return done.tokens > 0 ? { ...done, ttftMs: done.ttftMs + waited } : done;
      });
    } finally {
      stream.flush();
      releaseCallback(onEvent);
    }
  },

  async encode(media) {
    await exclusive(async () => {
      await currentEngine().encodeMany(media);
    });
  },

  score(prompt, options, scoreOptions) {
    return exclusive(() => currentEngine().score(prompt, options, scoreOptions));
  },

  async embed(media) {
    const embeddings = await exclusive(async () => {
      const out: Float32Array[] = [];
      for (const frames of media) out.push(await currentEngine().imageEmbedding(frames));
      return out;
    });
    return Comlink.transfer(embeddings, embeddings.map((e) => e.buffer as ArrayBuffer));
  },

  explain(prompt, tokenIds) {
    return exclusive(() => currentEngine().explain(prompt, tokenIds));
  },

  interrupt() {
    running?.controller.abort();
  },

  watch(onEvent) {
    watchers.add(onEvent);
  },

  prepare(backend) {
    // Errors are not the page's concern here: `load` meets the same failure and reports it.
    void buildFor(backend)
      .then(loadRuntime)
      .catch(() => undefined);
  },
};

Comlink.expose(api);

async function load(
  modelUrl: string,
  choice: BackendChoice,
  variant: VariantChoice,
  onEvent: (event: LoadEvent) => void,
): Promise<LoadResult> {
  const started = performance.now();
  const since = () => performance.now() - started;
  const sessions: LoadTimings['sessions'] = {};
  const warnings: WarningEvent[] = [];
  let settled = false;
  storageUnavailable = false; // this load's own warnings say whether IndexedDB is there now
  const emit = (event: LoadEvent) => {
    if (settled) return; // late events (a sibling download still winding down) are dropped
    if (event.type === 'warning') warnings.push(event);
    if (event.type === 'warning' && event.code === 'cache-unavailable') storageUnavailable = true;
    // The engine reports each session as 0 bytes, then all bytes: the span of its create.
    if (event.type === 'progress' && event.phase === 'session') {
      if (event.loadedBytes === 0) sessions[event.file] = [since(), NaN];
      else if (sessions[event.file]) sessions[event.file][1] = since();
    }
    void onEvent(event);
  };

  try {
    // A folder picked from disk (local://…) is in the cache, its manifest in the catalog.
    const url = isLocalModelUrl(modelUrl) ? folder(modelUrl) : folder(new URL(modelUrl, self.location.href).href);
    // The runtime starts first and runs beside the file reads: each is about half of a start-up.
    // (`prepare` may have started it already, while the page was still rendering.)
    const build = await buildFor(choice);
    const runtime = loadRuntime(build);
    runtime.catch(() => undefined); // awaited after the files; a failure surfaces there

    const filesStart = since();
    const manifest =
      url === folder(bundledModelUrl) ? bundledManifest : isLocalModelUrl(url) ? await localManifest(url) : await loadManifest(url, emit);
    let files: [number, number] = [filesStart, NaN];
    // Each backend tried loads the files of the variant it picks (only those: a fallback may load more).
    const readFiles = async (name: string, backend: Backend) => {
      await checkCapacity(manifest, name, backend); // before any download: a clear message when it cannot fit
      const loaded = await loadModel(url, emit, { manifest, variant: name, onWarning: emit });
      files = [files[0], since()];
      return loaded;
    };
    const { backend, fallbackReason, model } = await createEngine(runtime, manifest, readFiles, choice, build === 'webgpu', variant, emit);
    // Downloaded files are written to IndexedDB while the sessions start; a failed write is one of this load's warnings.
    await model.stored;
    loaded = { url, manifest, variant };
    // The model manager lists what was loaded; a failure to note it costs nothing else.
    await recordModel(url, manifest).catch((cause: unknown) => console.warn('Could not record the model', cause));
    // Last: nothing of the load may wait behind the warm-up's graph runs.
    if (backend === 'wasm') warmUpInBackground(currentEngine(), variantFiles(manifest, model.variant));
    const span = runtimeSpan(build);
    return {
      manifest,
      backend,
      variant: model.variant,
      fallbackReason,
      warnings,
      fromCache: Object.values(model.sources).every((source) => source === 'cache'),
      loadMs: since(),
      timings: { workerOrigin: performance.timeOrigin, workerStartMs: started, files, runtime: span && [span[0] - started, span[1] - started], sessions, total: since() },
    };
  } finally {
    settled = true;
  }
}

/**
 * WebGPU when an adapter exists and the sessions start on it; WASM when asked, when there is no
 * adapter, or when WebGPU fails at load (reported as a warning, with the reason). `runtime` is the
 * build for that choice (src/worker/ort.ts): the WebGPU build's WASM EP serves the fallback. Each
 * backend runs the variant `pickVariant` gives it (auto: by the manifest's order and the adapter's features).
 */
async function createEngine(
  runtime: Promise<OrtRuntime>,
  manifest: Manifest,
  files: (variant: string, backend: Backend) => Promise<LoadedModel>,
  choice: BackendChoice,
  gpu: boolean,
  variant: VariantChoice,
  emit: (event: LoadEvent) => void,
): Promise<{ backend: Backend; fallbackReason?: string; model: LoadedModel }> {
  const started = async () => {
    try {
      return yielding(await runtime);
    } catch (cause) {
      throw asFlamingoError(cause, 'ONNX Runtime could not be started');
    }
  };
  let fallbackReason: string | undefined;
  if (choice !== 'wasm') {
    const features = gpu ? await webGpuAdapterFeatures() : undefined;
    if (!features) {
      fallbackReason = 'This browser offers no WebGPU adapter, so the model runs on WASM.';
      emit({ type: 'warning', code: 'webgpu-unavailable', message: fallbackReason });
    } else {
      const model = await files(pickVariant(manifest, 'webgpu', features, variant), 'webgpu');
      const ort = await started();
      await releaseEngine();
      try {
        engine = await FlamingoEngine.create(ort, withVariant(manifest, model.variant), model.files, { backend: 'webgpu', latentStore, externalData: model.externalData }, emit);
        watchDevice(await runtime, engine); // never throws: a device it cannot watch is not watched
        return { backend: engine.backend, model };
      } catch (cause) {
        fallbackReason = `WebGPU failed to start the model (${messageOf(cause)}), so it runs on WASM.`;
        emit({ type: 'warning', code: 'webgpu-failed', message: fallbackReason, cause: String(cause) });
      }
    }
  }
  const model = await files(pickVariant(manifest, 'wasm', new Set(), variant), 'wasm');
  const ort = await started();
  await releaseEngine();
  try {
    // The vision graphs' sessions come with the warm-up (or the first image), after "ready".
    engine = await FlamingoEngine.create(ort, withVariant(manifest, model.variant), model.files, { backend: 'wasm', latentStore, externalData: model.externalData, deferVision: true }, emit);
  } catch (cause) {
    throw asFlamingoError(cause, 'The model could not be started on WASM');
  }
  return { backend: engine.backend, fallbackReason, model };
}

/**
 * On WASM a graph's first run compiles the runtime's code for it (V8 compiles wasm functions when
 * first called): the bundled model's first answer took about 0.8 s longer than the next. A WebGPU
 * engine warms up inside its load (its shaders); a WASM one does it here, after the load, while the
 * visitor is still building a prompt, so "ready" comes no later. A request stops it at its next
 * step (engine.warmUp's signal) and waits for the graph run under way. Only for models of up to
 * WARM_UP_MAX_BYTES: a larger one's warm-up is a long prefill, which a request could not cut short.
 */
const WARM_UP_MAX_BYTES = 64 * 2 ** 20;
function warmUpInBackground(on: FlamingoEngine, files: Record<string, { bytes: number }>): void {
  const bytes = Object.values(files).reduce((sum, f) => sum + f.bytes, 0);
  if (bytes > WARM_UP_MAX_BYTES) return;
  const controller = new AbortController();
  // A WASM graph run holds this thread until it ends, so the warm-up starts a task later: the load's
  // reply (posted from microtasks) reaches the page first. Started inside the load, it held "ready"
  // back by up to 0.4 s (docs/BENCHMARKS.md, 'Start-up: "ready" no longer waits behind the warm-up').
  const afterReply = new Promise<void>((resolve) => setTimeout(resolve, 0));
  const done = afterReply.then(() => (controller.signal.aborted ? undefined : on.warmUp(controller.signal)));
  warming = { controller, done: done.catch(() => undefined) };
}

async function stopWarmUp(): Promise<void> {
  const current = warming;
  if (!current) return;
  current.controller.abort();
  await current.done;
  if (warming === current) warming = undefined;
}

/** What this browser offers against what the manifest says the model needs (src/engine/requirements.ts). */
async function checkCapacity(manifest: Manifest, variant: string, backend: Backend): Promise<void> {
  if (!manifest.requirements && !Object.values(manifest.variants ?? {}).some((v) => v.requirements)) return;
  const files = variantFiles(manifest, variant);
  const capacity: Capacity = { backend, cachedBytes: await cachedBytes(MODEL_FILE_ROLES.map((role) => files[role])) };
  try {
    const estimate = await navigator.storage?.estimate();
    if (estimate?.quota !== undefined) capacity.storageFreeBytes = estimate.quota - (estimate.usage ?? 0);
  } catch {
    // no estimate: storage is not checked
  }
  if (backend === 'webgpu') Object.assign(capacity, await webGpuAdapterLimits());
  const deviceMemory = (navigator as Navigator & { deviceMemory?: number }).deviceMemory;
  if (deviceMemory !== undefined) capacity.deviceMemoryGb = deviceMemory;
  checkRequirements(manifest, variant, capacity);
}

function currentEngine(): FlamingoEngine {
  if (!engine) throw new FlamingoError('The model is not loaded yet.');
  return engine;
}

/**
 * One generate or score at a time; errors reach the UI as FlamingoErrors with their cause. A task
 * that fails because the WebGPU device was lost runs once more, on WASM (moveToWasm).
 */
async function exclusive<T>(task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  await stopWarmUp();
  if (running) throw new FlamingoError('The model is busy with another request; stop it first.');
  const controller = new AbortController();
  const attempt = async () => {
    await recovering;
    const on = currentEngine();
    try {
      return await task(controller.signal);
    } catch (cause) {
      const reason = cause instanceof FlamingoError ? undefined : await lostDeviceReason(on);
      if (reason === undefined || controller.signal.aborted) throw cause;
      await moveToWasm(on, reason);
      return task(controller.signal);
    }
  };
  const done = attempt();
  running = { controller, done: done.catch(() => undefined) };
  try {
    return await done;
  } catch (cause) {
    throw asFlamingoError(cause, 'The model failed while running');
  } finally {
    running = undefined;
  }
}

interface GpuDeviceLike {
  lost: Promise<{ reason?: string; message?: string }>;
}

/**
 * Watches the WebGPU device of `watched` (ORT's, in env.webgpu.device once a session runs on it).
 * A device lost while the model is idle moves it to WASM at once; one lost mid-answer is noticed
 * by `exclusive`, which moves it and runs the answer again.
 */
function watchDevice(ort: OrtRuntime, watched: FlamingoEngine): void {
  // Typed as a Promise; ORT 1.30's WebGPU EP stores the GPUDevice itself there.
  const reason = Promise.resolve()
    .then(() => ort.env.webgpu.device as unknown as GpuDeviceLike | Promise<GpuDeviceLike>)
    .then((device) => device.lost)
    .then((info) => (info.message || info.reason || 'no reason given').replace(/\.$/, ''));
  reason.catch(() => undefined); // no device to watch: nothing to recover from
  deviceLost = { engine: watched, reason };
  void reason.then((why) => {
    if (engine === watched && !running) void moveToWasm(watched, why).catch((cause: unknown) => console.error(cause));
  }, () => undefined);
}

/** Why `on`'s GPU device was lost, if it was (a failing run and the loss arrive close together). */
async function lostDeviceReason(on: FlamingoEngine): Promise<string | undefined> {
  if (on.backend !== 'webgpu' || deviceLost?.engine !== on) return undefined;
  const wait = new Promise<undefined>((resolve) => setTimeout(resolve, 1000, undefined));
  return Promise.race([deviceLost.reason.catch(() => undefined), wait]);
}

/**
 * The GPU device is gone (a driver reset, memory pressure, the tab in the background): the same
 * model and variant choice start on the WASM EP of the WebGPU build, from the files in IndexedDB
 * (downloaded again where there is none), and the page hears of it (api.watch).
 */
function moveToWasm(lost: FlamingoEngine, reason: string): Promise<void> {
  recovering ??= (async () => {
    if (engine !== lost || !loaded) return; // a load replaced it meanwhile
    const { url, manifest, variant } = loaded;
    engine = undefined;
    await lost.release().catch((cause: unknown) => console.warn('Releasing the model on the lost GPU failed', cause));
    const model = await loadModel(url, () => undefined, { manifest, variant: pickVariant(manifest, 'wasm', new Set(), variant) });
    const ort = yielding(await loadRuntime('webgpu'));
    const replacement = await FlamingoEngine.create(ort, withVariant(manifest, model.variant), model.files, { backend: 'wasm', latentStore, externalData: model.externalData }, () => undefined);
    if (engine) {
      await replacement.release(); // a load finished first: its engine stays
      return;
    }
    engine = replacement;
    const message = `The GPU stopped working (${reason}), so the model now runs on WASM; reload the page to try WebGPU again.`;
    for (const watcher of watchers) void watcher({ type: 'warning', code: 'webgpu-lost', message, cause: reason });
  })()
    .catch((cause: unknown) => {
      throw asFlamingoError(cause, `The GPU stopped working (${reason}) and the model could not be started on WASM`);
    })
    .finally(() => (recovering = undefined));
  return recovering;
}

async function releaseEngine(): Promise<void> {
  await stopWarmUp();
  if (running) {
    running.controller.abort();
    await running.done;
  }
  const old = engine;
  engine = undefined;
  await old?.release().catch((cause: unknown) => console.warn('Releasing the previous model failed', cause));
}

function asFlamingoError(cause: unknown, context: string): FlamingoError {
  if (cause instanceof FlamingoError) return cause;
  return new FlamingoError(`${context}: ${messageOf(cause)}`, { cause });
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

function folder(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** Callbacks arrive as comlink proxies, each holding a MessagePort: close it when done. */
function releaseCallback(callback: unknown): void {
  const release = (callback as { [Comlink.releaseProxy]?: () => void })[Comlink.releaseProxy];
  if (typeof release === 'function') release();
}
