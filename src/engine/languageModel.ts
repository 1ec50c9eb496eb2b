// The language model's two graphs, one call each (docs/MODEL_FORMAT.md):
//   crossAttentionKv(latents)  xattn_kv.onnx, once per prompt: the gated blocks' K/V of every image
//   step(tokens, cache)        lm.onnx: new tokens after a KV cache -> logits of the last K positions
// What one decode step costs can be read off `step`: one input tensor each for the token, its image
// index and the (constant) number of logits kept, the prompt's cross-attention K/V as they are, the
// cache's rows, one session.run, and a read of `vocab` floats. On the CPU and WASM the step fetches
// only its own token's K/V and appends them to the cache (kvCache.ts: AppendKv); on WebGPU the KV
// cache and the cross-attention K/V are kept on the GPU (gpu-buffer outputs fed back, TensorKv) and
// only logits come back.
import type * as Ort from 'onnxruntime-common';
import { AppendKv, PastScratch, TensorKv, type KvCache, type KvShape } from './kvCache';
import type { Backend, Manifest } from './types';

export type { KvCache } from './kvCache';
type Tensor = Ort.Tensor;
type Session = Ort.InferenceSession;
export type OrtModule = Pick<typeof Ort, 'InferenceSession' | 'Tensor'>;

/** The gated blocks' keys and values of a prompt's images: one tensor per name, fed to every step. */
export interface CrossKv {
  tensors: Record<string, Tensor>;
  batch: number;
  dispose(): void;
}

export interface StepTimings {
  feedsMs: number;
  runMs: number;
  outputsMs: number;
}

export class LanguageModel {
  private readonly layers: number;
  private readonly heads: number;
  private readonly headDim: number;
  private readonly shape: KvShape;
  /** The cache is AppendKv (the graph has new_key_* and the backend is not WebGPU), else TensorKv. */
  readonly appends: boolean;
  /** What a plain step reads: logits and the cache's new rows (not the pictures' queries). */
  private readonly fetches: string[];
  /** The K/V outputs among them, per layer key then value: present_* or new_*. */
  private readonly kvNames: string[];
  private readonly queryNames: string[];
  /** What an AppendKv's past is gathered into for a step. */
  private readonly scratch: PastScratch;

  /** `appendCache`: false keeps present_* even where new_key_* could be appended (the plain path, for tests). */
  constructor(
    private readonly ort: OrtModule,
    private readonly lm: Session,
    private readonly xattnKv: Session,
    manifest: Manifest,
    backend: Backend,
    appendCache = true,
  ) {
    ({ layers: this.layers, heads: this.heads, head_dim: this.headDim } = manifest.lm);
    this.shape = { layers: this.layers, heads: this.heads, headDim: this.headDim };
    this.appends = appendCache && backend !== 'webgpu' && lm.outputNames.includes('new_key_0');
    const kv = this.appends ? 'new' : 'present';
    this.kvNames = Array.from({ length: this.layers }, (_, i) => [`${kv}_key_${i}`, `${kv}_value_${i}`]).flat();
    this.fetches = ['logits', ...this.kvNames];
    this.queryNames = manifest.lm.xattn_layers.map((i) => `xattn_query_${i}`);
    this.scratch = new PastScratch(2 * this.layers);
  }

  /** Session options per graph: on WebGPU, K/V outputs stay on the GPU; logits come to the CPU. */
  static outputLocations(manifest: Manifest, backend: Backend, graph: 'lm' | 'xattn_kv'): Record<string, 'gpu-buffer' | 'cpu'> | undefined {
    if (backend !== 'webgpu') return undefined;
    const names: Record<string, 'gpu-buffer' | 'cpu'> = {};
    if (graph === 'xattn_kv') {
      for (const i of manifest.lm.xattn_layers) names[`xattn_key_${i}`] = names[`xattn_value_${i}`] = 'gpu-buffer';
    } else {
      names.logits = 'cpu';
      for (let i = 0; i < manifest.lm.layers; i++) names[`present_key_${i}`] = names[`present_value_${i}`] = 'gpu-buffer';
    }
    return names;
  }

  /** `capacity`: the positions an AppendKv holds before it has to grow (a copy into a new store). */
  emptyCache(batch: number, capacity?: number): KvCache {
    if (this.appends) return AppendKv.empty(this.shape, batch, capacity);
    const empty = new this.ort.Tensor('float32', new Float32Array(0), [batch, this.heads, 0, this.headDim]);
    return new TensorKv(Array.from({ length: 2 * this.layers }, () => empty), batch, 0);
  }

