// The engine's two caches.
//   LatentCache: an image's (or clip's) resampler latents by content, in memory and, when the
//     caller hands in a persistent store (IndexedDB in the browser), across reloads: a support
//     image used again is never encoded again.
//   PrefixCache: the KV cache of the last prompt's support set (everything before its query
//     image), so that a new query after the same examples prefills only the query.
import type { KvCache } from './languageModel';

/** Where latents survive a reload (src/store/latentStore.ts in the browser). */
export interface PersistentLatentStore {
  /** One lookup for all of a prompt's images (one IndexedDB transaction, not one per image). */
  getMany(keys: string[]): Promise<(Float32Array | undefined)[]>;
  setMany(entries: [string, Float32Array][]): Promise<void>;
}

/** A content key: sha256 of the preprocessed pixels, prefixed by the model's vision graphs. */
export async function contentKey(pixels: Float32Array, modelKey: string): Promise<string> {
  const bytes = new Uint8Array(pixels.buffer as ArrayBuffer, pixels.byteOffset, pixels.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return `${modelKey}:${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Latents by content key: memory first, then the persistent store. Writes go behind: `set`
 * only queues (memory serves the latents meanwhile) and `flush` hands the queue to the store in
 * one `setMany`; the engine flushes once an answer is done, so no write runs during a prompt's
 * encoding or decoding. Awaiting each image's lookup and write one by one cost a 32-shot prompt
 * 50-80 ms of its first token (docs/BENCHMARKS.md).
 */
export class LatentCache {
  private readonly memory = new Map<string, Float32Array>();
  /** Set but not yet handed to the store, and the batches being written (found by `getMany` even if memory dropped them). */
  private queued = new Map<string, Float32Array>();
  private readonly inFlight = new Set<Map<string, Float32Array>>();
  private writing: Promise<void> = Promise.resolve();
  /** Set when a write to the persistent store failed: the app says so, the model keeps running. */
  persistError: unknown;

  constructor(
    private readonly persistent?: PersistentLatentStore,
    private readonly maxEntries = 4096,
  ) {}

  /** Each key's latents, or undefined where neither memory nor the store has them. */
  async getMany(keys: string[]): Promise<(Float32Array | undefined)[]> {
    const found = keys.map((k) => this.memory.get(k) ?? this.unwritten(k));
    const missing = [...new Set(keys.filter((_, i) => !found[i]))];
    if (missing.length === 0 || !this.persistent) return found;
    const stored = await this.persistent.getMany(missing).catch(() => missing.map(() => undefined));
    const byKey = new Map<string, Float32Array>();
    missing.forEach((k, i) => {
      const latents = stored[i];
      if (latents) {
        byKey.set(k, latents);
        this.remember(k, latents);
      }
    });
    return found.map((f, i) => f ?? byKey.get(keys[i]));
  }

  set(key: string, latents: Float32Array): void {
    this.remember(key, latents);
    if (this.persistent) this.queued.set(key, latents);
  }

  /** Hands every queued entry to the store; resolves when all writes so far have settled (never rejects). */
  flush(): Promise<void> {
    const store = this.persistent;
    if (store && this.queued.size > 0) {
      const batch = this.queued;
      this.queued = new Map();
      this.inFlight.add(batch);
      this.writing = this.writing
        .then(() => store.setMany([...batch]))
        .catch((err: unknown) => {
          this.persistError = err;
        })
        .finally(() => this.inFlight.delete(batch));
    }
    return this.writing;
  }

  private unwritten(key: string): Float32Array | undefined {
    let latents = this.queued.get(key);
    for (const batch of this.inFlight) latents ??= batch.get(key);
    return latents;
  }

  clearMemory(): void {
    this.memory.clear();
  }

  private remember(key: string, latents: Float32Array): void {
    if (this.memory.size >= this.maxEntries) this.memory.delete(this.memory.keys().next().value!);
    this.memory.set(key, latents);
  }
}

export interface PrefixEntry {
  /** The prefix's token ids and, per image it covers, the image's content key. */
  ids: number[];
  mediaKeys: string[];
  kv: KvCache;
}

/** One entry: the studio and the embed send many queries after one support set. */
export class PrefixCache {
  private entry?: PrefixEntry;

  lookup(ids: number[], mediaKeys: string[]): KvCache | undefined {
    const e = this.entry;
    if (!e || e.ids.length !== ids.length || e.mediaKeys.length !== mediaKeys.length) return undefined;
    for (let i = 0; i < ids.length; i++) if (e.ids[i] !== ids[i]) return undefined;
    for (let i = 0; i < mediaKeys.length; i++) if (e.mediaKeys[i] !== mediaKeys[i]) return undefined;
    return e.kv;
  }

  store(entry: PrefixEntry): void {
    if (this.entry && this.entry.kv !== entry.kv) this.entry.kv.dispose();
    this.entry = entry;
  }

  /** Whether `kv` is the cached prefix (which the decode loop must not free). */
  holds(kv: KvCache): boolean {
    return this.entry?.kv === kv;
  }

  clear(): void {
    this.entry?.kv.dispose();
    this.entry = undefined;
  }
}
