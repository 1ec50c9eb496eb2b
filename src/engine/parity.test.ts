// Cross-language parity: the Python reference (models/tools/parity.py) and this engine, fed the same
// prompt, PNGs and ONNX graphs, must agree on tokens, the per-image mask, pixels, and the LM's
// logits over a prefill and 20 KV-cached decode steps (onnxruntime-node vs PyTorch).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED_MODEL_DIR, createNodeEngine, loadModelDir, readPng } from '../cli/node';
import { preprocessImage } from './image';
import { mediaIndex } from './mask';
import { textToPrompt } from './prompt';
import { maxAbsDiff, pythonFixture } from './pythonFixture';
import { Tokenizer } from './tokenizer';
import type { Manifest } from './types';

interface Expected {
  prompt: string;
  images: string[];
  input_ids: number[];
  media_index: number[];
  pixels: number[][];
  media_latents: number[];
  step_logits: number[][];
  prefill_logits: number[];
  xattn_probs: Record<string, number[]>;
  resampler_attention: number[];
  clip_features: { shape: number[]; data: number[] }[];
  clip_latents: number[][];
  greedy_tokens: number[];
  greedy_text: string;
  corpus: string[];
  corpus_ids: number[][];
  corpus_decoded: string[];
  bundled_corpus_ids?: number[][];
}

let dir: string;
let expected: Expected;
let manifest: Manifest;

beforeAll(() => {
  ({ dir, expected, manifest } = pythonFixture<Expected>('parity.py', ['--bundled', BUNDLED_MODEL_DIR], 'flamingo-parity-'));
}, 120_000);

