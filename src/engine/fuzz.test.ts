// Fuzzing (fast-check, 10,000 random inputs each): the prompt assembler, the tokenizer, the
// manifest parser, the image header reader and the embed's message parser never throw anything
// but a FlamingoError (a message for the user), and what they return keeps its invariants.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUNDLED_MODEL_DIR } from '../cli/node';
import { parseRequest } from '../embed/protocol';
import { checkImageFile, checkPrompt } from './limits';
import { validateManifest } from './manifest';
import { promptToText } from './prompt';
import { Tokenizer } from './tokenizer';
import { FlamingoError, type Manifest, type Prompt } from './types';

const RUNS = { numRuns: 10_000 };
const manifest = JSON.parse(readFileSync(join(BUNDLED_MODEL_DIR, 'manifest.json'), 'utf8')) as Manifest;
const tokenizer = Tokenizer.fromJson(readFileSync(join(BUNDLED_MODEL_DIR, 'tokenizer.json'), 'utf8'));

/** Runs f; an exception passes only if it is a FlamingoError. */
function onlyFlamingoErrors(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!(err instanceof FlamingoError)) throw err;
  }
}

// Text with what users paste: combining marks, right-to-left, emoji, NUL, lone surrogates, markers.
const nasty = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ unit: fc.constantFrom('\u0000', '\u0301', '\u05d0', '\u202e', '🐶', '\ud800', '<image>', '<|endofchunk|>', ' ', '\n', 'a', '.'), maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
);
const image = fc.record({ width: fc.integer({ min: 1, max: 3 }), height: fc.integer({ min: 1, max: 3 }) }).map(({ width, height }) => ({
  width,
  height,
  data: new Uint8Array(width * height * 4),
}));
const segment = fc.oneof(
  nasty.map((text) => ({ text })),
  image.map((i) => ({ image: i })),
  fc.array(image, { maxLength: 3 }).map((video) => ({ video })),
);

describe('fuzzing: only FlamingoErrors, never a crash', () => {
  it('the prompt assembler and the prompt limits', () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (prompt) => {
        onlyFlamingoErrors(() => {
          checkPrompt(prompt as Prompt, manifest);
          const { text, media } = promptToText(prompt as Prompt, manifest.special_tokens);
          expect(text.split(manifest.special_tokens.image).length - 1).toBe(media.length);
        });
      }),
      RUNS,
    );
  });

  it('the tokenizer: ids in the vocabulary, decode never throws', () => {
    fc.assert(
      fc.property(nasty, (text) => {
        const ids = tokenizer.encode(text);
        for (const id of ids) expect(id >= 0 && id < manifest.lm.vocab_size).toBe(true);
        expect(typeof tokenizer.decode(ids)).toBe('string');
      }),
      RUNS,
    );
  });

  it('the manifest parser', () => {
    const mutated = fc.record({ key: fc.constantFrom('format', 'files', 'vision', 'lm', 'resampler', 'special_tokens', 'prompt_templates'), value: fc.jsonValue() });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), mutated.map(({ key, value }) => ({ ...manifest, [key]: value }))), (input) => {
        onlyFlamingoErrors(() => validateManifest(input));
      }),
      RUNS,
    );
  });

  it('the image header checks', () => {
    const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 73, 72, 68, 82]);
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }).map((tail) => Uint8Array.from([...png, ...tail])));
    fc.assert(fc.property(bytes, (b) => onlyFlamingoErrors(() => checkImageFile(b, 'x'))), RUNS);
  });

  it('the embed message parser returns a result for anything, and never throws', () => {
    const request = fc.record(
      { type: fc.constantFrom('flamingo:generate', 'flamingo:interrupt', 'x'), id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), segments: fc.anything(), options: fc.anything() },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.anything(), request), (data) => {
        const result = parseRequest(data);
        expect(typeof result.ok).toBe('boolean');
        if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
      }),
      RUNS,
    );
  });
});
