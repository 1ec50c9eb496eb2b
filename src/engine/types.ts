// The data contracts shared by the engine, the worker, the UI and the CLI.
// The model folder format is documented in docs/MODEL_FORMAT.md; `Manifest` mirrors it.

/** One file of a model folder, as listed in manifest.json. */
export interface ManifestFile {
  path: string; // relative to the manifest
  bytes: number;
  sha256: string; // lower-case hex
}

export type ModelFileRole = 'vision_encoder' | 'resampler' | 'lm' | 'tokenizer';

export interface PromptTemplate {
  /** One support example; `{image}` is where the visual segment goes, other `{x}` are fields. */
  example: string;
  /** The query: the example up to where the answer starts. */
  query: string;
}

/**
 * Another encoding of the same model (docs/MODEL_FORMAT.md, "Variants"): its files replace those
 * of some roles, with the same graph inputs and outputs. The default files are float32.
 */
export interface ManifestVariant {
  description: string;
  /** The execution providers it is meant for; `variant: 'auto'` picks it only on these. */
  backends: Backend[];
  /** Adapter features it needs (WebGPU's `shader-f16`); `auto` picks it only where the adapter has them all. */
  requires?: string[];
  files: Partial<Record<ModelFileRole, ManifestFile>>;
}

export interface Manifest {
  format: 'flamingo-web/1';
  name: string;
  version: string;
  description?: string;
  files: Record<ModelFileRole, ManifestFile>;
  vision: {
    image_size: number; // square input side, pixels
    mean: [number, number, number]; // per channel, on 0..1 pixel values
    std: [number, number, number];
    background: [number, number, number]; // transparent pixels are composited on this (0..255)
    n_tokens: number; // visual tokens per frame out of the vision encoder
    d_vision: number;
    max_frames: number; // learned temporal embeddings in the resampler
  };
  resampler: { n_latents: number; layers: number; heads: number };
  lm: {
    vocab_size: number;
    d_model: number;
    layers: number;
    heads: number;
    head_dim: number;
    xattn_layers: number[]; // a gated xattn-dense block sits before each of these LM layers
    context_length: number;
  };
  special_tokens: {
    image: string;
    end_of_chunk: string;
    bos: string;
    pad: string;
    unk: string;
  };
  prompt_templates: Record<string, PromptTemplate>;
  license: string;
  training_data: string;
  model_card?: string;
  /** In order of preference: `auto` takes the first that fits the backend and the adapter. */
  variants?: Record<string, ManifestVariant>;
}

/** An image as decoded pixels: RGBA, row-major, 8 bits per channel (ImageData's layout). */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/** A prompt is an ordered list of segments (DESIGN.md, "Prompts"). */
export type Segment = { image: RgbaImage } | { video: RgbaImage[] } | { text: string };
export type Prompt = Segment[];

export interface SamplingOptions {
  /** 0 (default) means greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  /** Stop at a newline as well as at <|endofchunk|> (default true). */
  stopAtNewline?: boolean;
  /** Keep decoding past <|endofchunk|> (benchmarks: a fixed number of decode steps). */
  ignoreEndOfChunk?: boolean;
}

export type Backend = 'webgpu' | 'wasm' | 'cpu';

export interface ProgressEvent {
  type: 'progress';
  phase: 'manifest' | 'download' | 'verify' | 'cache' | 'session' | 'ready';
  file: string;
  loadedBytes: number;
  totalBytes: number;
}
export interface TokenEvent {
  type: 'token';
  text: string;
}
export interface DoneEvent {
  type: 'done';
  text: string;
  tokens: number;
  promptTokens: number;
  /** The longest sequence the model was trained on (manifest lm.context_length): past it, answers degrade. */
  contextLength: number;
  ttftMs: number;
  tokensPerSecond: number;
  backend: Backend;
  stopReason: 'end_of_chunk' | 'newline' | 'max_tokens' | 'interrupted';
}
/** Whether a generation ran past the longest sequence the model was trained on. */
export function pastTrainedContext(done: DoneEvent): boolean {
  return done.promptTokens + done.tokens > done.contextLength;
}

export interface ErrorEvent {
  type: 'error';
  message: string;
  cause?: string;
}
export type EngineEvent = ProgressEvent | TokenEvent | DoneEvent | ErrorEvent;

/** An error with a message meant for the user and the underlying cause for the console. */
export class FlamingoError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FlamingoError';
  }
}

export function causeText(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) return cause.stack ?? cause.message;
  return String(cause);
}
