// The inference engine: one prompt, from segments to tokens to graph calls to streamed text.
// Shared by the browser worker (onnxruntime-web) and the CLI (onnxruntime-node): the ORT module is
// handed in, so nothing here touches the DOM, the file system or a particular ORT package.
//
//   segments ─promptToText→ text ─tokenizer→ ids, mediaIndex (mask.ts)
//   each image/clip ─preprocess→ vision_encoder → resampler → latents   (cached by content)
//   lm(prefill) → logits → sample → lm(one token, KV cache) → … until <|endofchunk|>
import type * as Ort from 'onnxruntime-common';
import { preprocessImage } from './image';
import { validateManifest } from './manifest';
import { mediaIndex } from './mask';
import { promptToText } from './prompt';
import { logSoftmax, sampleToken, seededRandom } from './sampling';
import { Tokenizer } from './tokenizer';
import type {
  Backend,
  DoneEvent,
  EngineEvent,
  GenerateOptions,
  Manifest,
  ModelFileRole,
  ProgressEvent,
  Prompt,
  RgbaImage,
} from './types';
import { FlamingoError } from './types';

export type OrtModule = Pick<typeof Ort, 'InferenceSession' | 'Tensor'>;
type Session = Ort.InferenceSession;
type Tensor = Ort.Tensor;

export interface EngineOptions {
  /** The execution provider. Choosing one, and falling back, is the caller's: see src/worker/worker.ts. */
  backend: Backend;
}

export interface OptionScore {
  option: string;
  /** Sum of log p over the option's tokens and the answer's closing tokens. */
  logLikelihood: number;
  meanLogLikelihood: number;
  tokens: number;
}

const GRAPHS = ['vision_encoder', 'resampler', 'lm'] as const;

/** A cheap content hash (FNV-1a, two lanes) of preprocessed pixels: same image, no rerun. */
function contentKey(pixels: Float32Array): string {
  const bytes = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < bytes.length; i++) {
    h1 = Math.imul(h1 ^ bytes[i], 0x01000193);
    h2 = Math.imul(h2 ^ bytes[i], 0x5bd1e995);
  }
  return `${bytes.length}:${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}`;
}

/** Evenly spaced frames when a clip has more than the model's learned temporal embeddings. */
export function sampleFrames<T>(frames: T[], maxFrames: number): T[] {
  if (frames.length <= maxFrames) return frames;
  return Array.from({ length: maxFrames }, (_, i) => frames[Math.floor(((i + 0.5) * frames.length) / maxFrames)]);
}

export class FlamingoEngine {
  private readonly latentCache = new Map<string, Float32Array>();
  private readonly featureCache = new Map<string, Float32Array>();
  private readonly imageTokenId: number;
  private readonly eocId: number;
  private readonly bosId: number;
  /** Tokens the model may never generate (all special tokens but <|endofchunk|>). */
  private readonly banned: number[];

  private constructor(
    private readonly ort: OrtModule,
    readonly manifest: Manifest,
    readonly tokenizer: Tokenizer,
    private readonly sessions: Record<(typeof GRAPHS)[number], Session>,
    readonly backend: Backend,
  ) {
    const s = manifest.special_tokens;
    this.imageTokenId = tokenizer.tokenId(s.image);
    this.eocId = tokenizer.tokenId(s.end_of_chunk);
    this.bosId = tokenizer.tokenId(s.bos);
    this.banned = [s.image, s.bos, s.pad, s.unk].map((t) => tokenizer.tokenId(t));
  }

