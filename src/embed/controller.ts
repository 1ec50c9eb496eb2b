// The embed's moving parts, without the view: it loads the model through the same worker API as
// the studio (src/worker/client.ts), checks who is asking (allowList.ts), parses requests
// (protocol.ts), runs them one at a time (queue.ts) and replies to the exact origin that asked.
import type { DoneEvent, GenerateOptions, ProgressEvent, Prompt } from '../engine/types';
import { loadingSummary } from '../ui/useModel';
import type { BackendChoice, FlamingoClient, LoadResult } from '../worker/client';
import { fetchAllowList, isAllowed, type AllowList } from './allowList';
import { decodeImageInput } from './images';
import { isProtocolMessage, parseRequest, type EmbedReply, type RequestId, type SegmentInput } from './protocol';
import { SerialQueue } from './queue';

export type ShownSegment = { imageUrl: string } | { text: string };

export interface EmbedState {
  model:
    | { status: 'loading'; loadedBytes: number; totalBytes: number }
    | { status: 'ready'; result: LoadResult }
    | { status: 'error'; message: string };
  /** Why no host can be answered (embed-config.json missing or wrong). */
  configError?: string;
  /** The request on screen: the one running, or the last one. */
  shown?: {
    id: RequestId;
    origin: string;
    segments: ShownSegment[];
    status: 'preparing' | 'running' | 'done' | 'failed';
    text: string;
    done?: DoneEvent;
    error?: string;
  };
  waiting: number;
}

interface Job {
  id: RequestId;
  source: MessageEventSource;
  origin: string;
  segments: SegmentInput[];
  options: GenerateOptions;
}

export interface EmbedSettings {
  modelUrl: string;
  backend: BackendChoice;
  /** The app's base URL, absolute: embed-config.json is read from there. */
  base: string;
}

export class EmbedController {
  private state: EmbedState = { model: { status: 'loading', loadedBytes: 0, totalBytes: 0 }, waiting: 0 };
  private readonly listeners = new Set<() => void>();
  private readonly queue = new SerialQueue<Job>(
    (job) => this.run(job),
    () => this.set({ waiting: this.queue.size }),
  );
  private allowList!: Promise<AllowList | undefined>;
  private modelReady!: Promise<LoadResult>;
  /** Messages are handled in arrival order, even while the allow-list is still being read. */
  private inbox: Promise<void> = Promise.resolve();
  /** Windows told flamingo:ready already. */
  private readonly greeted = new WeakSet<MessageEventSource>();
  private crashed: ((message: string) => void) | undefined;
  /** Stop was asked for the running request before its generation reached the worker. */
  private stopAsked = false;
  private displayUrls: string[] = [];

  constructor(
    private readonly client: FlamingoClient,
    private readonly settings: EmbedSettings,
  ) {}

  getState = (): EmbedState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  start(): void {
    window.addEventListener('message', (event) => {
      this.inbox = this.inbox.then(() => this.receive(event));
    });
    this.allowList = fetchAllowList(this.settings.base).catch((error: unknown) => {
      const message = `${(error as Error).message} The embed answers no host until it is fixed.`;
      console.error(`flamingo-web embed: ${message}`, (error as Error).cause ?? '');
      this.set({ configError: message });
      return undefined;
    });
    this.client.onCrash((message) => {
      // the running request fails with the message; the fresh worker loads the model again
      this.crashed?.(message);
      this.modelReady = this.load();
      this.modelReady.catch(() => undefined);
    });
    this.client.onWarning((warning) => {
      console.warn(warning.message, warning.cause ?? '');
      // the GPU was lost: the model runs on WASM now (a request running then is answered from WASM)
      if (warning.code === 'webgpu-lost' && this.state.model.status === 'ready') this.set({ model: { status: 'ready', result: { ...this.state.model.result, backend: 'wasm', fallbackReason: warning.message } } });
    });
    this.modelReady = this.load();
    this.modelReady.then(
      () => void this.greetParent(),
      () => undefined,
    );
  }

  /** The Stop button: ends the running request (its host gets done with stopReason "interrupted"). */
  stop(): void {
    if (!this.queue.current) return;
    this.stopAsked = true;
    void this.client.interrupt();
  }

  /** The page is about to reload (a new version took over): pending requests end here. */
  abandonAll(reason: string): void {
    const jobs = [...(this.queue.current ? [this.queue.current] : []), ...this.queue.drain()];
    for (const job of jobs) this.reply(job.source, job.origin, { type: 'flamingo:error', id: job.id, message: reason });
  }

  private set(partial: Partial<EmbedState>): void {
    this.state = { ...this.state, ...partial };
    for (const listener of this.listeners) listener();
  }

  private async load(): Promise<LoadResult> {
    const files = new Map<string, ProgressEvent>();
    try {
      const result = await this.client.load(this.settings.modelUrl, { backend: this.settings.backend }, (event) => {
        if (event.type === 'warning') {
          console.warn(event.message, event.cause ?? '');
          return;
        }
        if (event.phase === 'session' || event.phase === 'ready') return;
        files.set(event.file, event);
        const { loadedBytes, totalBytes } = loadingSummary(files);
        if (this.state.model.status === 'loading') this.set({ model: { status: 'loading', loadedBytes, totalBytes } });
      });
      this.set({ model: { status: 'ready', result } });
      return result;
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      console.error(error, (error as Error).cause ?? '');
      this.set({ model: { status: 'error', message } });
      throw error;
    }
  }

