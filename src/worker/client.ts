// The UI's handle on the worker: typed functions over comlink. Callbacks go as Comlink.proxy;
// image pixels are transferred, not copied.
import * as Comlink from 'comlink';
import type { Pictures } from '../engine/pictures';
import type { DoneEvent, EngineEvent, GenerateOptions, Prompt, RgbaImage } from '../engine/types';
import { FlamingoError } from '../engine/types';
import {
  installErrorTransfer,
  type BackendChoice,
  type FlamingoWorkerApi,
  type LoadEvent,
  type LoadOptions,
  type LoadResult,
  type ScoreOptions,
  type ScoreResult,
  type WarningEvent,
} from './api';

export { backendChoice } from './api';
export type { BackendChoice, LoadEvent, LoadResult, ScoreOptions, ScoreResult, WarningEvent } from './api';
export type { Pictures, TokenPicture } from '../engine/pictures';

export class FlamingoClient {
  private worker!: Worker;
  private remote!: Comlink.Remote<FlamingoWorkerApi>;
  private readonly crashListeners = new Set<(message: string) => void>();
  private readonly warningListeners = new Set<(warning: WarningEvent) => void>();
  /** The rejecters of calls in flight: a worker that dies never answers them. */
  private readonly inFlight = new Set<(error: Error) => void>();
  private firstLoadDone = () => {};
  /** Settles when the first `load` has (ready or failed): start-up's end, for work that can wait. */
  readonly firstLoadSettled = new Promise<void>((resolve) => (this.firstLoadDone = resolve));

  constructor() {
    installErrorTransfer();
    this.spawn();
  }

  private spawn(): void {
    const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'flamingo-model' });
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      this.restart(`The model worker stopped (${event.message || 'it could not be started'}); it was restarted and the model is loading again.`, worker);
    });
    this.worker = worker;
    this.remote = Comlink.wrap<FlamingoWorkerApi>(worker);
    void this.remote.watch(Comlink.proxy((warning) => {
      for (const listener of this.warningListeners) listener(warning);
    }));
  }

  /**
   * An uncaught error in the worker leaves the runtime in an unknown state: the worker is replaced
   * by a fresh one, the calls in flight fail with `message`, and listeners (useModel) load the
   * model again. The page's prompt is untouched.
   */
  private restart(message: string, failed: Worker): void {
    if (failed !== this.worker) return; // already replaced
    const error = new FlamingoError(message);
    for (const reject of this.inFlight) reject(error);
    this.inFlight.clear();
    this.remote[Comlink.releaseProxy]();
    failed.terminate();
    this.spawn();
    for (const listener of this.crashListeners) listener(message);
  }

  /** A call to the worker that fails, instead of hanging, if the worker dies meanwhile. */
  private call<T>(f: (remote: Comlink.Remote<FlamingoWorkerApi>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.inFlight.add(reject);
      f(this.remote).then(resolve, reject).finally(() => this.inFlight.delete(reject));
    });
  }

  /** Hears about a worker that failed or died (it has been replaced by then; load the model again). */
  onCrash(listener: (message: string) => void): () => void {
    this.crashListeners.add(listener);
    return () => this.crashListeners.delete(listener);
  }

  /** Hears what the worker reports on its own (FlamingoWorkerApi.watch): `webgpu-lost`, `latents-not-saved`. */
  onWarning(listener: (warning: WarningEvent) => void): () => void {
    this.warningListeners.add(listener);
    return () => this.warningListeners.delete(listener);
  }

  load(modelUrl: string, options: LoadOptions, onEvent: (event: LoadEvent) => void): Promise<LoadResult> {
    const loading = this.call((remote) => remote.load(modelUrl, options, Comlink.proxy(onEvent)));
    loading.then(this.firstLoadDone, this.firstLoadDone);
    return loading;
  }

  /**
   * The prompt's pixel buffers are transferred to the worker: they are detached here after the call.
   * The events come through the callback's own MessagePort and the result through the worker's, so
   * the result can overtake the last tokens: it resolves only once the done event has come through
   * the callback as well (every token before it), or a second after the result if it never does.
   */
  async generate(prompt: Prompt, options: GenerateOptions, onEvent: (event: EngineEvent) => void): Promise<DoneEvent> {
    let delivered = () => {};
    const doneDelivered = new Promise<void>((resolve) => (delivered = resolve));
    const events = (event: EngineEvent) => {
      onEvent(event);
      if (event.type === 'done') delivered();
    };
    const done = await this.call((remote) => remote.generate(Comlink.transfer(prompt, pixelBuffers(prompt)), options, Comlink.proxy(events)));
    await Promise.race([doneDelivered, new Promise((resolve) => setTimeout(resolve, 1000))]);
    return done;
  }

  /** Encodes images or clips ahead of a prompt that uses them; their pixel buffers are transferred. */
  encode(media: RgbaImage[][]): Promise<void> {
    return this.call((remote) => remote.encode(Comlink.transfer(media, pixelBuffers(media.map((frames) => ({ video: frames }))))));
  }

  /** The prompt's pixel buffers are transferred, as for generate. */
  score(prompt: Prompt, options: string[], scoreOptions?: ScoreOptions): Promise<ScoreResult[]> {
    return this.call((remote) => remote.score(Comlink.transfer(prompt, pixelBuffers(prompt)), options, scoreOptions));
  }

  /** Vision-encoder embeddings (RICES), one per image or clip; the pixel buffers are transferred. */
  embed(media: RgbaImage[][]): Promise<Float32Array[]> {
    const prompt: Prompt = media.map((frames) => ({ video: frames }));
    return this.call((remote) => remote.embed(Comlink.transfer(media, pixelBuffers(prompt))));
  }

  /** The prompt's pixel buffers are transferred, as for generate. */
  explain(prompt: Prompt, tokenIds: number[]): Promise<Pictures> {
    return this.call((remote) => remote.explain(Comlink.transfer(prompt, pixelBuffers(prompt)), tokenIds));
  }

  /** Starts the runtime for `backend` ahead of `load` (see FlamingoWorkerApi.prepare). */
  prepare(backend: BackendChoice): void {
    void this.remote.prepare(backend);
  }

  interrupt(): Promise<void> {
    return this.call((remote) => remote.interrupt());
  }

  terminate(): void {
    this.remote[Comlink.releaseProxy]();
    this.worker.terminate();
  }
}

function pixelBuffers(prompt: Prompt): Transferable[] {
  const buffers = new Set<ArrayBuffer>();
  for (const segment of prompt) {
    const images = 'image' in segment ? [segment.image] : 'video' in segment ? segment.video : [];
    for (const image of images) {
      if (image.data.buffer instanceof ArrayBuffer) buffers.add(image.data.buffer);
    }
  }
  return [...buffers];
}
