// Inputs for a graph made from its own metadata (bench/graphs.ts, bench/lm-compare.ts,
// bench/outputs.ts): symbolic dimensions from `dims`, float inputs `float(i)` (default zero), int64
// inputs one (a token id, an image index, logits_to_keep).
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common';

export type Ort = { InferenceSession: typeof InferenceSession; Tensor: typeof OrtTensor; env: { wasm: { numThreads?: number } } };

export function feeds(
  ort: Ort,
  session: InferenceSession,
  dims: Record<string, number>,
  float: (i: number) => number = () => 0,
): Record<string, OrtTensor> {
  const out: Record<string, OrtTensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
    const shape = meta.shape.map((d) => {
      if (typeof d === 'number' && d >= 0) return d;
      const size = dims[String(d)];
      if (size === undefined) throw new Error(`input ${meta.name}: no size for dimension ${String(d)} (--dims ${String(d)}=N)`);
      return size;
    });
    const count = shape.reduce((a, b) => a * b, 1);
    if (meta.type === 'int64') out[meta.name] = new ort.Tensor('int64', new BigInt64Array(count).fill(1n), shape);
    else if (meta.type === 'float32') out[meta.name] = new ort.Tensor('float32', Float32Array.from({ length: count }, (_, i) => float(i)), shape);
    else throw new Error(`input ${meta.name}: type ${meta.type} not handled`);
  }
  return out;
}
