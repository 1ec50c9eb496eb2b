// The text prompt every decode comparison of `npm run bench` uses (browser, onnxruntime-node,
// PyTorch, transformers.js): EmojiWorld-style captions, cut to exactly `tokens` tokens with bos.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '../src/engine/tokenizer';
import type { Manifest } from '../src/engine/types';

const WORDS = 'Output: dog face. Output: pizza. Output: red apple. Output: bicycle. Output: snowman. Output: rocket. Output: sun.'.split(' ');

export interface TextPrompt {
  text: string;
  /** bos + the text's tokens: what the engine feeds the LM. */
  ids: number[];
}

export async function textPrompt(modelDir: string, manifest: Manifest, tokens: number): Promise<TextPrompt> {
  const tokenizer = Tokenizer.fromJson(await readFile(join(modelDir, manifest.files.tokenizer.path), 'utf8'));
  const bos = tokenizer.tokenId(manifest.special_tokens.bos!);
  const count = (text: string) => 1 + tokenizer.encode(text).length;
  let text = '';
  for (let i = 0; count(text) < tokens; i++) text = text ? `${text} ${WORDS[i % WORDS.length]}` : WORDS[0];
  // Past the target: drop characters from the end until it fits (a single character is one token).
  while (count(text) > tokens) text = text.slice(0, -1);
  while (count(text) < tokens) text += '.';
  if (count(text) !== tokens) throw new Error(`bench: could not make a ${tokens}-token prompt`);
  return { text, ids: [bos, ...tokenizer.encode(text)] };
}
