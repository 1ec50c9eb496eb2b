// ONNX Runtime Web, configured for this app: the runtime's JS glue and wasm come from the app's
// own origin (vite.config.ts serves and emits them under `ort/`), never from a CDN.
import * as ort from 'onnxruntime-web/webgpu';

ort.env.wasm.wasmPaths = new URL(`${import.meta.env.BASE_URL}ort/`, self.location.href).href;
// WASM threads (ORT's default count: half the cores, at most 4) need cross-origin isolation,
// which the servers provide with COOP/COEP; without it ORT falls back to one thread.

export { ort };

interface GpuLike {
  requestAdapter(): Promise<unknown>;
}

/** True when this context has a usable WebGPU adapter. */
export async function hasWebGpuAdapter(): Promise<boolean> {
  const gpu = (navigator as Navigator & { gpu?: GpuLike }).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
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
export const yieldingOrt: Pick<typeof ort, 'InferenceSession' | 'Tensor'> = {
  Tensor: ort.Tensor,
  InferenceSession: {
    ...ort.InferenceSession,
    async create(...args: Parameters<typeof ort.InferenceSession.create>) {
      const session = await ort.InferenceSession.create(...args);
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
  } as typeof ort.InferenceSession,
};

const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();

function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });
}
