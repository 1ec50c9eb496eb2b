// What the WebGPU adapter offers, for choosing a model variant (fp16 needs `shader-f16`) and for
// checking that a model's largest weight fits in one buffer.
interface GpuLike {
  requestAdapter(): Promise<{ features: Iterable<string>; limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number } } | null>;
}

/** The adapter's buffer limits, or undefined without an adapter. */
export async function webGpuAdapterLimits(): Promise<{ maxBufferSize: number; maxStorageBufferBindingSize: number } | undefined> {
  const gpu = (navigator as Navigator & { gpu?: GpuLike }).gpu;
  try {
    const limits = (await gpu?.requestAdapter())?.limits;
    return limits && { maxBufferSize: limits.maxBufferSize, maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize };
  } catch {
    return undefined;
  }
}

/** The adapter's features, or undefined when this context has no WebGPU adapter. */
export async function webGpuAdapterFeatures(): Promise<ReadonlySet<string> | undefined> {
  const gpu = (navigator as Navigator & { gpu?: GpuLike }).gpu;
  if (!gpu) return undefined;
  try {
    const adapter = await gpu.requestAdapter();
    return adapter ? new Set(adapter.features) : undefined;
  } catch {
    return undefined;
  }
}
