// A converted OpenFlamingo-MPT (models/flamingo/convert_openflamingo.py) against the PyTorch
// reference of OpenFlamingo's forward (models/flamingo/openflamingo.py), at reduced sizes with
// random weights (models/tools/openflamingo_parity.py): byte-level BPE ids in three implementations,
// pixels, latents, the LM's logits at every prompt position and over KV-cached decode steps
// (ALiBi, q/k LayerNorms, 8-head-style gated blocks, only-the-last-image mask, no BOS), and the
// engine's and the CLI's greedy answers, all through onnxruntime-node.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createNodeEngine, loadModelDir, readPng, REPO_ROOT } from '../cli/node';
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
  prompt_logits: number[];
  step_logits: number[][];
  greedy_tokens: number[];
  greedy_text: string;
  corpus: string[];
  corpus_ids: number[][];
  corpus_decoded: string[];
}


// OpenFlamingo-3B's language model layout (MPT: ALiBi, q/k LayerNorms, tied output) and 4B's
// (GPT-NeoX: partial rotary, parallel residual, biases, untied output)
describe.each(['mpt', 'gpt_neox'])('a converted OpenFlamingo (%s) against the PyTorch reference', (arch) => {
  let dir: string;
  let model: string;
  let expected: Expected;
  let manifest: Manifest;
  let tokenizerJson: string;

  beforeAll(() => {
    ({ dir, expected, manifest } = pythonFixture<Expected>('openflamingo_parity.py', ['--arch', arch], `openflamingo-parity-${arch}-`));
    model = join(dir, 'model');
    tokenizerJson = readFileSync(join(model, 'tokenizer.json'), 'utf8');
  }, 120_000);

  it('states its positions in the manifest', () => {
    expect(manifest.lm.positions).toBe(arch === 'mpt' ? 'alibi' : 'rope');
  });

  it('byte-level BPE: the engine, Python and @huggingface/tokenizers agree on a corpus', () => {
    const ours = Tokenizer.fromJson(tokenizerJson);
    const hf = new HfTokenizer(JSON.parse(tokenizerJson), {});
    expected.corpus.forEach((text, i) => {
      expect(ours.encode(text)).toEqual(expected.corpus_ids[i]);
      expect(hf.encode(text, { add_special_tokens: false }).ids).toEqual(expected.corpus_ids[i]);
      expect(ours.decode(expected.corpus_ids[i])).toBe(expected.corpus_decoded[i]);
      expect(ours.decode(expected.corpus_ids[i])).toBe(text.normalize('NFC'));
    });
  });

  it('the prompt: the same ids without a BOS, and the same per-image index', () => {
    const tok = Tokenizer.fromJson(tokenizerJson);
    expect(manifest.special_tokens.bos).toBeUndefined();
    expect(tok.encode(expected.prompt)).toEqual(expected.input_ids);
    expect(Array.from(mediaIndex(expected.input_ids, tok.tokenId('<image>')), Number)).toEqual(expected.media_index);
  });

  it('the same pixels and latents (CLIP patch tokens before ln_post, Perceiver Resampler)', async () => {
    const engine = await createNodeEngine(model);
    const latents: number[] = [];
    for (let k = 0; k < expected.images.length; k++) {
      const image = await readPng(join(dir, expected.images[k]));
      expect(maxAbsDiff(preprocessImage(image, manifest.vision), expected.pixels[k])).toBeLessThan(1e-5);
      latents.push(...(await engine.encodeMedia([image], false)).latents);
    }
    const diff = maxAbsDiff(latents, expected.media_latents);
    console.log(`OpenFlamingo latents: max abs difference to PyTorch ${diff.toExponential(2)}`);
    expect(diff).toBeLessThan(1e-4);
    await engine.release();
  });

  it('lm.onnx, its weights in external data shards, matches the reference at every prompt position, then over KV-cached greedy steps', async () => {
    const { files, externalData } = await loadModelDir(model);
    expect(manifest.files.lm.external_data!.length).toBeGreaterThan(2); // as MPT-1B's 5 GB must be
    const xattnKv = await ort.InferenceSession.create(files.xattn_kv);
    const lm = await ort.InferenceSession.create(files.lm, { externalData: externalData.lm });
    const { layers, heads, head_dim, vocab_size, xattn_layers } = manifest.lm;
    const M = expected.images.length;
    const media = new ort.Tensor('float32', Float32Array.from(expected.media_latents), [1, M, manifest.resampler.n_latents, manifest.vision.d_vision]);
    const cross = await xattnKv.run({ media_latents: media });
    expect(cross[`xattn_key_${xattn_layers[0]}`].dims).toEqual([1, manifest.lm.xattn_heads, M * manifest.resampler.n_latents, manifest.lm.xattn_head_dim]);
    let past: ort.Tensor[] = Array.from({ length: 2 * layers }, () => new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, head_dim]));
    let ids = expected.input_ids;
    let midx = expected.media_index;
    let worstStep = 0;
    for (let step = 0; step < expected.step_logits.length; step++) {
      const keep = step === 0 ? ids.length : 1; // the prompt: every position's logits
      const feeds: Record<string, ort.Tensor> = {
        ...cross,
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        media_index: new ort.Tensor('int64', BigInt64Array.from(midx, BigInt), [1, ids.length]),
        logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(BigInt(keep)), [1]),
      };
      for (let i = 0; i < layers; i++) [feeds[`past_key_${i}`], feeds[`past_value_${i}`]] = [past[2 * i], past[2 * i + 1]];
      const out = await lm.run(feeds);
      const logits = out.logits.data as Float32Array;
      if (step === 0) {
        expect(out.logits.dims).toEqual([1, ids.length, vocab_size]);
        const diff = maxAbsDiff(logits, expected.prompt_logits);
        console.log(`OpenFlamingo prompt logits: max abs difference to PyTorch ${diff.toExponential(2)}`);
        expect(diff).toBeLessThan(1e-4);
      }
      worstStep = Math.max(worstStep, maxAbsDiff(logits.subarray(logits.length - vocab_size), expected.step_logits[step]));
      past = [];
      for (let i = 0; i < layers; i++) past.push(out[`present_key_${i}`], out[`present_value_${i}`]);
      ids = [expected.greedy_tokens[step]];
      midx = [M - 1];
    }
    console.log(`OpenFlamingo decode steps: max abs logit difference ${worstStep.toExponential(2)} over ${expected.step_logits.length} calls`);
    expect(worstStep).toBeLessThan(1e-4);
  });

  it('the engine, from PNG files, generates the reference greedy tokens', async () => {
    const engine = await createNodeEngine(model);
    const images = await Promise.all(expected.images.map((p) => readPng(join(dir, p))));
    const prompt = textToPrompt(expected.prompt, images, engine.manifest.special_tokens);
    expect(engine.countTokens(prompt)).toBe(expected.input_ids.length);
    const done = await engine.generate(prompt, { maxNewTokens: expected.greedy_tokens.length, stopAtNewline: false }, () => undefined);
    expect(done.tokenIds).toEqual(expected.greedy_tokens);
    expect(done.text).toBe(expected.greedy_text.trim());
    await engine.release();
  });

  // q4: MatMulNBits; fp16: float16 weights and arithmetic (made by the converter, run here on the CPU EP)
  it.each(['q4', 'fp16'])('its %s variant loads and stays near the reference', async (variant) => {
    const { manifest: chosen, files, externalData } = await loadModelDir(model, variant);
    expect(chosen.files.lm.path).toBe(`lm.${variant}.onnx`);
    const engine = await createNodeEngine(model, { backend: 'cpu' }, variant);
    const images = await Promise.all(expected.images.map((p) => readPng(join(dir, p))));
    const done = await engine.generate(textToPrompt(expected.prompt, images, engine.manifest.special_tokens), { maxNewTokens: 4, stopAtNewline: false }, () => undefined);
    expect(done.tokens).toBeGreaterThan(0);
    await engine.release();
    // the first step's logits, through the variant's graphs: 4-bit or 16-bit weights move them, not far
    const lm = await ort.InferenceSession.create(files.lm, { externalData: externalData.lm });
    const xattnKv = await ort.InferenceSession.create(files.xattn_kv);
    const M = expected.images.length;
    const media = new ort.Tensor('float32', Float32Array.from(expected.media_latents), [1, M, manifest.resampler.n_latents, manifest.vision.d_vision]);
    const S = expected.input_ids.length;
    const feeds: Record<string, ort.Tensor> = {
      ...(await xattnKv.run({ media_latents: media })),
      input_ids: new ort.Tensor('int64', BigInt64Array.from(expected.input_ids, BigInt), [1, S]),
      media_index: new ort.Tensor('int64', BigInt64Array.from(expected.media_index, BigInt), [1, S]),
      logits_to_keep: new ort.Tensor('int64', BigInt64Array.of(1n), [1]),
    };
    for (let i = 0; i < manifest.lm.layers; i++) {
      feeds[`past_key_${i}`] = feeds[`past_value_${i}`] = new ort.Tensor('float32', new Float32Array(0), [1, manifest.lm.heads, 0, manifest.lm.head_dim]);
    }
    const logits = (await lm.run(feeds)).logits.data as Float32Array;
    const diff = maxAbsDiff(logits, expected.step_logits[0]);
    const spread = Math.max(...expected.step_logits[0]) - Math.min(...expected.step_logits[0]);
    console.log(`OpenFlamingo ${variant}: max abs logit difference ${diff.toExponential(2)} (logits span ${spread.toFixed(2)})`);
    expect(diff).toBeGreaterThan(0); // it is another graph
    expect(diff).toBeLessThan(0.1 * spread);
  });

  it('the CLI runs the converted folder with --model', async () => {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [
      join(REPO_ROOT, 'bin/flamingo-web.mjs'), 'generate', '--model', model, '--prompt', expected.prompt,
      '--image', join(dir, expected.images[0]), '--image', join(dir, expected.images[1]), '--max-tokens', String(expected.greedy_tokens.length),
    ], { cwd: REPO_ROOT });
    expect(stderr).toMatch(/tokens, TTFT/);
    expect(stdout.trim()).toBe(expected.greedy_text.trim());
  });
});
