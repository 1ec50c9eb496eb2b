// How the next tokens are chosen, after the prompt has been prefilled:
//   decodeOneByOne  greedy or sampling, one sequence, each token streamed as it comes
//   beamSearch      N sequences as one batch of N (the paper's setting for open-ended answers is
//                   beam 3, stop at the first <|endofchunk|>), the best answer at the end
// Both stop at <|endofchunk|>, at a newline (unless told not to) or at maxNewTokens.
import type { CrossKv, KvCache, LanguageModel } from './languageModel';
import { logSoftmax, sampleToken, seededRandom } from './sampling';
import type { Tokenizer } from './tokenizer';
import type { DecodeTimings, DoneEvent, GenerateOptions } from './types';

/** What the engine hands a search once the prompt is prefilled. */
export interface Decoding {
  lm: LanguageModel;
  tokenizer: Tokenizer;
  eocId: number;
  /** Tokens never generated (the special ones but <|endofchunk|>). */
  banned: number[];
  /** The index in `cross` of the image the answer looks at (the prompt's last; -1: none). */
  lastMedia: number;
  /** The cross-attention K/V decode steps read, for one sequence (the engine's: not freed here). */
  cross: CrossKv;
  /** The same for a batch of `batch` sequences (the caller frees it). */
  crossKvFor(batch: number): Promise<CrossKv>;
  /** The prompt's cache and its last position's logits. */
  prefill: { kv: KvCache; logits: Float32Array };
  /** The cache must not be freed (the prefix cache holds it). */
  keep(kv: KvCache): boolean;
  timings: DecodeTimings;
  /** Called once, when the first token has been chosen. */
  onFirstToken(): void;
}

export interface SearchResult {
  tokens: number[];
  text: string;
  stopReason: DoneEvent['stopReason'];
}

type Stop = DoneEvent['stopReason'];

/** An answer's length when GenerateOptions.maxNewTokens is not given. */
export const DEFAULT_MAX_NEW_TOKENS = 32;

/**
 * `row` with the banned tokens at -Infinity, in an array reused from call to call (a new one each
 * step cost more than the copy in Chromium: docs/BENCHMARKS.md "Session 9"). Read it before the
 * next call: every caller hands it straight to a synchronous function.
 */
let masked = new Float32Array(0);
function maskRow(row: Float32Array, d: Decoding, options: GenerateOptions): Float32Array {
  if (masked.length !== row.length) masked = new Float32Array(row.length);
  masked.set(row);
  for (const id of d.banned) masked[id] = -Infinity;
  if (options.ignoreEndOfChunk) masked[d.eocId] = -Infinity;
  return masked;
}

/** Greedy (temperature 0) or sampling; `onText` gets each new piece of text. */
export async function decodeOneByOne(
  d: Decoding,
  options: GenerateOptions,
  onText: (piece: string) => void,
  signal?: AbortSignal,
): Promise<SearchResult> {
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const stopAtNewline = options.stopAtNewline ?? true;
  const random = seededRandom(options.seed ?? 0);
  const cross = d.cross;
  const t = d.timings;
  let kv = d.prefill.kv;
  let row = d.prefill.logits;
  const tokens: number[] = [];
  let text = '';
  let stopReason: Stop = 'max_tokens';
  try {
    while (tokens.length < maxNewTokens) {
      if (signal?.aborted) {
        stopReason = 'interrupted';
        break;
      }
      let t0 = performance.now();
      const next = sampleToken(maskRow(row, d, options), options, random);
      t.sampleMs += performance.now() - t0;
      if (tokens.length === 0) d.onFirstToken();
      if (next === d.eocId) {
        stopReason = 'end_of_chunk';
        break;
      }
      tokens.push(next);
      t0 = performance.now();
      const decoded = d.tokenizer.decode(tokens);
      // byte-level BPE: a character whose bytes span tokens is held back until its last byte comes
      const full = decoded.endsWith('\uFFFD') ? text : decoded;
      t.detokenizeMs += performance.now() - t0;
      const piece = full.slice(text.length);
      if (stopAtNewline && piece.includes('\n')) {
        text = full.slice(0, full.indexOf('\n'));
        stopReason = 'newline';
        break;
      }
      text = full;
      if (piece) onText(piece);
      if (tokens.length >= maxNewTokens) break;
      const out = await d.lm.step([[next]], [[d.lastMedia]], cross, kv, 1, t);
      if (!d.keep(kv)) kv.dispose();
      kv = out.present;
      row = out.logits;
      t.steps++;
    }
  } finally {
    if (!d.keep(kv)) kv.dispose();
  }
  return { tokens, text, stopReason };
}

interface Beam {
  tokens: number[];
  logProb: number;
}

