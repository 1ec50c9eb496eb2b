import { describe, expect, it } from 'vitest';
import { clampSetting, DEFAULT_DECODING, toGenerateOptions } from './decoding';

describe('decoding settings', () => {
  it('greedy, beam and sampling become the engine’s options', () => {
    expect(toGenerateOptions({ ...DEFAULT_DECODING, mode: 'greedy', maxNewTokens: 9 })).toEqual({ maxNewTokens: 9 });
    expect(toGenerateOptions({ ...DEFAULT_DECODING, mode: 'beam', beams: 3 })).toEqual({ maxNewTokens: 20, beams: 3 });
    expect(toGenerateOptions({ ...DEFAULT_DECODING, mode: 'sample', temperature: 0.7, topK: 0, topP: 1, seed: 5 })).toEqual({
      maxNewTokens: 20,
      temperature: 0.7,
      topK: undefined,
      topP: undefined,
      seed: 5,
    });
  });

  it('typed numbers stay within their limits', () => {
    expect(clampSetting('beams', 99)).toBe(8);
    expect(clampSetting('maxNewTokens', Number.NaN)).toBe(1);
    expect(clampSetting('topP', 0.333)).toBe(0.333);
    expect(clampSetting('topK', 3.6)).toBe(4);
  });
});