  /** media [M × n_latents × d_vision] (M ≥ 1), repeated for a batch of `batch` sequences. */
  async crossAttentionKv(media: Float32Array, dims: [number, number, number], batch: number): Promise<CrossKv> {
    const data = batch === 1 ? media : repeat(media, batch);
    const out = await this.xattnKv.run({ media_latents: new this.ort.Tensor('float32', data, [batch, ...dims]) });
    return { tensors: out, batch, dispose: () => Object.values(out).forEach((t) => t.location === 'gpu-buffer' && t.dispose()) };
  }

  /**
   * One lm call: `tokens` [B rows of equal length] after `past`, each token looking at image
   * `mediaIndex` (same shape); logits for the last `keep` positions, [B × keep × vocab] row-major.
   */
  async step(
    tokens: ArrayLike<number>[],
    mediaIndex: ArrayLike<number>[],
    cross: CrossKv,
    past: KvCache,
    keep: number,
    timings?: StepTimings,
    withQueries = false,
  ): Promise<{ logits: Float32Array; present: KvCache; queries?: Record<string, Float32Array> }> {
    const t0 = performance.now();
    const B = tokens.length;
    const S = tokens[0].length;
    const ids = new BigInt64Array(B * S);
    const midx = new BigInt64Array(B * S);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        ids[b * S + s] = BigInt(tokens[b][s]);
        midx[b * S + s] = BigInt(mediaIndex[b][s]);
      }
    }
    const feeds: Record<string, Tensor> = {
      ...cross.tensors,
      input_ids: new this.ort.Tensor('int64', ids, [B, S]),
      media_index: new this.ort.Tensor('int64', midx, [B, S]),
      logits_to_keep: new this.ort.Tensor('int64', BigInt64Array.of(BigInt(keep)), [1]),
    };
    // an AppendKv's rows go in through the reused scratch, unless another step is reading it now
    const scratch = past instanceof AppendKv ? this.scratch.take(past.pastSize) : undefined;
    const pastTensors = past instanceof AppendKv ? past.pastTensors(this.ort.Tensor, scratch) : (past as TensorKv).tensors;
    for (let i = 0; i < this.layers; i++) {
      feeds[`past_key_${i}`] = pastTensors[2 * i];
      feeds[`past_value_${i}`] = pastTensors[2 * i + 1];
    }
    const t1 = performance.now();
    let out: Record<string, Tensor>;
    try {
      out = await this.lm.run(feeds, withQueries ? [...this.fetches, ...this.queryNames] : this.fetches);
    } finally {
      if (scratch) this.scratch.give();
    }
    const t2 = performance.now();
    let present: KvCache;
    if (past instanceof AppendKv) {
      present = past.append(this.kvNames.map((name) => out[name].data as Float32Array), S);
    } else {
      present = new TensorKv(this.kvNames.map((name) => out[name]), B, past.length + S);
    }
    const logits = out.logits.data as Float32Array;
    if (timings) {
      timings.feedsMs += t1 - t0;
      timings.runMs += t2 - t1;
      timings.outputsMs += performance.now() - t2;
    }
    const queries = withQueries ? Object.fromEntries(this.queryNames.map((n) => [n, out[n].data as Float32Array])) : undefined;
    return { logits, present, queries };
  }

  /** A tensor's floats on the CPU (read back from the GPU when it lives there). */
  static async cpuData(t: Tensor): Promise<Float32Array> {
    return (t.location === 'gpu-buffer' ? await t.getData() : t.data) as Float32Array;
  }

  /**
   * The cache rows `rows` (one source sequence per new row): beam reordering and fanning one
   * prompt out to a batch. Done on the CPU; GPU tensors are read back first (not a per-token path
   * for greedy decoding).
   */
  async selectRows(cache: KvCache, rows: number[]): Promise<KvCache> {
    if (cache instanceof AppendKv) return cache.selectRows(rows);
    const { tensors } = cache as TensorKv;
    const per = this.heads * cache.length * this.headDim;
    const selected: Tensor[] = [];
    for (const t of tensors) {
      const data = await LanguageModel.cpuData(t);
      const out = new Float32Array(rows.length * per);
      rows.forEach((r, i) => out.set(data.subarray(r * per, (r + 1) * per), i * per));
      selected.push(new this.ort.Tensor('float32', out, [rows.length, this.heads, cache.length, this.headDim]));
    }
    return new TensorKv(selected, rows.length, cache.length);
  }
}

function repeat(data: Float32Array, times: number): Float32Array {
  const out = new Float32Array(data.length * times);
  for (let i = 0; i < times; i++) out.set(data, i * data.length);
  return out;
}
