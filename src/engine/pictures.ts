// What the model looked at, for the app's pictures: for a generated token, each gated layer's
// cross-attention over the latents of the image it looked at, and that carried back onto the
// image's grid cells through the resampler's (last layer's) attention from latents to cells.
//   latents[l] = mean over heads of softmax_l(q_h · k_{h,l} / sqrt(dh))  (l: that image's latents)
//   cells[t][c] = Σ_l latents[l] · r[l][t][c], r = the resampler's attention of latent l over the
//                 grid cells of frame t (mean over heads), renormalised over the cells
// Plain arithmetic on outputs the graphs already have (xattn_query_i from lm.onnx, the K of
// xattn_kv.onnx, latent_attention from resampler.onnx): nothing runs on the decode path.
import type { GateValues } from './types';

export interface LayerPicture {
  layer: number;
  /** tanh(alpha), tanh(beta) of this layer's gated block. */
  gates: { attn: number; ff: number };
  /** Attention over the image's latents, averaged over heads (sums to 1). */
  latents: number[];
  /** The same carried onto the grid cells, per frame [T][grid × grid] (sums to 1 over all). */
  cells: number[][];
}

export interface TokenPicture {
  /** The generated token's text. */
  text: string;
  /** The image (or clip) it looked at, as an index among the prompt's images; -1 for none. */
  media: number;
  layers: LayerPicture[];
}

export interface Pictures {
  /** Cells per side of an image's grid. */
  grid: number;
  gates: GateValues[];
  tokens: TokenPicture[];
}

/** Softmax over one image's latents of one query position, averaged over heads. */
export function latentAttention(
  query: Float32Array, // [d] at one position
  keys: Float32Array, // [heads, M·l, dh]
  media: number,
  nLatents: number,
  heads: number,
  headDim: number,
): number[] {
  const total = keys.length / (heads * headDim);
  const out = new Array<number>(nLatents).fill(0);
  const scale = 1 / Math.sqrt(headDim);
  for (let h = 0; h < heads; h++) {
    const scores: number[] = [];
    for (let l = 0; l < nLatents; l++) {
      const row = (h * total + media * nLatents + l) * headDim;
      let s = 0;
      for (let j = 0; j < headDim; j++) s += query[h * headDim + j] * keys[row + j];
      scores.push(s * scale);
    }
    const max = Math.max(...scores);
    const exp = scores.map((s) => Math.exp(s - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    exp.forEach((e, l) => (out[l] += e / sum / heads));
  }
  return out;
}

/**
 * The resampler's attention [heads, l, T·n + l] → per latent, its weight on each frame's cells
 * [l][T][n] (heads averaged, the part on latents dropped, renormalised).
 */
export function latentToCells(attention: Float32Array, heads: number, nLatents: number, frames: number, cells: number): number[][][] {
  const keys = attention.length / (heads * nLatents);
  return Array.from({ length: nLatents }, (_, l) => {
    const w = Array.from({ length: frames }, () => new Array<number>(cells).fill(0));
    let sum = 0;
    for (let h = 0; h < heads; h++) {
      const row = (h * nLatents + l) * keys;
      for (let t = 0; t < frames; t++) {
        for (let c = 0; c < cells; c++) {
          const a = attention[row + t * cells + c] / heads;
          w[t][c] += a;
          sum += a;
        }
      }
    }
    return w.map((frame) => frame.map((x) => x / (sum || 1)));
  });
}

/** cells[t][c] = Σ_l latents[l] · r[l][t][c]. */
export function cellsOf(latents: number[], r: number[][][]): number[][] {
  return r[0].map((frame, t) => frame.map((_, c) => latents.reduce((acc, a, l) => acc + a * r[l][t][c], 0)));
}
