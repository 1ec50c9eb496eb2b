// The UI's handle on the worker: typed functions over comlink. Callbacks go as Comlink.proxy;
// image pixels are transferred, not copied.
import * as Comlink from 'comlink';
import type { Pictures } from '../engine/pictures';
import type { DoneEvent, EngineEvent, GenerateOptions, Prompt } from '../engine/types';
import {
  installErrorTransfer,
  type FlamingoWorkerApi,
  type LoadEvent,
  type LoadOptions,
  type LoadResult,
  type ScoreResult,
} from './api';

export type { BackendChoice, LoadEvent, LoadResult, ScoreResult, WarningEvent } from './api';
export type { Pictures, TokenPicture } from '../engine/pictures';

export class FlamingoClient {
  private readonly worker: Worker;
  private readonly remote: Comlink.Remote<FlamingoWorkerApi>;
  private readonly crashListeners = new Set<(message: string) => void>();

  constructor() {
    installErrorTransfer();
    this.worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'flamingo-model' });
    this.worker.addEventListener('error', (event) => {
      const message = `The model worker stopped: ${event.message || 'it could not be started'}. Reload the page to try again.`;
      for (const listener of this.crashListeners) listener(message);
    });
    this.remote = Comlink.wrap<FlamingoWorkerApi>(this.worker);
  }

  /** Hears about a worker that failed to start or died (its pending calls never settle). */
  onCrash(listener: (message: string) => void): () => void {
    this.crashListeners.add(listener);
    return () => this.crashListeners.delete(listener);
  }

  load(modelUrl: string, options: LoadOptions, onEvent: (event: LoadEvent) => void): Promise<LoadResult> {
    return this.remote.load(modelUrl, options, Comlink.proxy(onEvent));
  }

  /** The prompt's pixel buffers are transferred to the worker: they are detached here after the call. */
  generate(prompt: Prompt, options: GenerateOptions, onEvent: (event: EngineEvent) => void): Promise<DoneEvent> {
    return this.remote.generate(Comlink.transfer(prompt, pixelBuffers(prompt)), options, Comlink.proxy(onEvent));
  }

  /** The prompt's pixel buffers are transferred, as for generate. */
  score(prompt: Prompt, options: string[]): Promise<ScoreResult[]> {
    return this.remote.score(Comlink.transfer(prompt, pixelBuffers(prompt)), options);
  }

  /** The prompt's pixel buffers are transferred, as for generate. */
  explain(prompt: Prompt, tokenIds: number[]): Promise<Pictures> {
    return this.remote.explain(Comlink.transfer(prompt, pixelBuffers(prompt)), tokenIds);
  }

  interrupt(): Promise<void> {
    return this.remote.interrupt();
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
