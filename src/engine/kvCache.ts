// The language model's self-attention KV cache, in one of two forms (docs/MODEL_FORMAT.md, lm.onnx):
//   TensorKv  the graph's present_* outputs fed back as past_* (WebGPU: they stay on the GPU)
//   AppendKv  CPU buffers with room to grow; a step fetches only its own tokens' new_key/new_value
//             and appends them in place (onnxruntime-node and the WASM EP)
// Why AppendKv: onnxruntime-web copies every CPU output out of the WASM heap into a newly allocated
// array, and Chromium pays 0.1-0.3 ms to allocate one of tens of KB; with 2 * layers present_*
// outputs that was three quarters of a decode step (docs/BENCHMARKS.md, "Decode in the browser").
// A cache is immutable once made: appending to one whose store another cache has already grown
// (a prefix reused by a second query, a beam) copies the rows first, as Go's append does.
import type * as Ort from 'onnxruntime-common';

type Tensor = Ort.Tensor;
type TensorCtor = typeof Ort.Tensor;

export interface KvShape {
  layers: number;
  heads: number;
  headDim: number;
}

/** Per layer past/present K/V of a batch of sequences, [B, heads, length, head_dim] each. */
export interface KvCache {
  readonly batch: number;
  readonly length: number;
  dispose(): void;
}

export class TensorKv implements KvCache {
  constructor(
    readonly tensors: Tensor[],
    readonly batch: number,
    readonly length: number,
  ) {}

  /** GPU tensors are freed by hand (ORT does not track them); CPU ones are left to the GC. */
  dispose(): void {
    for (const t of this.tensors) if (t.location === 'gpu-buffer') t.dispose();
  }
}

/**
 * 2 * layers buffers (K, V per layer) of [batch, heads, capacity, head_dim]; rows at and after
 * `filled` are free.
 */
class KvStore {
  filled = 0;

  constructor(
    readonly shape: KvShape,
    readonly batch: number,
    readonly capacity: number,
    readonly buffers = Array.from({ length: 2 * shape.layers }, () => new Float32Array(batch * shape.heads * capacity * shape.headDim)),
  ) {}
}

/**
 * The arrays a step's contiguous past is gathered into, one per K/V buffer, kept from step to step
 * and from answer to answer: in Chromium, writing into newly allocated memory costs far more than
 * the copy (a CPU profile of the worker, docs/BENCHMARKS.md "Session 9"). One step at a time uses
 * them: `take` gives undefined while another holds them (onnxruntime-node reads its inputs while
 * the run is under way), and that step gathers into arrays of its own.
 */
export class PastScratch {
  private arrays: Float32Array[] = [];
  private busy = false;

  constructor(private readonly count: number) {}

  take(size: number): Float32Array[] | undefined {
    if (this.busy) return undefined;
    this.busy = true;
    if ((this.arrays[0]?.length ?? -1) < size) {
      const length = Math.max(size, 2 * (this.arrays[0]?.length ?? 0));
      this.arrays = Array.from({ length: this.count }, () => new Float32Array(length));
    }
    return this.arrays;
  }

  give(): void {
    this.busy = false;
  }
}

export class AppendKv implements KvCache {
  constructor(
    readonly store: KvStore,
    readonly length: number,
  ) {}

  static empty(shape: KvShape, batch: number, capacity = 64): AppendKv {
    return new AppendKv(new KvStore(shape, batch, capacity), 0);
  }

  get batch(): number {
    return this.store.batch;
  }

  dispose(): void {}

  /** Floats per past_* tensor of a step. */
  get pastSize(): number {
    const { heads, headDim } = this.store.shape;
    return this.store.batch * heads * this.length * headDim;
  }

  /**
   * The past_* tensors of a step: each buffer's first `length` rows, contiguous, gathered into
   * `scratch` (PastScratch.take(pastSize)) or, without it, into arrays of their own.
   */
  pastTensors(Tensor: TensorCtor, scratch?: Float32Array[]): Tensor[] {
    const { store, length } = this;
    const { heads, headDim } = store.shape;
    const rows = store.batch * heads;
    const size = this.pastSize;
    return store.buffers.map((buffer, i) => {
      const out = scratch ? scratch[i].subarray(0, size) : new Float32Array(size);
      for (let r = 0; r < rows; r++) {
        const from = r * store.capacity * headDim;
        out.set(buffer.subarray(from, from + length * headDim), r * length * headDim);
      }
      return new Tensor('float32', out, [store.batch, heads, length, headDim]);
    });
  }

  /**
   * This cache followed by `count` new positions: `rows[i]` is buffer i's new_key/new_value output,
   * [batch, count, heads * head_dim]. Written in place when this cache is its store's longest and
   * the store has room; otherwise into a new store (twice as large when it has to grow).
   */
  append(rows: Float32Array[], count: number): AppendKv {
    const { shape, batch } = this.store;
    const { heads, headDim } = shape;
    const total = this.length + count;
    let store = this.store;
    if (store.filled !== this.length || total > store.capacity) {
      store = new KvStore(shape, batch, total > store.capacity ? Math.max(2 * store.capacity, total) : store.capacity);
      copyRows(this.store, store, Array.from({ length: batch }, (_, b) => b), this.length);
    }
    // element by element: a head's row is head_dim floats, and a subarray + set per row (an object
    // each) cost more than the copy (a CPU profile of the worker, docs/BENCHMARKS.md "Session 9")
    rows.forEach((data, i) => {
      const buffer = store.buffers[i];
      for (let b = 0; b < batch; b++) {
        for (let s = 0; s < count; s++) {
          for (let h = 0; h < heads; h++) {
            const from = ((b * count + s) * heads + h) * headDim;
            const to = ((b * heads + h) * store.capacity + this.length + s) * headDim;
            for (let k = 0; k < headDim; k++) buffer[to + k] = data[from + k];
          }
        }
      }
    });
    store.filled = total;
    return new AppendKv(store, total);
  }

  /** A new cache of the sequences `sources` (one per new row, repeats allowed). */
  selectRows(sources: number[]): AppendKv {
    const store = new KvStore(this.store.shape, sources.length, this.store.capacity);
    copyRows(this.store, store, sources, this.length);
    store.filled = this.length;
    return new AppendKv(store, this.length);
  }
}

/** The first `length` rows of sequence sources[j] of `from` into sequence j of `to`. */
function copyRows(from: KvStore, to: KvStore, sources: number[], length: number): void {
  const { heads, headDim } = from.shape;
  from.buffers.forEach((src, i) => {
    const dst = to.buffers[i];
    sources.forEach((b, j) => {
      for (let h = 0; h < heads; h++) {
        const start = (b * heads + h) * from.capacity * headDim;
        dst.set(src.subarray(start, start + length * headDim), (j * heads + h) * to.capacity * headDim);
      }
    });
  });
}
