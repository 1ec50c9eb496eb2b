// Every fast path gives the same answer as the plain one (bundled model, onnxruntime-node, the
// committed held-out episodes):
//   - the support-set prefix cache vs prefilling the whole prompt
//   - one prefill call vs the support examples and the query prefilled apart
//   - beam search with one beam vs greedy decoding
//   - all options scored in one batched call vs one call each; ensembling over support orders
//   - latents from the persistent store vs encoding again (one lookup per prompt, written behind)
//   - the KV cache appended in place from new_key_* vs the graph's present_* fed back
//   - the vision graphs' sessions created on first use (deferVision) vs in create
// (Cross-attention K/V computed once per prompt vs recomputed at every step: parity.test.ts
// compares the graphs with PyTorch, which recomputes them in every call.)
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { BUNDLED_MODEL_DIR, createNodeEngine, loadModelDir, readPng, REPO_ROOT } from '../cli/node';
import type { PersistentLatentStore } from './caches';
import { FlamingoEngine, supportOrders, type OrtModule } from './engine';
import { parseEpisode, type Episode } from './evaluate';
import { LanguageModel } from './languageModel';
import { mediaIndex } from './mask';
import type { Prompt } from './types';

const EPISODES = join(REPO_ROOT, 'models/eval/episodes');

async function episodes(task: string, n: number): Promise<{ episode: Episode; prompt: Prompt }[]> {
  const file = join(EPISODES, `${task}.jsonl`);
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).slice(0, n);
  return Promise.all(
    lines.map(async (line, i) => {
      const episode = parseEpisode(line, `${file}:${i + 1}`);
      const prompt: Prompt = [];
      for (const s of episode.segments) {
        if ('image' in s) prompt.push({ image: await readPng(resolve(dirname(file), s.image)) });
        else if ('text' in s) prompt.push(s);
      }
      return { episode, prompt };
    }),
  );
}

let engine: FlamingoEngine;
beforeAll(async () => {
  engine = await createNodeEngine(BUNDLED_MODEL_DIR);
}, 60_000);

const quiet = () => undefined;

