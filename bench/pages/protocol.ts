// What the bench pages (dev/bench only, built by `vite build --mode bench`) expose on `window`,
// and what bench/browser.ts reads back through Playwright. Plain data only: it crosses
// page.evaluate as JSON.
import type { Backend, DecodeTimings } from '../../src/engine/types';
import type { LoadTimings } from '../../src/worker/api';

export interface DecodeSample {
  promptTokens: number;
  tokens: number;
  /** The engine's own figure (worker clock): decode steps after the first token. */
  tokensPerSecond: number;
  ttftMs: number;
  /** The same steps seen from the page: first token event → the done event. */
  pageTokensPerSecond: number;
  /** generate() called → its promise resolved, on the page. */
  pageTotalMs: number;
  timings?: DecodeTimings;
}

export interface ShotSample {
  shots: number;
  images: number;
  promptTokens: number;
  /** All the prompt's images encoded (fresh noise), timed on the page around the worker call. */
  encodeMs: number;
  /** generate() with every image cached: tokenising + prefill + first token. */
  ttftMs: number;
  /** generate() with fresh images: what a visitor waits for a new prompt. */
  ttftFreshMs: number;
  tokensPerSecond: number;
  /** The engine's per-phase sums of the cached-images decode (DoneEvent.timings). */
  timings: DecodeTimings;
}

/** One decode on the page's own thread with every session.run timed (no worker, no events). */
export interface PhaseSample {
  tokens: number;
  tokensPerSecond: number;
  /** Per decode step, milliseconds: the whole step, and the lm session.run inside it. */
  stepMs: number;
  runMs: number;
  /** stepMs − runMs: feeds, reading outputs, sampling, detokenising (the engine's own work). */
  engineMs: number;
}

/** A model other than the bundled one (bench/openflamingo.ts: a converted OpenFlamingo): its folder URL. */
export interface ModelChoice {
  url: string;
  /** `float32` or a variant's name (default: the worker's choice). */
  variant?: string;
}

/** What a decode step fetches: logits and the whole cache (present_*), its new rows (new_*), or logits alone. */
export type LmFetch = 'present' | 'new' | 'logits';

export interface FlamingoBenchApi {
  load(
    backend: 'wasm' | 'webgpu',
    model?: ModelChoice,
  ): Promise<{
    backend: Backend;
    variant: string;
    loadMs: number;
    timings: LoadTimings;
    fromCache: boolean;
    fallbackReason?: string;
    /** The store's and backend's warnings (a file it could not keep in IndexedDB, …): code and message. */
    warnings?: string[];
  }>;
  decodeText(text: string, newTokens: number): Promise<DecodeSample>;
  /** One fresh noise image at the loaded model's size, then `text`: timings include its encoding. */
  decodeImage(text: string, newTokens: number, seed: number): Promise<DecodeSample>;
  shots(shots: number, newTokens: number, seed: number): Promise<ShotSample>;
  decodePhases(text: string, newTokens: number): Promise<PhaseSample>;
  /**
   * lm.onnx alone on this page's thread: the median ms of `runs` session.run calls of one decode
   * step (zero K/V, `past` cached positions, one image), fetching `outputs` (after as many runs to warm up).
   */
  lmRuns(outputs: LmFetch, past: number, runs: number): Promise<number>;
  /** performance.measureUserAgentSpecificMemory (page + worker), MB; null where not allowed. */
  memoryMb(): Promise<number | null>;
}

export interface TransformersBenchApi {
  load(): Promise<{ loadMs: number; version: string }>;
  /** Greedy, exactly `newTokens` new tokens after `ids` (our bos + prompt ids). */
  decodeIds(ids: number[], newTokens: number): Promise<{ tokens: number; tokensPerSecond: number; ttftMs: number }>;
  /** transformers.js' own tokenizer on the same text (checked against our ids). */
  encode(text: string): Promise<number[]>;
}

declare global {
  interface Window {
    flamingoBench?: FlamingoBenchApi;
    transformersBench?: TransformersBenchApi;
  }
}
