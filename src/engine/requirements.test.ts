// The check before a download: what a manifest says a model needs against what a place offers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUNDLED_MODEL_DIR } from '../cli/node';
import { validateManifest } from './manifest';
import { checkRequirements, WASM_MEMORY_BYTES } from './requirements';
import type { Manifest } from './types';

const GB = 2 ** 30;
const bundled = validateManifest(JSON.parse(readFileSync(join(BUNDLED_MODEL_DIR, 'manifest.json'), 'utf8')));
// OpenFlamingo-3B's float32 files: MPT-1B, CLIP ViT-L/14 and the bridge (models/flamingo/convert_openflamingo.py)
const big: Manifest = {
  ...bundled,
  name: 'openflamingo-3b',
  requirements: { storage_bytes: 13 * GB, memory_bytes: 16 * GB, largest_tensor_bytes: 412 * 2 ** 20 },
  variants: {
    q4: { description: 'q4', backends: ['wasm', 'webgpu'], files: {}, requirements: { storage_bytes: 2 * GB, memory_bytes: 3 * GB, largest_tensor_bytes: 412 * 2 ** 20 } },
    fp16: { description: 'fp16', backends: ['webgpu'], files: {} },
  },
};

describe('checkRequirements', () => {
  it('passes a model that states nothing (the bundled one), whatever the place', () => {
    expect(bundled.requirements).toBeUndefined();
    expect(() => checkRequirements(bundled, 'float32', { backend: 'wasm', storageFreeBytes: 0, deviceMemoryGb: 0.25 })).not.toThrow();
  });

  it('says how much storage is short, counting what is already stored', () => {
    expect(() => checkRequirements(big, 'float32', { backend: 'webgpu', storageFreeBytes: 10 * GB })).toThrow(
      /needs 13\.0 GB of browser storage, but only 10\.0 GB is free/,
    );
    expect(() => checkRequirements(big, 'float32', { backend: 'webgpu', storageFreeBytes: 10 * GB, cachedBytes: 4 * GB })).not.toThrow();
  });

  it('refuses more than WebAssembly can address on WASM, not on WebGPU', () => {
    expect(big.requirements!.memory_bytes).toBeGreaterThan(WASM_MEMORY_BYTES);
    expect(() => checkRequirements(big, 'float32', { backend: 'wasm' })).toThrow(/more than the 4\.0 GB WebAssembly can address/);
    expect(() => checkRequirements(big, 'float32', { backend: 'webgpu' })).not.toThrow();
  });

  it('checks a variant by its own numbers, or by the default files when it states none', () => {
    expect(() => checkRequirements(big, 'q4', { backend: 'wasm', storageFreeBytes: 2.5 * GB })).not.toThrow();
    expect(() => checkRequirements(big, 'fp16', { backend: 'wasm' })).toThrow(/WebAssembly/);
  });

  it('refuses a weight larger than one GPU buffer', () => {
    expect(() => checkRequirements(big, 'float32', { backend: 'webgpu', maxBufferSize: 2 * GB, maxStorageBufferBindingSize: 128 * 2 ** 20 })).toThrow(
      /412 MB weight, larger than the 128 MB this GPU allows/,
    );
  });

  it('trusts navigator.deviceMemory only below its cap of 8 GB', () => {
    expect(() => checkRequirements(big, 'float32', { backend: 'webgpu', deviceMemoryGb: 4 })).toThrow(/29\.0 GB of memory while it loads; this device has 4 GB/);
    expect(() => checkRequirements(big, 'q4', { backend: 'webgpu', deviceMemoryGb: 4 })).toThrow(/5\.0 GB/); // 3 GB to run + 2 GB of files
    expect(() => checkRequirements(big, 'float32', { backend: 'webgpu', deviceMemoryGb: 8 })).not.toThrow();
  });

  it('the manifest check takes requirements and names a bad one', () => {
    expect(validateManifest(big).requirements).toEqual(big.requirements);
    expect(() => validateManifest({ ...big, requirements: { storage_bytes: 1, memory_bytes: -1, largest_tensor_bytes: 1 } })).toThrow(
      /requirements\.memory_bytes must be a positive integer/,
    );
  });
});
