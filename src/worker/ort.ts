// ONNX Runtime Web, configured for this app: the runtime's JS glue and wasm come from the app's
// own origin (vite.config.ts serves and emits them under `ort/`), never from a CDN.
//
// Two builds, each imported only when it is used:
// - 'wasm': `ort.wasm.min.mjs` + `ort-wasm-simd-threaded.{mjs,wasm}` (14 MB), WASM EP only. It
//   starts about 3x faster than the asyncify build (no asyncify instrumentation: half the code to
//   compile and initialise), so a visitor without WebGPU never pays for it.
// - 'webgpu': `ort.webgpu.min.mjs` + `ort-wasm-simd-threaded.asyncify.{mjs,wasm}` (27 MB), the
//   WebGPU EP and the WASM EP; a WebGPU start that fails falls back to this build's WASM EP, so
//   the fallback loads nothing more.
import type { OrtModule } from '../engine/engine';
import { webGpuAdapterFeatures } from './adapter';

export type RuntimeBuild = 'webgpu' | 'wasm';

/** What the worker needs of an ORT module: the engine's part and `env`. */
export type OrtRuntime = OrtModule & { env: typeof import('onnxruntime-web').env };

// WASM threads (ORT's default count: half the cores, at most 4; one thread on this project's
// two-core machines, where two were slower than one for decode) need cross-origin isolation,
// which the servers provide with COOP/COEP; without it ORT falls back to one thread.

/**
 * A graph of one Identity node (float [1] → float [1], opset 17): creating a session of it makes
 * ORT fetch, compile and initialise its wasm, which otherwise happens inside the first model
 * graph's session, after the model files are read.
 */
const IDENTITY_MODEL = Uint8Array.from([
  8, 8, 58, 55, 10, 16, 10, 1, 120, 18, 1, 121, 34, 8, 73, 100, 101, 110, 116, 105, 116, 121, 18, 1, 103, 90, 15, 10,
  1, 120, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 98, 15, 10, 1, 121, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 66, 4,
  10, 0, 16, 17,
]);

const runtimes = new Map<RuntimeBuild, Promise<OrtRuntime>>();
/** When each build's start began and ended, on this worker's clock (performance.now()). */
const spans = new Map<RuntimeBuild, [number, number]>();

/** The start of `build` as [start, end] in ms (end NaN while it runs); undefined if never started. */
export function runtimeSpan(build: RuntimeBuild): [number, number] | undefined {
  return spans.get(build);
}

/**
 * The ORT build, imported, configured and initialised (its wasm compiled and started) once per
 * worker. Call it as early as possible: it runs in parallel with reading the model files.
 */
export function loadRuntime(build: RuntimeBuild): Promise<OrtRuntime> {
  let runtime = runtimes.get(build);
  if (!runtime) {
    const span: [number, number] = [performance.now(), NaN];
    spans.set(build, span);
    runtime = startRuntime(build).then((ort) => {
      span[1] = performance.now();
      return ort;
    });
    runtimes.set(build, runtime);
    // A failed start is not cached: the next load tries again.
    runtime.catch(() => runtimes.delete(build));
  }
  return runtime;
}

/** The build a backend choice runs on: the WebGPU build only where there is an adapter. */
export async function buildFor(choice: 'auto' | 'webgpu' | 'wasm'): Promise<RuntimeBuild> {
  return choice !== 'wasm' && (await hasWebGpuAdapter()) ? 'webgpu' : 'wasm';
}

async function startRuntime(build: RuntimeBuild): Promise<OrtRuntime> {
  const ort: OrtRuntime = build === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm');
  ort.env.wasm.wasmPaths = new URL(`${import.meta.env.BASE_URL}ort/`, self.location.href).href;
  // The WASM EP's initialisation is shared by every EP of the build (the WebGPU EP's own start
  // comes with the first session on it, where a failure can still fall back).
  const session = await ort.InferenceSession.create(IDENTITY_MODEL, { executionProviders: ['wasm'], logSeverityLevel: 3 });
  await session.release();
  return ort;
}

let adapterCheck: Promise<boolean> | undefined;
/** True when this context has a usable WebGPU adapter (asked once per worker). */
export function hasWebGpuAdapter(): Promise<boolean> {
  adapterCheck ??= webGpuAdapterFeatures().then((features) => features !== undefined);
  return adapterCheck;
}

/**
 * ONNX Runtime as handed to the engine, except that a `session.run` first lets the worker's event
 * loop turn when it has not for YIELD_EVERY_MS. On the WASM EP a run settles through microtasks
 * alone, so a decode loop never yielded to the message queue and `interrupt()` (a comlink message)
 * arrived only after the generation had finished. A MessageChannel round trip is a task without
 * setTimeout's clamping; doing it at most every few ms keeps it off the per-token cost (a decode
 * step is ~2 ms) while Stop still lands within a step or two.
 */
const YIELD_EVERY_MS = 8;
let lastYield = 0;
export function yielding(ort: OrtModule): OrtModule {
  return {
    Tensor: ort.Tensor,
    InferenceSession: {
      ...ort.InferenceSession,
      async create(...args: Parameters<OrtModule['InferenceSession']['create']>) {
        const session = await ort.InferenceSession.create(...(args as [Uint8Array]));
        const run = session.run.bind(session);
        session.run = (async (...runArgs: Parameters<typeof run>) => {
          if (performance.now() - lastYield >= YIELD_EVERY_MS) {
            await nextTask();
            lastYield = performance.now();
          }
          return run(...runArgs);
        }) as typeof session.run;
        return session;
      },
    } as OrtModule['InferenceSession'],
  };
}

const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();

function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });
}
