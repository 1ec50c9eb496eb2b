import { describe, expect, it } from 'vitest';
import { promptToText, textToPrompt } from './prompt';
import type { RgbaImage } from './types';

const special = { image: '<image>', end_of_chunk: '<|endofchunk|>', bos: '<bos>', pad: '<pad>', unk: '<unk>' };
const img = (w: number): RgbaImage => ({ width: w, height: 1, data: new Uint8Array(w * 4) });

describe('segments to OpenFlamingo text', () => {
  it('marks images and closes each text chunk that something follows', () => {
    const a = img(1);
    const b = img(2);
    const { text, media } = promptToText(
      [{ image: a }, { text: 'Output: dog face.' }, { image: b }, { text: 'Output:' }],
      special,
    );
    expect(text).toBe('<image>Output: dog face.<|endofchunk|><image>Output:');
    expect(media).toEqual([[a], [b]]);
  });

  it('keeps text-only zero-shot examples as separate chunks', () => {
    const { text } = promptToText([{ text: 'Output: cat.' }, { text: 'Output: pizza.' }, { image: img(1) }, { text: 'Output:' }], special);
    expect(text).toBe('Output: cat.<|endofchunk|>Output: pizza.<|endofchunk|><image>Output:');
  });

  it('turns a clip into one <image> with all its frames', () => {
    const frames = [img(1), img(2), img(3)];
    const { text, media } = promptToText([{ video: frames }, { text: 'Question: what moved? Short answer:' }], special);
    expect(text).toBe('<image>Question: what moved? Short answer:');
    expect(media).toEqual([frames]);
  });

  it('rejects markers typed into text and empty clips, naming the segment', () => {
    expect(() => promptToText([{ image: img(1) }, { text: 'a <image> b' }], special)).toThrow(/Text segment 2/);
    expect(() => promptToText([{ video: [] }], special)).toThrow(/Video segment 1 has no frames/);
  });

  it('parses the raw string form back into the same segments', () => {
    const a = img(1);
    const b = img(2);
    const raw = 'Output: cat.<|endofchunk|><image>Output: dog face.<|endofchunk|><image>Output:';
    const prompt = textToPrompt(raw, [a, b], special);
    expect(prompt).toEqual([{ text: 'Output: cat.' }, { image: a }, { text: 'Output: dog face.' }, { image: b }, { text: 'Output:' }]);
    expect(promptToText(prompt, special).text).toBe(raw);
  });

  it('says how many images the raw prompt wanted', () => {
    expect(() => textToPrompt('<image>Output:<|endofchunk|><image>Output:', [img(1)], special)).toThrow(
      'The prompt has 2 <image> marker(s) but 1 image(s) were given',
    );
  });
});
