// The worker's API, typed end to end: the UI calls these functions through comlink (client.ts),
// the worker implements them (worker.ts). Events are data (src/engine/types.ts), never strings.
import * as Comlink from 'comlink';
import {
  causeText,
  FlamingoError,
  type Backend,
  type DoneEvent,
  type EngineEvent,
  type GenerateOptions,
  type Manifest,
  type Prompt,
  type ProgressEvent,
  type RgbaImage,
} from '../engine/types';
import type { OptionScore, ScoreOptions } from '../engine/engine';
import type { Pictures } from '../engine/pictures';
import type { VariantChoice } from '../engine/variants';
import type { StoreWarning } from '../store/modelStore';

export type BackendChoice = 'auto' | 'webgpu' | 'wasm';
const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'webgpu', 'wasm'];

/** A page's `?backend=` value as a choice ('auto' when absent or unknown). */
export function backendChoice(value: string | null): BackendChoice {
  return BACKEND_CHOICES.find((choice) => choice === value) ?? 'auto';
}

export interface LoadOptions {
  backend: BackendChoice;
  /** `auto` (default): per backend, the manifest's first variant that fits; or `float32`, or a variant's name. */
  variant?: VariantChoice;
}

/** Worth telling the user, but the model runs: a cache that failed, WebGPU that fell back. */
export interface WarningEvent {
  type: 'warning';
  code: StoreWarning['code'] | 'webgpu-unavailable' | 'webgpu-failed' | 'webgpu-lost' | 'latents-not-saved';
  message: string;
  file?: string;
  cause?: string;
}

export type LoadEvent = ProgressEvent | WarningEvent;

export interface LoadResult {
  manifest: Manifest;
  backend: Backend;
  /** The model variant running (`float32`: the default files). */
  variant: string;
  /** Set when the backend is not the one asked for (WebGPU missing or failing). */
  fallbackReason?: string;
  warnings: WarningEvent[];
  /** Every model file came from IndexedDB: no network. */
  fromCache: boolean;
  loadMs: number;
  /** Where the load's time went (docs/BENCHMARKS.md, "Start-up"). */
  timings: LoadTimings;
}

/**
 * Milliseconds from the start of `load` in the worker. Phases may overlap (the runtime starts
 * while the model files are read), so they are spans, not a sum.
 */
export interface LoadTimings {
  /** The worker's `performance.timeOrigin` (epoch ms): puts the spans on the page's clock. */
  workerOrigin: number;
  /** Worker start to the start of `load`, on the worker's clock. */
  workerStartMs: number;
  /** Model files from IndexedDB or the network, verified: [start, end]. */
  files: [number, number];
  /**
   * ONNX Runtime's wasm fetched, compiled and initialised (a one-node session): [start, end]; the
   * start is negative when `prepare` began it before `load`.
   */
  runtime?: [number, number];
  /** One span per graph's InferenceSession.create (and 'warm-up' when the engine runs one). */
  sessions: Record<string, [number, number]>;
  total: number;
}

export type { OptionScore as ScoreResult, ScoreOptions } from '../engine/engine';

export interface FlamingoWorkerApi {
  /** Loads (or reloads, with another backend) the model in `modelUrl`, a folder URL. */
  load(modelUrl: string, options: LoadOptions, onEvent: (event: LoadEvent) => void): Promise<LoadResult>;
  /** Streams token events to `onEvent`, resolves with the done event; images are transferred. */
  generate(prompt: Prompt, options: GenerateOptions, onEvent: (event: EngineEvent) => void): Promise<DoneEvent>;
  /**
   * Encodes images or clips (vision encoder + resampler) into the engine's latent cache, so that a
   * later prompt with them skips that work; pixels are transferred.
   */
  encode(media: RgbaImage[][]): Promise<void>;
  /** Close-ended: the log-likelihood of each option as the continuation of the prompt. */
  score(prompt: Prompt, options: string[], scoreOptions?: ScoreOptions): Promise<OptionScore[]>;
  /** RICES: each image's (each clip's frames') unit-length embedding by the frozen vision encoder. */
  embed(media: RgbaImage[][]): Promise<Float32Array[]>;
  /** What each token of an answer looked at (gates, cross-attention, heatmaps): src/engine/pictures.ts. */
  explain(prompt: Prompt, tokenIds: number[]): Promise<Pictures>;
  /** Stops the running generation; it resolves with stopReason 'interrupted'. */
  interrupt(): void;
  /**
   * Hears of changes the page did not ask for: `webgpu-lost` (the GPU device was lost, the model
   * now runs on WASM; an answer running then is given again from WASM) and `latents-not-saved`
   * (encoded pictures could not be written to IndexedDB: the model runs, but they are encoded
   * again after a reload).
   */
  watch(onEvent: (event: WarningEvent) => void): void;
  /**
   * Starts ONNX Runtime for `backend` (fetch, compile, initialise) before `load` is called: the
   * page calls it as soon as the worker exists, so the runtime starts while the page renders.
   */
  prepare(backend: BackendChoice): void;
}

interface SerializedThrow {
  isError: boolean;
  value: unknown;
}
interface SerializedError {
  message: string;
  name: string;
  stack?: string;
  cause?: string;
}

/**
 * comlink passes a thrown Error as message, name and stack only. This keeps the cause too, and
 * turns it back into a FlamingoError on the other side, so the UI can show the message and log
 * the cause. Called by both the worker and the client.
 */
export function installErrorTransfer(): void {
  const original = Comlink.transferHandlers.get('throw');
  if (!original) return;
  Comlink.transferHandlers.set('throw', {
    canHandle: original.canHandle,
    serialize(thrown: unknown): [SerializedThrow, Transferable[]] {
      const value = (thrown as { value: unknown }).value;
      if (value instanceof Error) {
        const error: SerializedError = {
          message: value.message,
          name: value.name,
          stack: value.stack,
          cause: causeText(value.cause),
        };
        return [{ isError: true, value: error }, []];
      }
      return [{ isError: false, value }, []];
    },
    deserialize(serialized: unknown): never {
      const { isError, value } = serialized as SerializedThrow;
      if (!isError) throw value;
      const { message, name, stack, cause } = value as SerializedError;
      const error = new FlamingoError(message, cause === undefined ? undefined : { cause });
      error.name = name;
      if (stack) error.stack = stack;
      throw error;
    },
  });
}
