// The engine's contract beyond the fast paths: an interrupt that arrives while the prompt is
// being prefilled stops the answer before its first token; a warm-up changes no answer; options out
// of range are refused before any work, and the engine stays usable.
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

describe('options', () => {
  it('refuses an option out of range or unknown, by name, and answers the next request', async () => {
    const engine = await createNodeEngine(BUNDLED_MODEL_DIR);
    const prompt = [{ text: 'Output:' }];
    const refusals: [Record<string, unknown>, string][] = [
      [{ maxNewTokens: 0 }, 'options.maxNewTokens must be an integer from 1 to 256 (it is 0)'],
      [{ maxNewTokens: Number.NaN }, 'options.maxNewTokens must be an integer from 1 to 256 (it is NaN)'],
      [{ topP: 1.5 }, 'options.topP must be a number above 0, at most 1'],
      [{ beams: 2.5 }, 'options.beams must be an integer from 1 to 8'],
      [{ temprature: 1 }, 'unknown option "temprature"'],
      [{ toString: 1 }, 'unknown option "toString"'], // not mistaken for Object.prototype's
    ];
    for (const [options, message] of refusals) {
      await expect(engine.generate(prompt, options, () => undefined)).rejects.toThrow(message);
    }
    const done = await engine.generate(prompt, { maxNewTokens: 3, ignoreEndOfChunk: true, topP: undefined }, () => undefined);
    expect(done.tokens).toBe(3);
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