describe('fast paths give the plain paths’ answers', () => {
  it('a query after the same support examples reuses their KV and answers as without the cache', async () => {
    const cases = await episodes('naming-2shot', 6);
    for (const { prompt } of cases) {
      const plain = await engine.generate(prompt, { maxNewTokens: 8, reusePrefix: false }, quiet);
      expect(plain.cachedPromptTokens).toBe(0);
      await engine.generate(prompt, { maxNewTokens: 1 }, quiet); // fills the cache
      const cached = await engine.generate(prompt, { maxNewTokens: 8 }, quiet);
      expect(cached.cachedPromptTokens).toBeGreaterThan(0);
      expect(cached.text).toBe(plain.text);
      expect(cached.tokens).toBe(plain.tokens);
    }
    // another query image after the first episode's supports: the cache is used, the answer unchanged
    const [a, b] = cases;
    const swapped: Prompt = [...a.prompt.slice(0, -2), b.prompt[b.prompt.length - 2], a.prompt[a.prompt.length - 1]];
    await engine.generate(a.prompt, { maxNewTokens: 1 }, quiet);
    const reused = await engine.generate(swapped, { maxNewTokens: 8 }, quiet);
    const fresh = await engine.generate(swapped, { maxNewTokens: 8, reusePrefix: false }, quiet);
    expect(reused.cachedPromptTokens).toBeGreaterThan(0);
    expect(reused.text).toBe(fresh.text);
  }, 60_000);

  it('prefilling the support examples and the query apart gives the logits of one prefill', async () => {
    const { manifest, files } = await loadModelDir(BUNDLED_MODEL_DIR);
    const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes);
    const lm = new LanguageModel(ort, await session(files.lm), await session(files.xattn_kv), manifest, 'cpu');
    const tok = engine.tokenizer;
    const image = tok.tokenId(manifest.special_tokens.image);
    const ids = [tok.tokenId(manifest.special_tokens.bos!), ...tok.encode('<image>Output: toma.<|endofchunk|><image>Output: kelo.<|endofchunk|><image>Output:')];
    const midx = Array.from(mediaIndex(ids, image), Number);
    const { n_latents } = manifest.resampler;
    const d = manifest.vision.d_vision;
    const latents = Float32Array.from({ length: 3 * n_latents * d }, (_, i) => Math.sin(i * 0.37));
    const cross = await lm.crossAttentionKv(latents, [3, n_latents, d], 1);
    const whole = await lm.step([ids], [midx], cross, lm.emptyCache(1), 1);
    const q = ids.lastIndexOf(image);
    const prefix = await lm.step([ids.slice(0, q)], [midx.slice(0, q)], cross, lm.emptyCache(1), 1);
    const rest = await lm.step([ids.slice(q)], [midx.slice(q)], cross, prefix.present, 1);
    expect(rest.present.length).toBe(ids.length);
    let worst = 0;
    whole.logits.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - rest.logits[i]))));
    expect(worst).toBeLessThan(1e-4);
  });

  it('decode steps given only the last image’s K/V compute the logits of steps given every image’s', async () => {
    const { manifest, files } = await loadModelDir(BUNDLED_MODEL_DIR);
    const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes);
    const lm = new LanguageModel(ort, await session(files.lm), await session(files.xattn_kv), manifest, 'cpu');
    const tok = engine.tokenizer;
    const ids = [tok.tokenId(manifest.special_tokens.bos!), ...tok.encode('<image>Output: toma.<|endofchunk|><image>Output: kelo.<|endofchunk|><image>Output:')];
    const midx = Array.from(mediaIndex(ids, tok.tokenId(manifest.special_tokens.image)), Number);
    const { n_latents } = manifest.resampler;
    const d = manifest.vision.d_vision;
    const per = n_latents * d;
    const latents = Float32Array.from({ length: 3 * per }, (_, i) => Math.cos(i * 0.11));
    const all = await lm.crossAttentionKv(latents, [3, n_latents, d], 1);
    const lastOnly = await lm.crossAttentionKv(latents.subarray(2 * per), [1, n_latents, d], 1);
    const prefill = await lm.step([ids], [midx], all, lm.emptyCache(1), 1);
    let [kvAll, kvLast] = [prefill.present, prefill.present];
    let worst = 0;
    for (let step = 0, token = 5; step < 10; step++, token += 7) {
      const a = await lm.step([[token]], [[2]], all, kvAll, 1);
      const b = await lm.step([[token]], [[0]], lastOnly, kvLast, 1);
      a.logits.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b.logits[i]))));
      [kvAll, kvLast] = [a.present, b.present];
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it('the KV cache appended from new_key_* gives the logits of present_* fed back, through forks and beams', async () => {
    const { manifest, files } = await loadModelDir(BUNDLED_MODEL_DIR);
    const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes);
    const [lmSession, kvSession] = [await session(files.lm), await session(files.xattn_kv)];
    const appended = new LanguageModel(ort, lmSession, kvSession, manifest, 'cpu');
    const plain = new LanguageModel(ort, lmSession, kvSession, manifest, 'cpu', false);
    expect([appended.appends, plain.appends]).toEqual([true, false]);
    const tok = engine.tokenizer;
    const ids = [tok.tokenId(manifest.special_tokens.bos!), ...tok.encode('<image>Output: toma.<|endofchunk|><image>Output:')];
    const midx = Array.from(mediaIndex(ids, tok.tokenId(manifest.special_tokens.image)), Number);
    const { n_latents } = manifest.resampler;
    const d = manifest.vision.d_vision;
    const cross = await appended.crossAttentionKv(Float32Array.from({ length: 2 * n_latents * d }, (_, i) => Math.sin(i * 0.23)), [2, n_latents, d], 1);
    let worst = 0;
    const compare = (a: Float32Array, b: Float32Array) => a.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b[i]))));
    const prefixA = await appended.step([ids], [midx], cross, appended.emptyCache(1), 1);
    const prefixP = await plain.step([ids], [midx], cross, plain.emptyCache(1), 1);
    compare(prefixA.logits, prefixP.logits);
    // two continuations of one prefix (the second appends to a store the first has grown: a fork),
    // each long enough to grow the store past its first capacity
    for (const first of [3, 11]) {
      let [a, p] = [prefixA.present, prefixP.present];
      for (let step = 0, token = first; step < 70; step++, token = (token * 7 + 5) % 100) {
        const [sa, sp] = [await appended.step([[token]], [[1]], cross, a, 1), await plain.step([[token]], [[1]], cross, p, 1)];
        compare(sa.logits, sp.logits);
        [a, p] = [sa.present, sp.present];
      }
      expect(a.length).toBe(ids.length + 70);
      // beams: rows picked (one repeated), then batched steps
      const crossB = await appended.crossAttentionKv(Float32Array.from({ length: 2 * n_latents * d }, (_, i) => Math.sin(i * 0.23)), [2, n_latents, d], 3);
      let [ba, bp] = [await appended.selectRows(a, [0, 0, 0]), await plain.selectRows(p, [0, 0, 0])];
      for (let step = 0; step < 3; step++) {
        const tokens = [[4 + step], [9], [20 + step]];
        const [sa, sp] = [await appended.step(tokens, [[1], [1], [1]], crossB, ba, 1), await plain.step(tokens, [[1], [1], [1]], crossB, bp, 1)];
        compare(sa.logits, sp.logits);
        [ba, bp] = [await appended.selectRows(sa.present, [2, 0, 1]), await plain.selectRows(sp.present, [2, 0, 1])];
      }
    }
    expect(worst).toBeLessThan(1e-5);
  }, 60_000);

  it('the engine answers the same with the appended KV cache as with present_* fed back', async () => {
    const plain = await createNodeEngine(BUNDLED_MODEL_DIR, { backend: 'cpu', appendCache: false });
    for (const { episode, prompt } of [...(await episodes('naming-2shot', 4)), ...(await episodes('classify-5way-1shot', 3))]) {
      for (const options of [{ maxNewTokens: 12 }, { maxNewTokens: 12, beams: 3 }]) {
        const [a, b] = [await engine.generate(prompt, options, quiet), await plain.generate(prompt, options, quiet)];
        expect(a.text).toBe(b.text);
        expect(a.tokens).toBe(b.tokens);
      }
      if (episode.options) {
        const [a, b] = [await engine.score(prompt, episode.options), await plain.score(prompt, episode.options)];
        a.forEach((s, i) => expect(Math.abs(s.logLikelihood - b[i].logLikelihood)).toBeLessThan(1e-4));
      }
    }
    await plain.release();
  }, 120_000);

  it('the vision graphs’ sessions created on first use answer as those created with the engine', async () => {
    const { manifest, files } = await loadModelDir(BUNDLED_MODEL_DIR, 'float32', 'cpu');
    const created: number[] = [];
    const counting: OrtModule = {
      Tensor: ort.Tensor,
      InferenceSession: {
        ...ort.InferenceSession,
        create: (async (bytes: Uint8Array, options?: ort.InferenceSession.SessionOptions) => {
          created.push(bytes.byteLength);
          return ort.InferenceSession.create(bytes, options);
        }) as OrtModule['InferenceSession']['create'],
      } as OrtModule['InferenceSession'],
    };
    const deferred = await FlamingoEngine.create(counting, manifest, files, { backend: 'cpu', deferVision: true });
    expect(created.sort()).toEqual([files.xattn_kv.byteLength, files.lm.byteLength].sort()); // the vision graphs wait
    const text: Prompt = [{ text: 'Output: a red apple. Output:' }];
    expect((await deferred.generate(text, { maxNewTokens: 4 }, quiet)).text).toBe((await engine.generate(text, { maxNewTokens: 4 }, quiet)).text);
    expect(created).toHaveLength(2); // a text prompt needs no vision graph
    for (const { prompt } of await episodes('naming-2shot', 3)) {
      const [a, b] = [await deferred.generate(prompt, { maxNewTokens: 8 }, quiet), await engine.generate(prompt, { maxNewTokens: 8 }, quiet)];
      expect(a.text).toBe(b.text);
    }
    expect(created).toHaveLength(4); // each created once
    await deferred.release();
  }, 60_000);

  it('beam search with one beam is greedy decoding', async () => {
    for (const { prompt } of [...(await episodes('naming-2shot', 5)), ...(await episodes('binding-5way-1shot', 5))]) {
      const greedy = await engine.generate(prompt, { maxNewTokens: 12 }, quiet);
      const beam1 = await engine.generate(prompt, { maxNewTokens: 12, beams: 1 }, quiet);
      expect(beam1.text).toBe(greedy.text);
      expect(beam1.tokens).toBe(greedy.tokens);
      expect(beam1.stopReason).toBe(greedy.stopReason);
    }
  }, 60_000);

  it('beam search with three beams ends every answer and is deterministic', async () => {
    for (const { prompt } of await episodes('naming-2shot', 3)) {
      const first = await engine.generate(prompt, { maxNewTokens: 12, beams: 3 }, quiet);
      const again = await engine.generate(prompt, { maxNewTokens: 12, beams: 3 }, quiet);
      expect(['end_of_chunk', 'newline', 'max_tokens']).toContain(first.stopReason);
      expect(again.text).toBe(first.text);
    }
  }, 60_000);

  it('scores all options in one batched call as one call each', async () => {
    for (const { episode, prompt } of await episodes('classify-5way-1shot', 5)) {
      const batched = await engine.score(prompt, episode.options!);
      const single = await engine.score(prompt, episode.options!, { batched: false });
      batched.forEach((s, i) => {
        expect(s.option).toBe(single[i].option);
        expect(s.tokens).toBe(single[i].tokens);
        expect(Math.abs(s.logLikelihood - single[i].logLikelihood)).toBeLessThan(1e-4);
      });
    }
  }, 60_000);

  it('prompt ensembling averages the scores over support orders', async () => {
    const [{ episode, prompt }] = await episodes('classify-5way-1shot', 1);
    const orders = supportOrders(prompt, 3, 7);
    expect(orders).toHaveLength(3);
    expect(orders[0]).toBe(prompt);
    for (const order of orders) {
      expect(order).toHaveLength(prompt.length);
      expect(order[order.length - 1]).toBe(prompt[prompt.length - 1]); // the query stays last
      expect(order[order.length - 2]).toBe(prompt[prompt.length - 2]);
    }
    expect(orders.slice(1).some((o) => o.some((s, i) => s !== prompt[i]))).toBe(true);
    const each = await Promise.all(orders.map((o) => engine.score(o, episode.options!)));
    const ensembled = await engine.score(prompt, episode.options!, { permutations: 3, seed: 7 });
    ensembled.forEach((s, i) => {
      const mean = each.reduce((sum, scores) => sum + scores[i].logLikelihood, 0) / each.length;
      expect(s.logLikelihood).toBeCloseTo(mean, 5);
    });
  }, 60_000);

  it('reads latents back from the persistent store instead of encoding again', async () => {
    const saved = new Map<string, Float32Array>();
    const store: PersistentLatentStore = {
      getMany: async (keys) => keys.map((k) => saved.get(k)),
      setMany: async (entries) => entries.forEach(([k, v]) => saved.set(k, v)),
    };
    const first = await createNodeEngine(BUNDLED_MODEL_DIR, { backend: 'cpu', latentStore: store });
    const [{ prompt }] = await episodes('naming-2shot', 1);
    const image = (prompt[0] as { image: Parameters<FlamingoEngine['encodeMedia']>[0][number] }).image;
    const encoded = await first.encodeMedia([image]);
    await first.release(); // written behind: release waits for the write
    expect(saved.get(encoded.key)).toEqual(encoded.latents);
    // a fresh engine (as after a reload): the stored latents come back, the graphs do not run
    const marked = encoded.latents.map((x, i) => (i === 0 ? 42 : x));
    saved.set(encoded.key, marked);
    const second = await createNodeEngine(BUNDLED_MODEL_DIR, { backend: 'cpu', latentStore: store });
    expect((await second.encodeMedia([image])).latents[0]).toBe(42);
    await second.release();
  }, 60_000);

  it('looks a prompt’s images up in one call, encodes a repeated image once and answers as without a store', async () => {
    const saved = new Map<string, Float32Array>();
    const lookups: string[][] = [];
    const writes: string[][] = [];
    const store: PersistentLatentStore = {
      getMany: async (keys) => (lookups.push(keys), keys.map((k) => saved.get(k))),
      setMany: async (entries) => (writes.push(entries.map(([k]) => k)), entries.forEach(([k, v]) => saved.set(k, v))),
    };
    const withStore = await createNodeEngine(BUNDLED_MODEL_DIR, { backend: 'cpu', latentStore: store });
    const [{ prompt }] = await episodes('naming-2shot', 1);
    const images = prompt.filter((s) => 'image' in s);
    expect(images.length).toBeGreaterThan(1);
    const repeated: Prompt = [...prompt.slice(0, -1), images[0], ...prompt.slice(-1)]; // the first image again before the last text
    const plain = await engine.generate(repeated, { maxNewTokens: 8, reusePrefix: false }, quiet);
    const stored = await withStore.generate(repeated, { maxNewTokens: 8, reusePrefix: false }, quiet);
    expect(stored.text).toBe(plain.text);
    expect(lookups).toHaveLength(1);
    expect(lookups[0]).toHaveLength(images.length); // distinct images only
    expect([stored.media, stored.encodedMedia]).toEqual([images.length + 1, images.length]);
    await withStore.release();
    expect(writes.flat().sort()).toEqual([...lookups[0]].sort()); // each written once
    // as after a reload: every image from the store, none encoded, the same answer
    const reloaded = await createNodeEngine(BUNDLED_MODEL_DIR, { backend: 'cpu', latentStore: store });
    const again = await reloaded.generate(repeated, { maxNewTokens: 8, reusePrefix: false }, quiet);
    expect([again.media, again.encodedMedia, again.text]).toEqual([images.length + 1, 0, plain.text]);
    await reloaded.release();
  }, 60_000);
});
