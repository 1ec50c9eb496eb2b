// Will a model fit here? Checked before any download starts, from what the manifest says it needs
// (`requirements`, written by the converter) and what this browser or machine offers; a model that
// cannot fit ends in one message saying what is short, instead of a download that fails hours later
// or a tab that runs out of memory.
import type { Backend, Manifest, ModelRequirements } from './types';
import { FlamingoError } from './types';

/** What this place offers; a field left out is not checked. */
export interface Capacity {
  backend: Backend;
  /** Browser storage this origin can still use (navigator.storage.estimate(): quota − usage). */
  storageFreeBytes?: number;
  /** Bytes of the model already stored (not downloaded again). */
  cachedBytes?: number;
  /** The WebGPU adapter's limits (the largest weight is one buffer). */
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  /** navigator.deviceMemory, GB: Chrome rounds it down and reports at most 8, so only a smaller value tells. */
  deviceMemoryGb?: number;
}

/** WebAssembly's 32-bit memory: the WASM backend cannot hold more. */
export const WASM_MEMORY_BYTES = 4 * 2 ** 30;
const DEVICE_MEMORY_CAP_GB = 8;

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GB`;
const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`;

/** The variant's own requirements, else the default files' (an upper bound: variants are smaller). */
export function requirementsOf(manifest: Manifest, variant: string): ModelRequirements | undefined {
  return manifest.variants?.[variant]?.requirements ?? manifest.requirements;
}

/** Throws a FlamingoError naming what is short; returns quietly when it fits (or nothing is stated). */
export function checkRequirements(manifest: Manifest, variant: string, capacity: Capacity): void {
  const need = requirementsOf(manifest, variant);
  if (!need) return;
  const name = `The model ${manifest.name}`;
  const toStore = need.storage_bytes - (capacity.cachedBytes ?? 0);
  if (capacity.storageFreeBytes !== undefined && toStore > capacity.storageFreeBytes) {
    throw new FlamingoError(
      `${name} needs ${gb(toStore)} of browser storage, but only ${gb(capacity.storageFreeBytes)} is free here: free some space (or delete other models in the model manager) and try again.`,
    );
  }
  if (capacity.backend === 'wasm' && need.memory_bytes > WASM_MEMORY_BYTES) {
    throw new FlamingoError(
      `${name} needs about ${gb(need.memory_bytes)} of memory, more than the ${gb(WASM_MEMORY_BYTES)} WebAssembly can address: it runs only on WebGPU, or as a smaller variant.`,
    );
  }
  if (capacity.backend === 'webgpu') {
    const limit = Math.min(capacity.maxBufferSize ?? Infinity, capacity.maxStorageBufferBindingSize ?? Infinity);
    if (need.largest_tensor_bytes > limit) {
      throw new FlamingoError(
        `${name} has a ${mb(need.largest_tensor_bytes)} weight, larger than the ${mb(limit)} this GPU allows in one buffer.`,
      );
    }
  }
  // While the sessions start, the page holds the files as well as the runtime's copy of them
  // (measured: docs/BENCHMARKS.md, "OpenFlamingo-3B-shaped"), so the device needs both.
  const memory = capacity.deviceMemoryGb;
  const peak = need.memory_bytes + need.storage_bytes;
  if (memory !== undefined && memory < DEVICE_MEMORY_CAP_GB && peak > memory * 2 ** 30) {
    throw new FlamingoError(`${name} needs about ${gb(peak)} of memory while it loads; this device has ${memory} GB.`);
  }
}
