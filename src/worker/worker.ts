// The worker owns the model: one FlamingoEngine, loaded from the model store, driven by the UI
// through comlink (api.ts). The UI thread never runs ONNX Runtime, so it never blocks.
import * as Comlink from 'comlink';
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

installErrorTransfer();

let engine: FlamingoEngine | undefined;
/** The running generate or score call, so that a reload can stop it and wait for it. */
let running: { controller: AbortController; done: Promise<unknown> } | undefined;
/** Loads run one after another (a backend switch while loading waits its turn). */
let loadQueue: Promise<unknown> = Promise.resolve();

const bundledModelUrl = new URL(`${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, self.location.href).href;

const api: FlamingoWorkerApi = {
  load(modelUrl, options, onEvent) {
    const next = loadQueue.then(() => load(modelUrl, options.backend, options.variant ?? 'auto', onEvent));
    loadQueue = next.catch(() => undefined);
    return next.finally(() => releaseCallback(onEvent));
  },

  async generate(prompt, options, onEvent) {
    try {
      return await exclusive((signal) => currentEngine().generate(prompt, options, (event) => void onEvent(event), signal));
    } finally {
      releaseCallback(onEvent);
    }
  },

  async encode(media) {
    await exclusive(async () => {
      for (const frames of media) await currentEngine().encodeMedia(frames);
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
  const emit = (event: LoadEvent) => {
    if (settled) return; // late events (a sibling download still winding down) are dropped
    if (event.type === 'warning') warnings.push(event);
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
    // The model manager lists what was loaded; a failure to note it costs nothing else.
    await recordModel(url, manifest).catch((cause: unknown) => console.warn('Could not record the model', cause));
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
        engine = await FlamingoEngine.create(ort, withVariant(manifest, model.variant), model.files, { backend: 'webgpu', latentStore: indexedDbLatentStore, externalData: model.externalData }, emit);
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
    engine = await FlamingoEngine.create(ort, withVariant(manifest, model.variant), model.files, { backend: 'wasm', latentStore: indexedDbLatentStore, externalData: model.externalData }, emit);
  } catch (cause) {
    throw asFlamingoError(cause, 'The model could not be started on WASM');
  }
  return { backend: engine.backend, fallbackReason, model };
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

/** One generate or score at a time; errors reach the UI as FlamingoErrors with their cause. */
async function exclusive<T>(task: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (running) throw new FlamingoError('The model is busy with another request; stop it first.');
  const controller = new AbortController();
  const done = task(controller.signal);
  running = { controller, done: done.catch(() => undefined) };
  try {
    return await done;
  } catch (cause) {
    throw asFlamingoError(cause, 'The model failed while running');
  } finally {
    running = undefined;
  }
}

async function releaseEngine(): Promise<void> {
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
