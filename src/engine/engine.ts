// The inference engine: one prompt, from segments to tokens to graph calls to streamed text.
// Shared by the browser worker (onnxruntime-web) and the CLI (onnxruntime-node): the ORT module is
// handed in, so nothing here touches the DOM, the file system or a particular ORT package.
//
//   segments ─promptToText→ text ─tokenizer→ ids, mediaIndex (mask.ts)
//   each image/clip ─preprocess→ vision_encoder → resampler → latents     (LatentCache, caches.ts)
//   latents ─xattn_kv→ cross-attention K/V, once per prompt               (languageModel.ts)
//   lm(support examples) → KV                                             (PrefixCache, caches.ts)
//   lm(query) → logits → search.ts: greedy / sampling / beam, lm(one token, KV) … until <|endofchunk|>
import type * as Ort from 'onnxruntime-common';
import { contentKey, LatentCache, PrefixCache, type PersistentLatentStore } from './caches';
import { preprocessImage } from './image';
import { LanguageModel, type CrossKv, type KvCache, type OrtModule } from './languageModel';
import { validateManifest } from './manifest';
import { checkPrompt, checkPromptTokens } from './limits';
import { mediaIndex } from './mask';
import { checkGenerateOptions } from './options';
import { cellsOf, latentAttention, latentToCells, type Pictures, type TokenPicture } from './pictures';
import { promptToText } from './prompt';
import { logSoftmax, seededRandom } from './sampling';
import { beamSearch, decodeOneByOne, DEFAULT_MAX_NEW_TOKENS, type Decoding } from './search';
import { Tokenizer } from './tokenizer';
import type {
  Backend,
  DecodeTimings,
  ExternalData,
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

export type { OrtModule } from './languageModel';
type Session = Ort.InferenceSession;

export interface EngineOptions {
  /** The execution provider. Choosing one, and falling back, is the caller's: see src/worker/worker.ts. */
  backend: Backend;
  /** Keeps latents across reloads (IndexedDB in the browser); memory only without it. */
  latentStore?: PersistentLatentStore;
  /** The shards of graphs whose weights are external data (manifest `external_data`). */
  externalData?: ExternalData;
  /** false: decode steps feed back the graph's present_* instead of appending new_key_* (the plain path, for tests). */
  appendCache?: boolean;
  /**
   * true: the vision encoder's and resampler's sessions are created on their first use (the first
   * image, or the worker's warm-up) instead of in `create`, so a WASM start-up is ready for text
   * sooner (on WASM each creation holds the thread; these two took 90-150 ms of a warm start).
   */
  deferVision?: boolean;
}

export interface OptionScore {
  option: string;
  /** Sum of log p over the option's tokens and the answer's closing tokens (averaged over support orders when ensembling). */
  logLikelihood: number;
  meanLogLikelihood: number;
  tokens: number;
}

export interface ScoreOptions {
  /** Prompt ensembling: average over this many orders of the support examples (the paper: 6). Default 1. */
  permutations?: number;
  seed?: number;
  /** All options in one batched lm call (default), or one call each (the reference path). */
  batched?: boolean;
}

const GRAPHS = ['vision_encoder', 'resampler', 'xattn_kv', 'lm'] as const;
type Graph = (typeof GRAPHS)[number];
type VisionSessions = Record<'vision_encoder' | 'resampler', Session>;

/** Evenly spaced frames when a clip has more than the model's learned temporal embeddings. */
export function sampleFrames<T>(frames: T[], maxFrames: number): T[] {
  if (frames.length <= maxFrames) return frames;
  return Array.from({ length: maxFrames }, (_, i) => frames[Math.floor(((i + 0.5) * frames.length) / maxFrames)]);
}

function emptyTimings(): DecodeTimings {
  return { encodeMs: 0, prefillMs: 0, feedsMs: 0, runMs: 0, outputsMs: 0, sampleMs: 0, detokenizeMs: 0, steps: 0 };
}

interface PreparedPrompt {
  ids: number[];
  mediaIdx: number[];
  /** The prompt's latents [M × n_latents × d_vision], M ≥ 1 (a zero image when there are none). */
  latents: Float32Array;
  mediaKeys: string[];
  nMedia: number;
  /** How many of the media ran through the vision graphs (not found in the latent cache). */
  encodedMedia: number;
}

export class FlamingoEngine {
  private readonly latents: LatentCache;
  private readonly featureCache = new Map<string, Float32Array>();
  private visionStarted?: Promise<VisionSessions>;
  private readonly prefixes = new PrefixCache();
  private readonly lm: LanguageModel;
  /** Latent cache keys are only valid for these vision graphs. */
  private readonly visionKey: string;
  private readonly imageTokenId: number;
  private readonly eocId: number;
  /** Prepended to every prompt; undefined when the model takes none. */
  private readonly bosId?: number;
  /** Tokens the model may never generate (all special tokens but <|endofchunk|>). */
  private readonly banned: number[];

  private constructor(
    private readonly ort: OrtModule,
    readonly manifest: Manifest,
    readonly tokenizer: Tokenizer,
    /** Every session created so far (a deferred one is added when it is created). */
    private readonly sessions: Partial<Record<Graph, Session>>,
    /** The vision graphs' sessions, created on the first call when they were deferred. */
    private readonly startVision: () => Promise<VisionSessions>,
    readonly backend: Backend,
    latentStore?: PersistentLatentStore,
    appendCache = true,
  ) {
    const s = manifest.special_tokens;
    this.imageTokenId = tokenizer.tokenId(s.image);
    this.eocId = tokenizer.tokenId(s.end_of_chunk);
    this.bosId = s.bos === undefined ? undefined : tokenizer.tokenId(s.bos);
    this.banned = [s.image, s.bos, s.pad, s.unk].filter((t): t is string => t !== undefined).map((t) => tokenizer.tokenId(t));
    this.lm = new LanguageModel(ort, sessions.lm!, sessions.xattn_kv!, manifest, backend, appendCache);
    this.latents = new LatentCache(latentStore);
    this.visionKey = `${manifest.files.vision_encoder.sha256.slice(0, 16)}-${manifest.files.resampler.sha256.slice(0, 16)}`;
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
    const sessions: Partial<Record<Graph, Session>> = {};
    const createSession = async (graph: Graph, bytes: Uint8Array, externalData?: ExternalData[Graph]) => {
      const file = manifest.files[graph].path;
      onProgress?.({ type: 'progress', phase: 'session', file, loadedBytes: 0, totalBytes: bytes.byteLength });
      const outputs = graph === 'lm' || graph === 'xattn_kv' ? LanguageModel.outputLocations(manifest, backend, graph) : undefined;
      const session = await ort.InferenceSession.create(bytes, {
        ...(externalData ? { externalData } : {}),
        executionProviders: [backend],
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3, // errors only: not the per-graph "nodes not on the preferred EP" notes
        ...(outputs ? { preferredOutputLocation: outputs } : {}),
      });
      sessions[graph] = session;
      onProgress?.({ type: 'progress', phase: 'session', file, loadedBytes: bytes.byteLength, totalBytes: bytes.byteLength });
      return session;
    };
    // Deferred graphs keep only their own bytes until created, not every file's nor every shard:
    // no closure here may refer to `files` or `options` (V8 would keep them for the engine's life).
    let deferred: { graph: Graph; bytes: Uint8Array; externalData?: ExternalData[Graph] }[] = [];
    if (options.deferVision) {
      for (const graph of ['vision_encoder', 'resampler'] as const) deferred.push({ graph, bytes: files[graph], externalData: options.externalData?.[graph] });
    }
    const vision = async (): Promise<VisionSessions> => {
      for (const { graph, bytes, externalData } of deferred) sessions[graph] ??= await createSession(graph, bytes, externalData);
      deferred = [];
      return { vision_encoder: sessions.vision_encoder!, resampler: sessions.resampler! };
    };
    try {
      for (const graph of GRAPHS) {
        if (!deferred.some((d) => d.graph === graph)) await createSession(graph, files[graph], options.externalData?.[graph]);
      }
      const engine = new FlamingoEngine(ort, manifest, tokenizer, sessions, vision, backend, options.latentStore, options.appendCache);
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

  /**
   * One tiny generation through every graph; leaves no cache behind. A graph's first run pays for
   * its code's compilation (WebGPU: its shaders; WASM: V8 compiles wasm functions when first
   * called), about 0.8 s of the bundled model's first answer on WASM. `signal` stops it between steps.
   */
  async warmUp(signal?: AbortSignal): Promise<void> {
    const S = this.manifest.vision.image_size;
    const blank: RgbaImage = { width: S, height: S, data: new Uint8Array(S * S * 4).fill(255) };
    const prompt: Prompt = [{ image: blank }, { text: 'Output: a.' }, { image: blank }, { text: 'Output:' }];
    try {
      await this.generate(prompt, { maxNewTokens: 2, ignoreEndOfChunk: true, persistLatents: false }, () => undefined, signal);
    } finally {
      this.clearCaches();
    }
  }

  clearCaches(): void {
    this.latents.clearMemory();
    this.featureCache.clear();
    this.prefixes.clear();
  }

  async release(): Promise<void> {
    await this.latents.flush();
    this.clearCaches();
    await this.visionStarted?.catch(() => undefined); // a deferred creation under way ends first
    await Promise.all(Object.values(this.sessions).map((s) => s.release()));
  }

  /** The vision graphs' sessions; a failed deferred creation is tried again on the next call. */
  private vision(): Promise<VisionSessions> {
    return (this.visionStarted ??= this.startVision().catch((err: unknown) => {
      this.visionStarted = undefined;
      throw new FlamingoError(`Could not start the vision graphs on ${this.backend}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }));
  }

  // ------------------------------------------------------------------ vision

  private pixelsOf(framesIn: RgbaImage[]): { pixels: Float32Array; frames: number } {
    const v = this.manifest.vision;
    const frames = sampleFrames(framesIn, v.max_frames);
    const size = 3 * v.image_size * v.image_size;
    const pixels = new Float32Array(frames.length * size);
    frames.forEach((frame, i) => pixels.set(preprocessImage(frame, v), i * size));
    return { pixels, frames: frames.length };
  }

  private async visionFeatures(key: string, pixels: Float32Array, frames: number): Promise<Float32Array> {
    let features = this.featureCache.get(key);
    if (!features) {
      const S = this.manifest.vision.image_size;
      const out = await (await this.vision()).vision_encoder.run({ pixel_values: new this.ort.Tensor('float32', pixels, [frames, 3, S, S]) });
      features = new Float32Array(out.image_features.data as Float32Array);
      this.featureCache.set(key, features);
    }
    return features;
  }

  /** One image or clip → its content key and resampler latents [n_latents × d_vision], cached by content. */
  async encodeMedia(frames: RgbaImage[], persist = true): Promise<{ key: string; latents: Float32Array }> {
    return (await this.encodeMany([frames], persist))[0];
  }

  /** Several images or clips into the latent cache at once (one lookup, one write): what the worker's `encode` runs. */
  async encodeMany(media: RgbaImage[][], persist = true): Promise<{ key: string; latents: Float32Array }[]> {
    const encoded = await this.encodeAll(media, persist);
    void this.latents.flush();
    return encoded.media;
  }

  /**
   * Several images or clips: every content key first, one cache lookup for them all, then the
   * graphs for the misses (an image that comes twice is encoded once). New latents are only
   * queued (LatentCache.set): the caller flushes them once its work is done, so nothing here
   * waits for IndexedDB but the one lookup.
   */
  private async encodeAll(media: RgbaImage[][], persist: boolean): Promise<{ media: { key: string; latents: Float32Array }[]; encoded: number }> {
    const inputs = media.map((frames) => this.pixelsOf(frames));
    const keys = await Promise.all(inputs.map(({ pixels }) => contentKey(pixels, this.visionKey)));
    const found = await this.latents.getMany(keys);
    const fresh = new Map<string, Float32Array>();
    for (let i = 0; i < keys.length; i++) {
      if (found[i]) continue;
      let latents = fresh.get(keys[i]);
      if (!latents) {
        latents = await this.resample(keys[i], inputs[i].pixels, inputs[i].frames);
        fresh.set(keys[i], latents);
        if (persist) this.latents.set(keys[i], latents);
      }
      found[i] = latents;
    }
    return { media: keys.map((key, i) => ({ key, latents: found[i]! })), encoded: fresh.size };
  }

  /** vision_encoder → resampler for one image or clip: its latents [n_latents × d_vision]. */
  private async resample(key: string, pixels: Float32Array, frames: number): Promise<Float32Array> {
    const v = this.manifest.vision;
    const features = await this.visionFeatures(key, pixels, frames);
    const { latents } = await (await this.vision()).resampler.run(
      { image_features: new this.ort.Tensor('float32', features, [1, frames, v.n_tokens, v.d_vision]) },
      ['latents'],
    );
    return new Float32Array(latents.data as Float32Array);
  }

  /** Set when latents could not be written to the persistent store (the model still runs). */
  get latentStoreError(): unknown {
    return this.latents.persistError;
  }

  /**
   * A unit-length embedding of an image or clip from the frozen vision encoder (features
   * averaged over cells and frames): what RICES ranks support examples by.
   */
  async imageEmbedding(frames: RgbaImage[]): Promise<Float32Array> {
    const d = this.manifest.vision.d_vision;
    const { pixels, frames: T } = this.pixelsOf(frames);
    const features = await this.visionFeatures(await contentKey(pixels, this.visionKey), pixels, T);
    const out = new Float32Array(d);
    for (let i = 0; i < features.length; i++) out[i % d] += features[i];
    const norm = Math.hypot(...out) || 1;
    return out.map((x) => x / norm);
  }

  // ------------------------------------------------------------------ prompt → prefill

  /** How many tokens a prompt takes (its media are not encoded). */
  countTokens(prompt: Prompt): number {
    return this.promptIds(promptToText(prompt, this.manifest.special_tokens).text).length;
  }

  private promptIds(text: string): number[] {
    const ids = this.tokenizer.encode(text);
    return this.bosId === undefined ? ids : [this.bosId, ...ids];
  }

  /** Limits first (limits.ts), then tokens, then images: nothing is encoded for a prompt that cannot run. */
  private async prepare(prompt: Prompt, persist = true): Promise<PreparedPrompt> {
    checkPrompt(prompt, this.manifest);
    const { text, media } = promptToText(prompt, this.manifest.special_tokens);
    const ids = this.promptIds(text);
    checkPromptTokens(ids.length, this.manifest);
    const per = this.manifest.resampler.n_latents * this.manifest.vision.d_vision;
    const latents = new Float32Array(Math.max(1, media.length) * per); // no images: one zero image no token looks at
    const encoded = await this.encodeAll(media, persist);
    encoded.media.forEach((e, i) => latents.set(e.latents, i * per));
    const mediaKeys = encoded.media.map((e) => e.key);
    return { ids, mediaIdx: Array.from(mediaIndex(ids, this.imageTokenId), Number), latents, mediaKeys, nMedia: media.length, encodedMedia: encoded.encoded };
  }

  private crossKv(p: PreparedPrompt, batch: number): Promise<CrossKv> {
    const { n_latents } = this.manifest.resampler;
    return this.lm.crossAttentionKv(p.latents, [Math.max(1, p.nMedia), n_latents, this.manifest.vision.d_vision], batch);
  }

  /**
   * The K/V a decode step needs: a generated token looks only at the prompt's last image
   * (Flamingo's per-image mask), so decode steps get that image's K/V alone, as image 0, and
   * their cost does not grow with the number of shots. The prefill gets them all (crossKv).
   */
  private decodeCrossKv(p: PreparedPrompt, batch: number): Promise<CrossKv> {
    if (p.nMedia <= 1) return this.crossKv(p, batch);
    const { n_latents } = this.manifest.resampler;
    const per = n_latents * this.manifest.vision.d_vision;
    const last = p.latents.subarray((p.nMedia - 1) * per, p.nMedia * per);
    return this.lm.crossAttentionKv(last, [1, n_latents, this.manifest.vision.d_vision], batch);
  }

  /**
   * The prompt's KV cache and its last position's logits. The support examples (everything before
   * the query's <image>) are prefilled on their own and kept: the next prompt with the same
   * examples (same tokens, same images) reuses their KV and prefills only its query. `room`: the
   * positions to be appended after the prompt, so that the cache never grows during a decode
   * (growing copies it into newly allocated buffers: slow in Chromium).
   */
  private async prefill(p: PreparedPrompt, cross: CrossKv, reusePrefix: boolean, room = 0): Promise<{ kv: KvCache; logits: Float32Array; cachedTokens: number }> {
    const queryStart = p.ids.lastIndexOf(this.imageTokenId);
    let past = this.lm.emptyCache(1, p.ids.length + room);
    let start = 0;
    let cachedTokens = 0;
    // Without the cache, one call over the whole prompt (the split costs a call and buys nothing).
    if (queryStart > 0 && reusePrefix) {
      const prefixIds = p.ids.slice(0, queryStart);
      const prefixKeys = p.mediaKeys.slice(0, p.nMedia - 1);
      const hit = this.prefixes.lookup(prefixIds, prefixKeys);
      if (hit) {
        past = hit;
        cachedTokens = queryStart;
      } else {
        past = (await this.lm.step([prefixIds], [p.mediaIdx.slice(0, queryStart)], cross, past, 1)).present;
        this.prefixes.store({ ids: prefixIds, mediaKeys: prefixKeys, kv: past });
      }
      start = queryStart;
    }
    const out = await this.lm.step([p.ids.slice(start)], [p.mediaIdx.slice(start)], cross, past, 1);
    if (!this.prefixes.holds(past)) past.dispose();
    return { kv: out.present, logits: out.logits, cachedTokens };
  }

  // ------------------------------------------------------------------ generate

  async generate(
    prompt: Prompt,
    options: GenerateOptions,
    onEvent: (e: EngineEvent) => void,
    signal?: AbortSignal,
  ): Promise<DoneEvent> {
    checkGenerateOptions(options);
    const timings = emptyTimings();
    const t0 = performance.now();
    const p = await this.prepare(prompt, options.persistLatents ?? true);
    const tEncoded = performance.now();
    timings.encodeMs = tEncoded - t0;
    const cross = await this.crossKv(p, 1);
    const decodeCross = p.nMedia > 1 ? await this.decodeCrossKv(p, 1) : cross;
    let tFirst = 0;
    try {
      const prefill = await this.prefill(p, cross, options.reusePrefix ?? true, options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS);
      timings.prefillMs = performance.now() - tEncoded;
      const decoding: Decoding = {
        lm: this.lm,
        tokenizer: this.tokenizer,
        eocId: this.eocId,
        banned: this.banned,
        lastMedia: p.nMedia >= 1 ? 0 : -1, // index into decodeCross: the last image is its only one
        cross: decodeCross,
        crossKvFor: (batch) => this.decodeCrossKv(p, batch),
        prefill,
        keep: (kv) => this.prefixes.holds(kv),
        timings,
        onFirstToken: () => (tFirst = performance.now()),
      };
      // beams set (even to 1, which is greedy by another road: a test compares the two): beam search
      const beams = options.beams;
      const result =
        beams !== undefined
          ? await beamSearch(decoding, beams, options, signal)
          : await decodeOneByOne(decoding, options, (text) => onEvent({ type: 'token', text }), signal);
      if (beams !== undefined && result.text) onEvent({ type: 'token', text: result.text }); // a beam's answer is known only at the end
      const decodeMs = performance.now() - (tFirst || t0);
      const done: DoneEvent = {
        type: 'done',
        text: result.text.trim(),
        tokens: result.tokens.length,
        promptTokens: p.ids.length,
        cachedPromptTokens: prefill.cachedTokens,
        media: p.nMedia,
        encodedMedia: p.encodedMedia,
        contextLength: this.manifest.lm.context_length,
        ttftMs: tFirst ? tFirst - t0 : 0,
        tokensPerSecond: result.tokens.length > 1 ? ((result.tokens.length - 1) * 1000) / decodeMs : 0,
        backend: this.backend,
        stopReason: result.stopReason,
        timings,
        tokenIds: result.tokens,
      };
      onEvent(done);
      return done;
    } finally {
      cross.dispose();
      if (decodeCross !== cross) decodeCross.dispose();
      void this.latents.flush(); // the prompt's new latents, written after the answer
    }
  }

  // ------------------------------------------------------------------ pictures

  /**
   * What each token of an answer (`tokens`, generated after `prompt`) looked at: per gated layer,
   * its cross-attention over the latents of its image and that carried onto the image's grid
   * (pictures.ts). A token is pictured at the position whose output chose it. One extra lm call
   * over prompt and answer; nothing here runs while generating.
   */
  async explain(prompt: Prompt, tokens: number[]): Promise<Pictures> {
    const v = this.manifest.vision;
    const { n_latents, heads: resamplerHeads } = this.manifest.resampler;
    const { xattn_layers: layers, gates = [] } = this.manifest.lm;
    const heads = this.manifest.lm.xattn_heads ?? this.manifest.lm.heads;
    const headDim = this.manifest.lm.xattn_head_dim ?? this.manifest.lm.head_dim;
    const d = heads * headDim; // xattn_query_i's width
    const { resampler } = await this.vision();
    if (!resampler.outputNames.includes('latent_attention')) {
      throw new FlamingoError('This model folder has no resampler attention output (latent_attention): its pictures cannot be drawn.');
    }
    const { media } = promptToText(prompt, this.manifest.special_tokens);
    const p = await this.prepare(prompt);
    const ids = [...p.ids, ...tokens];
    const midx = Array.from(mediaIndex(ids, this.imageTokenId), Number);
    const cross = await this.crossKv(p, 1);
    try {
      const out = await this.lm.step([ids], [midx], cross, this.lm.emptyCache(1), 1, undefined, true);
      out.present.dispose();
      const keys = await Promise.all(layers.map((i) => LanguageModel.cpuData(cross.tensors[`xattn_key_${i}`])));
      const cellMaps = new Map<number, number[][][]>();
      const pictures: TokenPicture[] = [];
      for (let k = 0; k < tokens.length; k++) {
        const position = p.ids.length - 1 + k;
        const m = midx[position];
        const text = this.tokenizer.decode(tokens.slice(0, k + 1)).slice(this.tokenizer.decode(tokens.slice(0, k)).length);
        if (m < 0) {
          pictures.push({ text, media: -1, layers: [] });
          continue;
        }
        if (!cellMaps.has(m)) {
          const { pixels, frames } = this.pixelsOf(media[m]);
          const features = await this.visionFeatures(await contentKey(pixels, this.visionKey), pixels, frames);
          const { latent_attention: attention } = await resampler.run(
            { image_features: new this.ort.Tensor('float32', features, [1, frames, v.n_tokens, v.d_vision]) },
            ['latent_attention'],
          );
          cellMaps.set(m, latentToCells(attention.data as Float32Array, resamplerHeads, n_latents, frames, v.n_tokens));
        }
        pictures.push({
          text,
          media: m,
          layers: layers.map((layer, j) => {
            const query = out.queries![`xattn_query_${layer}`].subarray(position * d, (position + 1) * d);
            const latents = latentAttention(query, keys[j], m, n_latents, heads, headDim);
            const gate = gates.find((g) => g.layer === layer) ?? { attn: NaN, ff: NaN };
            return { layer, gates: { attn: gate.attn, ff: gate.ff }, latents, cells: cellsOf(latents, cellMaps.get(m)!) };
          }),
        });
      }
      return { grid: Math.round(Math.sqrt(v.n_tokens)), gates, tokens: pictures };
    } finally {
      cross.dispose();
      void this.latents.flush();
    }
  }

  // ------------------------------------------------------------------ close-ended scoring

  /**
   * Close-ended scoring: the log-likelihood of each option as the answer to the prompt. The
   * prompt is prefilled once; all options then continue from its KV cache in one batched call
   * (right-padded: causal attention never looks at the padding). Each option is followed by the
   * template's closing text (e.g. '.' for "Output: {caption}.") and <|endofchunk|>, so that 'dog'
   * cannot win by being a prefix of 'dog face'. With `permutations` > 1 the scores are averaged
   * over that many orders of the support examples (prompt ensembling; the first order is the
   * prompt's own).
   */
  async score(prompt: Prompt, options: string[], scoreOptions: ScoreOptions = {}): Promise<OptionScore[]> {
    if (options.length === 0) throw new FlamingoError('Close-ended scoring needs at least one option');
    if (options.some((o) => !o.trim())) throw new FlamingoError('Close-ended scoring: an option is empty');
    const orders = supportOrders(prompt, scoreOptions.permutations ?? 1, scoreOptions.seed ?? 0);
    const totals = options.map(() => 0);
    let optionTokens: number[] = [];
    try {
      for (const order of orders) {
        const scores = await this.scoreOnce(order, options, scoreOptions.batched ?? true);
        scores.forEach((s, i) => (totals[i] += s.logLikelihood));
        optionTokens = scores.map((s) => s.tokens);
      }
    } finally {
      void this.latents.flush();
    }
    return options.map((option, i) => {
      const logLikelihood = totals[i] / orders.length;
      return { option, logLikelihood, meanLogLikelihood: logLikelihood / optionTokens[i], tokens: optionTokens[i] };
    });
  }

  private async scoreOnce(prompt: Prompt, options: string[], batched: boolean): Promise<OptionScore[]> {
    const vocab = this.manifest.lm.vocab_size;
    const p = await this.prepare(prompt);
    const cross = await this.crossKv(p, 1);
    const { kv, logits } = await this.prefill(p, cross, true);
    const firstLogProbs = logSoftmax(logits);
    const closing = this.closingText(prompt);
    const optionIds = options.map((o) => [...this.tokenizer.encode(o.trim() + closing), this.eocId]);
    const last = p.nMedia - 1;
    // the tokens fed after the prompt: each option but its last token (whose probability the one
    // before it gives); one token options need no call at all
    const rows = optionIds.map((ids) => ids.slice(0, -1));
    const logLikelihoods = optionIds.map((ids) => firstLogProbs[ids[0]]);
    const addRest = (b: number, rowLogits: Float32Array) => {
      for (let k = 1; k < optionIds[b].length; k++) logLikelihoods[b] += logSoftmax(rowLogits.subarray((k - 1) * vocab, k * vocab))[optionIds[b][k]];
    };
    try {
      const width = Math.max(...rows.map((r) => r.length));
      if (width > 0 && batched) {
        const padded = rows.map((r) => [...r, ...Array(width - r.length).fill(this.eocId)]);
        const fanned = await this.lm.selectRows(kv, rows.map(() => 0));
        const batchCross = await this.crossKv(p, rows.length);
        try {
          const out = await this.lm.step(padded, padded.map(() => Array(width).fill(last)), batchCross, fanned, width);
          rows.forEach((_, b) => addRest(b, out.logits.subarray(b * width * vocab, (b + 1) * width * vocab)));
          out.present.dispose();
        } finally {
          batchCross.dispose();
        }
      } else if (width > 0) {
        for (let b = 0; b < rows.length; b++) {
          if (rows[b].length === 0) continue;
          const out = await this.lm.step([rows[b]], [Array(rows[b].length).fill(last)], cross, kv, rows[b].length);
          addRest(b, out.logits);
          out.present.dispose();
        }
      }
    } finally {
      if (!this.prefixes.holds(kv)) kv.dispose();
      cross.dispose();
    }
    return options.map((option, b) => ({
      option,
      logLikelihood: logLikelihoods[b],
      meanLogLikelihood: logLikelihoods[b] / optionIds[b].length,
      tokens: optionIds[b].length,
    }));
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

/**
 * The prompt's support examples in `count` orders (the prompt's own first, then seeded shuffles):
 * an example is a visual segment and the text up to the next one; the last example is the query
 * and stays last. Text before the first image stays first.
 */
export function supportOrders(prompt: Prompt, count: number, seed: number): Prompt[] {
  const firstVisual = prompt.findIndex((s) => !('text' in s));
  const lastVisual = prompt.length - 1 - [...prompt].reverse().findIndex((s) => !('text' in s));
  if (count <= 1 || firstVisual < 0 || firstVisual === lastVisual) return [prompt];
  const head = prompt.slice(0, firstVisual);
  const query = prompt.slice(lastVisual);
  const examples: Prompt[] = [];
  for (const segment of prompt.slice(firstVisual, lastVisual)) {
    if ('text' in segment) examples[examples.length - 1].push(segment);
    else examples.push([segment]);
  }
  const random = seededRandom(seed);
  const orders: Prompt[] = [prompt];
  for (let k = 1; k < count; k++) {
    const shuffled = [...examples];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    orders.push([...head, ...shuffled.flat(), ...query]);
  }
  return orders;
}