  /** The embedding page, when the browser says who it is (ancestorOrigins, else the referrer). */
  private async greetParent(): Promise<void> {
    if (window.parent === window) return;
    const ancestors = (window.location as Location & { ancestorOrigins?: DOMStringList }).ancestorOrigins;
    let origin = ancestors?.length ? ancestors[0] : undefined;
    if (!origin && document.referrer) origin = new URL(document.referrer).origin;
    const list = await this.allowList;
    if (!origin || !list || !isAllowed(list, origin)) return;
    this.greet(window.parent, origin);
  }

  private greet(source: MessageEventSource, origin: string): void {
    if (this.greeted.has(source) || this.state.model.status !== 'ready') return;
    this.greeted.add(source);
    const { result } = this.state.model;
    this.reply(source, origin, {
      type: 'flamingo:ready',
      backend: result.backend,
      crossOriginIsolated: self.crossOriginIsolated,
      model: { name: result.manifest.name, version: result.manifest.version },
    });
  }

  private async receive(event: MessageEvent): Promise<void> {
    const { source, origin, data } = event;
    // Our own window's messages (dev tools, libraries) and messages from workers are not requests.
    if (!source || source === window || !(source as Window).postMessage) return;
    // Other scripts on a host may post things to every frame: only flamingo:* (or what tries to be
    // a request) is ours to answer.
    const looksLikeRequest = isProtocolMessage(data) || (typeof data === 'object' && data !== null && 'segments' in data);
    if (!looksLikeRequest) return;
    const list = await this.allowList;
    if (!list || !isAllowed(list, origin)) {
      console.warn(
        `flamingo-web embed: ignored a request from ${origin}: that origin is not in embed-config.json's "allowedOrigins".`,
      );
      return;
    }
    // A host that the browser did not name at load time hears flamingo:ready before its first reply.
    if (this.state.model.status === 'ready') this.greet(source, origin);

    const parsed = parseRequest(data);
    if (!parsed.ok) {
      this.reply(source, origin, { type: 'flamingo:error', id: parsed.id, message: parsed.message });
      return;
    }
    const { request } = parsed;
    if (request.type === 'flamingo:interrupt') {
      const outcome = this.queue.interrupt(source, request.id);
      if (outcome.was === 'running') this.stop();
      else if (outcome.was === 'queued') {
        this.reply(source, origin, { type: 'flamingo:error', id: request.id, message: 'Interrupted before it started.' });
      } else {
        this.reply(source, origin, {
          type: 'flamingo:error',
          id: request.id,
          message: `flamingo:interrupt: no request with id ${JSON.stringify(request.id)} is running or waiting.`,
        });
      }
      return;
    }
    if (this.queue.has(source, request.id)) {
      this.reply(source, origin, {
        type: 'flamingo:error',
        id: request.id,
        message: `flamingo:generate: id ${JSON.stringify(request.id)} is already running or waiting; use a new id.`,
      });
      return;
    }
    this.queue.add({ id: request.id, source, origin, segments: request.segments, options: request.options });
  }

  private async run(job: Job): Promise<void> {
    const { id, source, origin } = job;
    const fail = (message: string) => {
      this.reply(source, origin, { type: 'flamingo:error', id, message });
      if (this.state.shown?.id === id) this.set({ shown: { ...this.state.shown, status: 'failed', error: message } });
    };
    try {
      await this.modelReady;
    } catch (error) {
      fail(`The model could not be loaded: ${(error as Error).message}`);
      return;
    }
    this.greet(source, origin);

    this.stopAsked = false;
    for (const url of this.displayUrls) URL.revokeObjectURL(url);
    this.displayUrls = [];
    this.set({ shown: { id, origin, segments: [], status: 'preparing', text: '' } });
    const prompt: Prompt = [];
    const shown: ShownSegment[] = [];
    try {
      for (const [index, segment] of job.segments.entries()) {
        if ('text' in segment) {
          prompt.push({ text: segment.text });
          shown.push({ text: segment.text });
          continue;
        }
        const decoded = await decodeImageInput(segment.image, `segments[${index}].image`);
        this.displayUrls.push(decoded.displayUrl);
        prompt.push({ image: decoded.image });
        shown.push({ imageUrl: decoded.displayUrl });
      }
    } catch (error) {
      fail((error as Error).message);
      return;
    }

    if (this.stopAsked) {
      // Stopped while its images were decoding: the worker never saw it.
      fail('Interrupted before it started.');
      return;
    }
    this.set({ shown: { id, origin, segments: shown, status: 'running', text: '' } });
    try {
      const crash = new Promise<never>((_, reject) => {
        this.crashed = (message) => reject(new Error(message));
      });
      const done = await Promise.race([
        this.client.generate(prompt, job.options, (event) => {
          if (event.type !== 'token') return;
          this.reply(source, origin, { type: 'flamingo:token', id, text: event.text });
          const current = this.state.shown;
          if (current?.id === id) this.set({ shown: { ...current, text: current.text + event.text } });
        }),
        crash,
      ]);
      const { type: _type, text, ...stats } = done;
      this.reply(source, origin, { type: 'flamingo:done', id, text, stats });
      this.set({ shown: { id, origin, segments: shown, status: 'done', text, done } });
    } catch (error) {
      fail((error as Error).message ?? String(error));
    } finally {
      this.crashed = undefined;
    }
  }

  /** Always to the exact origin that asked, never "*". */
  private reply(source: MessageEventSource, origin: string, message: EmbedReply): void {
    try {
      (source as Window).postMessage(message, { targetOrigin: origin });
    } catch (error) {
      console.warn(`flamingo-web embed: could not reply to ${origin}`, error);
    }
  }
}
