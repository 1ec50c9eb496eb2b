// What the WebGPU adapter offers, for choosing a model variant (fp16 needs `shader-f16`).
interface GpuLike {
  requestAdapter(): Promise<{ features: Iterable<string> } | null>;
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
