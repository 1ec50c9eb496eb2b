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
