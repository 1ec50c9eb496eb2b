// The engine's contract beyond the fast paths: an interrupt that arrives while the prompt is
// being prefilled stops the answer before its first token.
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