describe('parity with the Python reference', () => {
  it('tokenizes and decodes a corpus identically', () => {
    const tok = Tokenizer.fromJson(readFileSync(join(dir, 'model/tokenizer.json'), 'utf8'));
    expected.corpus.forEach((text, i) => {
      expect(tok.encode(text)).toEqual(expected.corpus_ids[i]);
      expect(tok.decode(tok.encode(text))).toBe(expected.corpus_decoded[i]);
    });
  });

  it('tokenizes identically with the bundled model tokenizer', () => {
    const tok = Tokenizer.fromJson(readFileSync(join(BUNDLED_MODEL_DIR, 'tokenizer.json'), 'utf8'));
    expected.corpus.forEach((text, i) => expect(tok.encode(text)).toEqual(expected.bundled_corpus_ids![i]));
  });

  it('computes the same per-token image index', () => {
    const tok = Tokenizer.fromJson(readFileSync(join(dir, 'model/tokenizer.json'), 'utf8'));
    const ids = [tok.tokenId('<bos>'), ...tok.encode(expected.prompt)];
    expect(ids).toEqual(expected.input_ids);
    expect(Array.from(mediaIndex(ids, tok.tokenId('<image>')), Number)).toEqual(expected.media_index);
  });

  it('preprocesses the same PNG into the same tensor', async () => {
    for (let k = 0; k < expected.images.length; k++) {
      const tensor = preprocessImage(await readPng(join(dir, expected.images[k])), manifest.vision);
      const diff = maxAbsDiff(tensor, expected.pixels[k]);
      console.log(`image ${k}: max abs pixel difference ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-5);
    }
  });

  it('the resampler graph matches PyTorch on clips (time groups, any number of frames)', async () => {
    const { files } = await loadModelDir(join(dir, 'model'));
    const resampler = await ort.InferenceSession.create(files.resampler);
    for (let k = 0; k < expected.clip_features.length; k++) {
      const { shape, data } = expected.clip_features[k];
      const { latents } = await resampler.run({ image_features: new ort.Tensor('float32', Float32Array.from(data), shape) });
      const diff = maxAbsDiff(latents.data as Float32Array, expected.clip_latents[k]);
      console.log(`clip of ${shape[1]} frames: max abs latent difference ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-4);
    }
  });

  it('ONNX Runtime matches PyTorch over prefill and 20 decode steps', async () => {
    const { files } = await loadModelDir(join(dir, 'model'));
    const xattnKv = await ort.InferenceSession.create(files.xattn_kv);
    const lm = await ort.InferenceSession.create(files.lm);
    const { layers, heads, head_dim } = manifest.lm;
    const M = expected.images.length;
    const media = new ort.Tensor('float32', Float32Array.from(expected.media_latents), [1, M, manifest.resampler.n_latents, manifest.vision.d_vision]);
    const crossKv = await xattnKv.run({ media_latents: media }); // once per prompt, fed to every call
    let past: ort.Tensor[] = Array.from({ length: 2 * layers }, () => new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, head_dim]));
    let ids = expected.input_ids;
    let midx = expected.media_index;
    let worst = 0;
    let newRowsWorst = 0;
    for (let step = 0; step <= expected.greedy_tokens.length; step++) {
      const feeds: Record<string, ort.Tensor> = {
        ...crossKv,
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        media_index: new ort.Tensor('int64', BigInt64Array.from(midx, BigInt), [1, ids.length]),
        logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(1n), [1]),
      };
      for (let i = 0; i < layers; i++) {
        feeds[`past_key_${i}`] = past[2 * i];
        feeds[`past_value_${i}`] = past[2 * i + 1];
      }
      const out = await lm.run(feeds);
      expect(out.logits.dims).toEqual([1, 1, manifest.lm.vocab_size]);
      worst = Math.max(worst, maxAbsDiff(out.logits.data as Float32Array, expected.step_logits[step]));
      // new_key_i / new_value_i [1, S, heads*head_dim] are present_*'s last S rows (what AppendKv appends)
      const P = past[0].dims[2];
      for (let i = 0; i < layers; i++) {
        for (const kv of ['key', 'value']) {
          const present = out[`present_${kv}_${i}`].data as Float32Array;
          const rows = out[`new_${kv}_${i}`];
          expect(rows.dims).toEqual([1, ids.length, heads * head_dim]);
          const data = rows.data as Float32Array;
          for (let h = 0; h < heads; h++)
            for (let s = 0; s < ids.length; s++)
              for (let d = 0; d < head_dim; d++) newRowsWorst = Math.max(newRowsWorst, Math.abs(data[(s * heads + h) * head_dim + d] - present[(h * (P + ids.length) + P + s) * head_dim + d]));
        }
      }
      past = [];
      for (let i = 0; i < layers; i++) past.push(out[`present_key_${i}`], out[`present_value_${i}`]);
      if (step < expected.greedy_tokens.length) {
        ids = [expected.greedy_tokens[step]];
        midx = [M - 1];
      }
    }
    console.log(`ONNX vs PyTorch: max abs logit difference ${worst.toExponential(2)} over ${expected.greedy_tokens.length + 1} calls`);
    expect(worst).toBeLessThan(1e-3);
    expect(newRowsWorst).toBe(0);
  });

  it('ONNX Runtime matches PyTorch on every prefill position (logits_to_keep = S)', async () => {
    const { files } = await loadModelDir(join(dir, 'model'));
    const xattnKv = await ort.InferenceSession.create(files.xattn_kv);
    const lm = await ort.InferenceSession.create(files.lm);
    const { layers, heads, head_dim, vocab_size } = manifest.lm;
    const M = expected.images.length;
    const media = new ort.Tensor('float32', Float32Array.from(expected.media_latents), [1, M, manifest.resampler.n_latents, manifest.vision.d_vision]);
    const S = expected.input_ids.length;
    const feeds: Record<string, ort.Tensor> = {
      ...(await xattnKv.run({ media_latents: media })),
      input_ids: new ort.Tensor('int64', BigInt64Array.from(expected.input_ids, BigInt), [1, S]),
      media_index: new ort.Tensor('int64', BigInt64Array.from(expected.media_index, BigInt), [1, S]),
      logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(BigInt(S)), [1]),
    };
    for (let i = 0; i < layers; i++) {
      feeds[`past_key_${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, head_dim]);
      feeds[`past_value_${i}`] = feeds[`past_key_${i}`];
    }
    const out = await lm.run(feeds);
    expect(out.logits.dims).toEqual([1, S, vocab_size]);
    const diff = maxAbsDiff(out.logits.data as Float32Array, expected.prefill_logits);
    console.log(`ONNX vs PyTorch, all ${S} prefill positions: max abs logit difference ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-3);
  });

  it('the pictures: cross-attention over latents and the resampler attention match PyTorch', async () => {
    const engine = await createNodeEngine(join(dir, 'model'));
    const images = await Promise.all(expected.images.map((p) => readPng(join(dir, p))));
    const prompt = textToPrompt(expected.prompt, images, engine.manifest.special_tokens);
    // the prompt's last token pictured as if generated: explain(prompt without it, [it])
    const { heads, xattn_layers } = engine.manifest.lm;
    const { n_latents } = engine.manifest.resampler;
    const S = expected.input_ids.length;
    const pictures = await engine.explain(prompt, []);
    expect(pictures.tokens).toHaveLength(0);
    const last = expected.input_ids[S - 1];
    const shorter = textToPrompt(expected.prompt.slice(0, expected.prompt.lastIndexOf('Output:') + 'Output'.length), images, engine.manifest.special_tokens);
    expect(engine.countTokens(shorter)).toBe(S - 1); // the prompt's tokens but its last
    const { tokens } = await engine.explain(shorter, [last]);
    // PyTorch's probabilities at the position that chose that token (S - 2), over the last image's latents
    const M = expected.images.length;
    let worst = 0;
    for (const [j, layer] of xattn_layers.entries()) {
      const probs = expected.xattn_probs[String(layer)]; // [h, S, M*l]
      const mean = Array.from({ length: n_latents }, (_, l) => {
        let sum = 0;
        for (let h = 0; h < heads; h++) sum += probs[(h * S + (S - 2)) * M * n_latents + (M - 1) * n_latents + l];
        return sum / heads;
      });
      const got = tokens[0].layers[j].latents;
      mean.forEach((x, l) => (worst = Math.max(worst, Math.abs(x - got[l]))));
      const cells = tokens[0].layers[j].cells.flat();
      expect(cells.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    }
    expect(tokens[0].media).toBe(M - 1);
    console.log(`pictures: cross-attention over latents, max abs difference to PyTorch ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    // the resampler's attention itself, image 0
    const { files } = await loadModelDir(join(dir, 'model'));
    const resampler = await ort.InferenceSession.create(files.resampler);
    const vision = await ort.InferenceSession.create(files.vision_encoder);
    const v = engine.manifest.vision;
    const { image_features } = await vision.run({ pixel_values: new ort.Tensor('float32', Float32Array.from(expected.pixels[0]), [1, 3, v.image_size, v.image_size]) });
    const { latent_attention } = await resampler.run({ image_features: new ort.Tensor('float32', image_features.data as Float32Array, [1, 1, v.n_tokens, v.d_vision]) });
    const diff = maxAbsDiff(latent_attention.data as Float32Array, expected.resampler_attention);
    console.log(`resampler attention: max abs difference to PyTorch ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    await engine.release();
  });

  it('the engine, from PNG files, generates the same greedy tokens as PyTorch', async () => {
    const engine = await createNodeEngine(join(dir, 'model'));
    const images = await Promise.all(expected.images.map((p) => readPng(join(dir, p))));
    const prompt = textToPrompt(expected.prompt, images, engine.manifest.special_tokens);
    const latents = [];
    for (const s of prompt) if ('image' in s) latents.push(...(await engine.encodeMedia([s.image])).latents);
    console.log(`engine vs PyTorch latents: max abs difference ${maxAbsDiff(latents, expected.media_latents).toExponential(2)}`);
    expect(maxAbsDiff(latents, expected.media_latents)).toBeLessThan(1e-3);
    const done = await engine.generate(prompt, { maxNewTokens: 20, ignoreEndOfChunk: true, stopAtNewline: false }, () => undefined);
    expect(done.tokens).toBe(20);
    expect(done.text).toBe(expected.greedy_text);
    await engine.release();
  });
});