/**
 * Beam search over `beams` sequences, run as one batch. At each step every live beam is extended
 * by its best tokens and the candidates are ranked by total log-probability; a candidate that ends
 * (<|endofchunk|>, or a newline) among the top `beams` becomes a finished answer, the others
 * continue. It stops as soon as `beams` answers are finished (early stopping) or at
 * maxNewTokens, and returns the finished answer with the best mean log-probability per token
 * (length penalty 1). With one beam this is exactly greedy decoding.
 */
export async function beamSearch(d: Decoding, beams: number, options: GenerateOptions, signal?: AbortSignal): Promise<SearchResult> {
  const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const stopAtNewline = options.stopAtNewline ?? true;
  const t = d.timings;
  const finished: (Beam & { text: string; stop: Stop })[] = [];
  let live: Beam[] = [{ tokens: [], logProb: 0 }];
  let rows: Float32Array[] = [d.prefill.logits];
  let kv = d.prefill.kv;
  let batchCross: CrossKv | undefined;
  let interrupted = false;
  try {
    for (let step = 0; step < maxNewTokens; step++) {
      if (signal?.aborted) {
        interrupted = true;
        break;
      }
      let t0 = performance.now();
      const candidates: { beam: number; token: number; logProb: number }[] = [];
      live.forEach((beam, b) => {
        const logp = logSoftmax(maskRow(rows[b], d, options));
        for (const token of topIndices(logp, 2 * beams)) candidates.push({ beam: b, token, logProb: beam.logProb + logp[token] });
      });
      // best first; ties go to the lower beam, then the lower token id (as argmax does)
      candidates.sort((a, b) => b.logProb - a.logProb || a.beam - b.beam || a.token - b.token);
      t.sampleMs += performance.now() - t0;
      if (step === 0) d.onFirstToken();
      const next: Beam[] = [];
      const sources: number[] = [];
      t0 = performance.now();
      for (let rank = 0; rank < candidates.length && next.length < beams; rank++) {
        const c = candidates[rank];
        const tokens = [...live[c.beam].tokens, c.token];
        const ends = c.token === d.eocId;
        const text = ends ? d.tokenizer.decode(live[c.beam].tokens) : d.tokenizer.decode(tokens);
        const newline = stopAtNewline && text.includes('\n');
        if (ends || newline) {
          if (rank < beams) {
            finished.push({ tokens: ends ? tokens.slice(0, -1) : tokens, logProb: c.logProb, text: newline ? text.slice(0, text.indexOf('\n')) : text, stop: ends ? 'end_of_chunk' : 'newline' });
          }
          continue;
        }
        next.push({ tokens, logProb: c.logProb });
        sources.push(c.beam);
      }
      t.detokenizeMs += performance.now() - t0;
      if (finished.length >= beams || next.length === 0 || step === maxNewTokens - 1) {
        live = next;
        break;
      }
      // the chosen beams' caches, one row each, then one batched step
      const reordered = await d.lm.selectRows(kv, sources);
      if (!d.keep(kv)) kv.dispose();
      kv = reordered;
      if (next.length === 1) batchCross = d.cross;
      else if (batchCross?.batch !== next.length) {
        if (batchCross !== d.cross) batchCross?.dispose();
        batchCross = await d.crossKvFor(next.length);
      }
      const out = await d.lm.step(next.map((b) => [b.tokens[b.tokens.length - 1]]), next.map(() => [d.lastMedia]), batchCross, kv, 1, t);
      kv.dispose();
      kv = out.present;
      const vocab = out.logits.length / next.length;
      rows = next.map((_, b) => out.logits.subarray(b * vocab, (b + 1) * vocab));
      live = next;
      t.steps++;
    }
  } finally {
    if (!d.keep(kv)) kv.dispose();
    if (batchCross !== d.cross) batchCross?.dispose();
  }
  // Early stopping: once `beams` answers are finished, unfinished beams do not compete.
  const unfinished = finished.length >= beams ? [] : live;
  const pool = [
    ...finished,
    ...unfinished.map((b) => ({ ...b, text: d.tokenizer.decode(b.tokens), stop: (interrupted ? 'interrupted' : 'max_tokens') as Stop })),
  ];
  const perToken = (b: Beam) => b.logProb / Math.max(1, b.tokens.length + 1);
  pool.sort((a, b) => perToken(b) - perToken(a));
  const best = pool[0];
  if (!best) return { tokens: [], text: '', stopReason: interrupted ? 'interrupted' : 'end_of_chunk' };
  return { tokens: best.tokens, text: best.text, stopReason: interrupted ? 'interrupted' : best.stop };
}

/** The k largest entries' indices, largest first (lower index first on ties). */
function topIndices(values: Float64Array, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] === -Infinity) continue;
    if (top.length < k || values[i] > values[top[top.length - 1]]) {
      let j = top.length < k ? top.length : top.length - 1;
      top[j] = i;
      while (j > 0 && values[top[j]] > values[top[j - 1]]) {
        [top[j], top[j - 1]] = [top[j - 1], top[j]];
        j--;
      }
    }
  }
  return top;
}

