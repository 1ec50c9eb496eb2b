// Image preprocessing, the same arithmetic as models/flamingo/preprocess.py (a parity test
// compares tensors): composite RGBA on the manifest's background, centre square crop,
// area-average resize, (x/255 − mean) / std, channels first.
import type { Manifest, RgbaImage } from './types';
import { FlamingoError } from './types';

/** [nOut × nIn] weights: how much of input cell j falls under output cell i; rows sum to 1. */
export function areaWeights(nIn: number, nOut: number): Float64Array {
  const w = new Float64Array(nOut * nIn);
  const scale = nIn / nOut;
  for (let i = 0; i < nOut; i++) {
    const lo = i * scale;
    const hi = (i + 1) * scale;
    let sum = 0;
    for (let j = Math.floor(lo); j < Math.min(nIn, Math.ceil(hi)); j++) {
      const v = Math.max(0, Math.min(hi, j + 1) - Math.max(lo, j));
      w[i * nIn + j] = v;
      sum += v;
    }
    for (let j = 0; j < nIn; j++) w[i * nIn + j] /= sum;
  }
  return w;
}

/** RGBA → Float32Array [3, S, S], ready for the vision encoder. */
export function preprocessImage(image: RgbaImage, vision: Manifest['vision']): Float32Array {
  const { width, height, data } = image;
  if (!(width > 0 && height > 0) || data.length !== width * height * 4) {
    throw new FlamingoError(`Image has inconsistent size: ${width}×${height} with ${data.length} bytes of RGBA`);
  }
  const S = vision.image_size;
  const side = Math.min(width, height);
  const y0 = Math.floor((height - side) / 2);
  const x0 = Math.floor((width - side) / 2);
  const [br, bg, bb] = vision.background;
  const w = areaWeights(side, S);

  // Composite the crop on the background, then resize rows (y) and columns (x) separately.
  const rgb = new Float64Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const p = ((y0 + y) * width + (x0 + x)) * 4;
      const a = data[p + 3] / 255;
      const q = (y * side + x) * 3;
      rgb[q] = data[p] * a + br * (1 - a);
      rgb[q + 1] = data[p + 1] * a + bg * (1 - a);
      rgb[q + 2] = data[p + 2] * a + bb * (1 - a);
    }
  }
  const rows = new Float64Array(S * side * 3); // [S, side, 3]
  for (let i = 0; i < S; i++) {
    for (let j = 0; j < side; j++) {
      const wij = w[i * side + j];
      if (wij === 0) continue;
      for (let x = 0; x < side; x++) {
        for (let c = 0; c < 3; c++) rows[(i * side + x) * 3 + c] += wij * rgb[(j * side + x) * 3 + c];
      }
    }
  }
  const out = new Float32Array(3 * S * S);
  for (let y = 0; y < S; y++) {
    for (let i = 0; i < S; i++) {
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let j = 0; j < side; j++) v += w[i * side + j] * rows[(y * side + j) * 3 + c];
        out[c * S * S + y * S + i] = (v / 255 - vision.mean[c]) / vision.std[c];
      }
    }
  }
  return out;
}