  static async create(
    ort: OrtModule,
    manifestIn: unknown,
    files: Record<ModelFileRole, Uint8Array>,
    options: EngineOptions,
    onProgress?: (e: ProgressEvent) => void,
  ): Promise<FlamingoEngine> {
    const manifest = validateManifest(manifestIn);
    const tokenizer = Tokenizer.fromJson(new TextDecoder().decode(files.tokenizer));
    if (tokenizer.vocabSize > manifest.lm.vocab_size) {
      throw new FlamingoError(`tokenizer.json has ${tokenizer.vocabSize} tokens but the model only ${manifest.lm.vocab_size}`);
    }
    const backend = options.backend;
    const sessions: Partial<Record<(typeof GRAPHS)[number], Session>> = {};
    try {
      for (const graph of GRAPHS) {
        const bytes = files[graph];
        const file = manifest.files[graph].path;
        onProgress?.({ type: 'progress', phase: 'session', file, loadedBytes: 0, totalBytes: bytes.byteLength });
        sessions[graph] = await ort.InferenceSession.create(bytes, {
          executionProviders: [backend],
          graphOptimizationLevel: 'all',
          logSeverityLevel: 3, // errors only: not the per-graph "nodes not on the preferred EP" notes
        });
        onProgress?.({ type: 'progress', phase: 'session', file, loadedBytes: bytes.byteLength, totalBytes: bytes.byteLength });
      }
      const engine = new FlamingoEngine(ort, manifest, tokenizer, sessions as Record<(typeof GRAPHS)[number], Session>, backend);
      if (backend === 'webgpu') {
        // WebGPU compiles shaders on a graph's first run: pay that while loading, not on the
        // user's first answer (and fail here, where the caller can fall back, if the GPU cannot run it).
        onProgress?.({ type: 'progress', phase: 'session', file: 'warm-up', loadedBytes: 0, totalBytes: 1 });
        await engine.warmUp();
        onProgress?.({ type: 'progress', phase: 'session', file: 'warm-up', loadedBytes: 1, totalBytes: 1 });
      }
      return engine;
    } catch (err) {
      await Promise.all(Object.values(sessions).map((s) => s.release().catch(() => undefined)));
      throw new FlamingoError(`Could not start the model on ${backend}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** One tiny generation through all three graphs; leaves no cached latents behind. */
  async warmUp(): Promise<void> {
    const S = this.manifest.vision.image_size;
    const blank: RgbaImage = { width: S, height: S, data: new Uint8Array(S * S * 4).fill(255) };
    await this.generate([{ image: blank }, { text: 'Output:' }], { maxNewTokens: 2 }, () => undefined);
    this.latentCache.clear();
    this.featureCache.clear();
  }

  async release(): Promise<void> {
    await Promise.all(Object.values(this.sessions).map((s) => s.release()));
    this.latentCache.clear();
    this.featureCache.clear();
  }

  // ------------------------------------------------------------------ vision

  /** One image or clip → frozen vision features [T × n_tokens × d_vision], cached by content. */
  private async visionFeatures(framesIn: RgbaImage[]): Promise<{ key: string; features: Float32Array; frames: number }> {
    const v = this.manifest.vision;
    const frames = sampleFrames(framesIn, v.max_frames);
    const size = 3 * v.image_size * v.image_size;
    const pixels = new Float32Array(frames.length * size);
    frames.forEach((frame, i) => pixels.set(preprocessImage(frame, v), i * size));
    const key = contentKey(pixels);
    let features = this.featureCache.get(key);
    if (!features) {
      const out = await this.sessions.vision_encoder.run({
        pixel_values: new this.ort.Tensor('float32', pixels, [frames.length, 3, v.image_size, v.image_size]),
      });
      features = new Float32Array(out.image_features.data as Float32Array);
      this.featureCache.set(key, features);
    }
    return { key, features, frames: frames.length };
  }

  /** One image or clip → its resampler latents [n_latents × d_vision], cached by content. */
  async encodeMedia(frames: RgbaImage[]): Promise<Float32Array> {
    const v = this.manifest.vision;
    const { key, features, frames: T } = await this.visionFeatures(frames);
    const cached = this.latentCache.get(key);
    if (cached) return cached;
    const { latents } = await this.sessions.resampler.run({
      image_features: new this.ort.Tensor('float32', features, [1, T, v.n_tokens, v.d_vision]),
    });
    const out = new Float32Array(latents.data as Float32Array);
    this.latentCache.set(key, out);
    return out;
  }

  /**
   * A unit-length embedding of an image or clip from the frozen vision encoder (features
   * averaged over cells and frames): what RICES ranks support examples by.
   */
  async imageEmbedding(frames: RgbaImage[]): Promise<Float32Array> {
    const d = this.manifest.vision.d_vision;
    const { features } = await this.visionFeatures(frames);
    const out = new Float32Array(d);
    for (let i = 0; i < features.length; i++) out[i % d] += features[i];
    const norm = Math.hypot(...out) || 1;
    return out.map((x) => x / norm);
  }

  private async mediaTensor(media: RgbaImage[][]): Promise<Tensor> {
    const { n_latents } = this.manifest.resampler;
    const { d_vision } = this.manifest.vision;
    const per = n_latents * d_vision;
    const M = Math.max(1, media.length); // no images: one zero image that no token looks at
    const data = new Float32Array(M * per);
    for (let i = 0; i < media.length; i++) data.set(await this.encodeMedia(media[i]), i * per);
    return new this.ort.Tensor('float32', data, [1, M, n_latents, d_vision]);
  }

  // ------------------------------------------------------------------ language model

  private emptyPast(): Tensor[] {
    const { layers, heads, head_dim } = this.manifest.lm;
    return Array.from({ length: 2 * layers }, () => new this.ort.Tensor('float32', new Float32Array(0), [1, heads, 0, head_dim]));
  }

  /** One lm call over `ids` after `past`; returns every position's logits and the new cache. */
  private async lmStep(ids: number[], mediaIdx: BigInt64Array, media: Tensor, past: Tensor[]) {
    const feeds: Record<string, Tensor> = {
      input_ids: new this.ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
      media_index: new this.ort.Tensor('int64', mediaIdx, [1, ids.length]),
      media_latents: media,
    };
    for (let i = 0; i < this.manifest.lm.layers; i++) {
      feeds[`past_key_${i}`] = past[2 * i];
      feeds[`past_value_${i}`] = past[2 * i + 1];
    }
    const out = await this.sessions.lm.run(feeds);
    const present: Tensor[] = [];
    for (let i = 0; i < this.manifest.lm.layers; i++) present.push(out[`present_key_${i}`], out[`present_value_${i}`]);
    return { logits: out.logits.data as Float32Array, present };
  }

  /** How many tokens a prompt takes (its media are not encoded). */
  countTokens(prompt: Prompt): number {
    return this.promptIds(promptToText(prompt, this.manifest.special_tokens).text).length;
  }

  private promptIds(text: string): number[] {
    return [this.bosId, ...this.tokenizer.encode(text)];
  }

  /** Tokens, per-token image index and latents for a prompt, ready for prefill. */
  private async prepare(prompt: Prompt) {
    const { text, media } = promptToText(prompt, this.manifest.special_tokens);
    const ids = this.promptIds(text);
    return { ids, mediaIdx: mediaIndex(ids, this.imageTokenId), media: await this.mediaTensor(media), nMedia: media.length };
  }

  async generate(
    prompt: Prompt,
    options: GenerateOptions,
    onEvent: (e: EngineEvent) => void,
    signal?: AbortSignal,
  ): Promise<DoneEvent> {
    const maxNewTokens = options.maxNewTokens ?? 32;
    const stopAtNewline = options.stopAtNewline ?? true;
    const random = seededRandom(options.seed ?? 0);
    const vocab = this.manifest.lm.vocab_size;

    const t0 = performance.now();
    const { ids, mediaIdx, media, nMedia } = await this.prepare(prompt);
    let { logits, present } = await this.lmStep(ids, mediaIdx, media, this.emptyPast());
    let row = logits.subarray((ids.length - 1) * vocab, ids.length * vocab);
    const lastMedia = BigInt(nMedia - 1);

    const generated: number[] = [];
    let text = '';
    let ttftMs = 0;
    let tFirst = 0;
    let stopReason: DoneEvent['stopReason'] = 'max_tokens';
    while (generated.length < maxNewTokens) {
      if (signal?.aborted) {
        stopReason = 'interrupted';
        break;
      }
      const masked = Float32Array.from(row);
      for (const id of this.banned) masked[id] = -Infinity;
      if (options.ignoreEndOfChunk) masked[this.eocId] = -Infinity;
      const next = sampleToken(masked, options, random);
      if (generated.length === 0) {
        tFirst = performance.now();
        ttftMs = tFirst - t0;
      }
      if (next === this.eocId) {
        stopReason = 'end_of_chunk';
        break;
      }
      generated.push(next);
      const full = this.tokenizer.decode(generated);
      const piece = full.slice(text.length);
      if (stopAtNewline && piece.includes('\n')) {
        text = full.slice(0, full.indexOf('\n'));
        stopReason = 'newline';
        break;
      }
      text = full;
      if (piece) onEvent({ type: 'token', text: piece });
      if (generated.length >= maxNewTokens) break;
      ({ logits, present } = await this.lmStep([next], BigInt64Array.of(lastMedia), media, present));
      row = logits;
    }
    const tEnd = performance.now();
    const decodeMs = tEnd - (tFirst || t0);
    const done: DoneEvent = {
      type: 'done',
      text: text.trim(),
      tokens: generated.length,
      promptTokens: ids.length,
      contextLength: this.manifest.lm.context_length,
      ttftMs,
      tokensPerSecond: generated.length > 1 ? ((generated.length - 1) * 1000) / decodeMs : 0,
      backend: this.backend,
      stopReason,
    };
    onEvent(done);
    return done;
  }

  /**
   * Close-ended scoring: the log-likelihood of each option as the answer to the prompt. The
   * prompt is prefilled once and each option continues from its KV cache. Each option is
   * followed by the template's closing text (e.g. '.' for "Output: {caption}.") and
   * <|endofchunk|>, so that 'dog' cannot win by being a prefix of 'dog face'.
   */
  async score(prompt: Prompt, options: string[]): Promise<OptionScore[]> {
    if (options.length === 0) throw new FlamingoError('Close-ended scoring needs at least one option');
    const vocab = this.manifest.lm.vocab_size;
    const { ids, mediaIdx, media, nMedia } = await this.prepare(prompt);
    const prefill = await this.lmStep(ids, mediaIdx, media, this.emptyPast());
    const firstLogProbs = logSoftmax(prefill.logits.subarray((ids.length - 1) * vocab, ids.length * vocab));
    const closing = this.closingText(prompt);
    const scores: OptionScore[] = [];
    for (const option of options) {
      if (!option.trim()) throw new FlamingoError('Close-ended scoring: an option is empty');
      const optionIds = [...this.tokenizer.encode(option.trim() + closing), this.eocId];
      const { logits } = await this.lmStep(
        optionIds.slice(0, -1),
        new BigInt64Array(optionIds.length - 1).fill(BigInt(nMedia - 1)),
        media,
        prefill.present,
      );
      let total = firstLogProbs[optionIds[0]];
      for (let k = 1; k < optionIds.length; k++) total += logSoftmax(logits.subarray((k - 1) * vocab, k * vocab))[optionIds[k]];
      scores.push({ option, logLikelihood: total, meanLogLikelihood: total / optionIds.length, tokens: optionIds.length });
    }
    return scores;
  }

  /** The text a template puts after the answer: for "<image>Output: {caption}.<|endofchunk|>" it is '.'. */
  private closingText(prompt: Prompt): string {
    const last = prompt[prompt.length - 1];
    const query = last && 'text' in last ? last.text.trimEnd() : '';
    const eoc = this.manifest.special_tokens.end_of_chunk;
    for (const template of Object.values(this.manifest.prompt_templates)) {
      const queryTail = template.query.split('}').pop()!.replace(this.manifest.special_tokens.image, '').trim();
      if (queryTail && query.endsWith(queryTail)) {
        return template.example.split('}').pop()!.replace(eoc, '');
      }
    }
    return '';
  }
}
