// The data contracts shared by the engine, the worker, the UI and the CLI.
// The model folder format is documented in docs/MODEL_FORMAT.md; `Manifest` mirrors it.

/** One file of a model folder, as listed in manifest.json. */
export interface ManifestFile {
  path: string; // relative to the manifest
  bytes: number;
  sha256: string; // lower-case hex
  /** A graph's weights kept outside it, in shards (docs/MODEL_FORMAT.md, "External data"). */
  external_data?: ManifestFile[];
}

/** A file and its external data shards, if any: everything to download and store for it. */
export function withShards(file: ManifestFile): ManifestFile[] {
  return [file, ...(file.external_data ?? [])];
}

/** Each graph's external data shards by file name, as ONNX Runtime's `externalData` session option takes them. */
export type ExternalData = Partial<Record<ModelFileRole, { path: string; data: Uint8Array }[]>>;

/** What a model needs, stated by its converter and checked before any download (src/engine/requirements.ts). */
export interface ModelRequirements {
  /** Every file of the default (float32) files, shards included. */
  storage_bytes: number;
  /** An estimate of the memory it runs in: weights, a KV cache of the trained context, activations. */
  memory_bytes: number;
  /** The largest single weight: one GPU buffer on WebGPU. */
  largest_tensor_bytes: number;
}

/** Every file a model folder has, by role (docs/MODEL_FORMAT.md). */
export const MODEL_FILE_ROLES = ['vision_encoder', 'resampler', 'xattn_kv', 'lm', 'tokenizer'] as const;
export type ModelFileRole = (typeof MODEL_FILE_ROLES)[number];

/** tanh(alpha), tanh(beta) of one gated xattn-dense block (folded into the graph's weights). */
export interface GateValues {
  layer: number;
  attn: number;
  ff: number;
}

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
  /** Its own, where it states them (else the default files' are checked: an upper bound). */
  requirements?: ModelRequirements;
}

export interface Manifest {
  format: 'flamingo-web/2';
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
    /** The gated blocks' own heads when they differ from the LM's (OpenFlamingo: 8 × 64 at any width). */
    xattn_heads?: number;
    xattn_head_dim?: number;
    context_length: number;
    /** How lm.onnx encodes positions (informative: the graph does it): 'rope' when absent, or 'alibi'. */
    positions?: 'rope' | 'alibi';
    gates?: GateValues[];
  };
  special_tokens: {
    image: string;
    end_of_chunk: string;
    /** Prepended to every prompt; absent for models that take none (OpenFlamingo on GPT-NeoX's tokenizer). */
    bos?: string;
    pad: string;
    unk: string;
  };
  prompt_templates: Record<string, PromptTemplate>;
  license: string;
  training_data: string;
  model_card?: string;
  /** In order of preference: `auto` takes the first that fits the backend and the adapter. */
  variants?: Record<string, ManifestVariant>;
  /** Absent for small models (the bundled one): nothing is checked. */
  requirements?: ModelRequirements;
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
  /** Beam search with this many beams; the answer comes at the end. Absent: greedy or sampling, streamed token by token. */
  beams?: number;
  /** Stop at a newline as well as at <|endofchunk|> (default true). */
  stopAtNewline?: boolean;
  /** Keep decoding past <|endofchunk|> (benchmarks: a fixed number of decode steps). */
  ignoreEndOfChunk?: boolean;
  /** Reuse the KV of the same support examples from the last prompt (default true). */
  reusePrefix?: boolean;
  /** Write new latents to the persistent latent store (default true; the warm-up does not). */
  persistLatents?: boolean;
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
  /** Prompt tokens whose KV came from the support-set prefix cache instead of a prefill. */
  cachedPromptTokens: number;
  /** The prompt's images and clips, and how many of them ran through the vision graphs (the rest came from the latent cache). */
  media: number;
  encodedMedia: number;
  timings: DecodeTimings;
  /** The answer's token ids (what `explain` pictures). */
  tokenIds: number[];
}

/** Where one answer's time went, in ms (decode-step phases summed over the steps). */
export interface DecodeTimings {
  /** Images → latents (vision encoder + resampler, or the latent cache). */
  encodeMs: number;
  /** xattn_kv + the prompt's lm call(s), up to the first token's logits. */
  prefillMs: number;
  /** Building the step's input tensors. */
  feedsMs: number;
  /** session.run of the decode steps. */
  runMs: number;
  /** Reading the logits row and swapping the KV cache. */
  outputsMs: number;
  sampleMs: number;
  detokenizeMs: number;
  /** Decode steps run (one per generated token but the last). */
  steps: number;
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
