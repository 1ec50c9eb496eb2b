// The engine's contract beyond the fast paths: an interrupt that arrives while the prompt is
// being prefilled stops the answer before its first token; a warm-up changes no answer.
import { describe, expect, it } from 'vitest';
import { BUNDLED_MODEL_DIR, createNodeEngine } from '../cli/node';

describe('interrupts', () => {
  it('an abort during the prefill ends the answer before its first token', async () => {
    const engine = await createNodeEngine(BUNDLED_MODEL_DIR);
    const S = engine.manifest.vision.image_size;
    const image = { width: S, height: S, data: new Uint8Array(S * S * 4).fill(200) };
    const controller = new AbortController();
    const tokens: string[] = [];
    const answer = engine.generate([{ image }, { text: 'Output:' }], { maxNewTokens: 16, ignoreEndOfChunk: true }, (e) => {
      if (e.type === 'token') tokens.push(e.text);
    }, controller.signal);
    controller.abort(); // the prompt is still being encoded and prefilled
    const done = await answer;
    expect(done.stopReason).toBe('interrupted');
    expect(done.tokens).toBe(0);
    expect(tokens).toEqual([]);
    // the engine stays usable
    const next = await engine.generate([{ image }, { text: 'Output:' }], { maxNewTokens: 4, ignoreEndOfChunk: true }, () => undefined);
    expect(next.tokens).toBe(4);
    await engine.release();
  });
});

describe('warm-up', () => {
  it('leaves no cache behind, changes no answer, and stops when asked', async () => {
    const engine = await createNodeEngine(BUNDLED_MODEL_DIR);
    const S = engine.manifest.vision.image_size;
    const image = (v: number) => ({ width: S, height: S, data: new Uint8Array(S * S * 4).fill(v) });
    const prompt = [{ image: image(90) }, { text: 'Output: toma.' }, { image: image(160) }, { text: 'Output:' }];
    const before = await engine.generate(prompt, { maxNewTokens: 6 }, () => undefined);
    await engine.warmUp();
    const after = await engine.generate(prompt, { maxNewTokens: 6 }, () => undefined);
    expect(after.text).toBe(before.text);
    // the warm-up's own prompt (white images) finds no support prefix cached: it kept none
    await engine.warmUp();
    const white = image(255);
    const own = await engine.generate([{ image: white }, { text: 'Output: a.' }, { image: white }, { text: 'Output:' }], { maxNewTokens: 2 }, () => undefined);
    expect(own.cachedPromptTokens).toBe(0);
    const controller = new AbortController();
    const stopped = engine.warmUp(controller.signal);
    controller.abort();
    await stopped;
    expect((await engine.generate(prompt, { maxNewTokens: 6 }, () => undefined)).text).toBe(before.text);
    await engine.release();
  });
});
