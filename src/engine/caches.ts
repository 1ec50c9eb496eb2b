// The engine's two caches.
//   LatentCache: an image's (or clip's) resampler latents by content, in memory and, when the
//     caller hands in a persistent store (IndexedDB in the browser), across reloads: a support
//     image used again is never encoded again.
//   PrefixCache: the KV cache of the last prompt's support set (everything before its query
//     image), so that a new query after the same examples prefills only the query.
import type { KvCache } from './languageModel';

/** Where latents survive a reload (src/store/latentStore.ts in the browser). */
export interface PersistentLatentStore {
  get(key: string): Promise<Float32Array | undefined>;
  set(key: string, latents: Float32Array): Promise<void>;
}

/** A content key: sha256 of the preprocessed pixels, prefixed by the model's vision graphs. */
export async function contentKey(pixels: Float32Array, modelKey: string): Promise<string> {
  const bytes = new Uint8Array(pixels.buffer as ArrayBuffer, pixels.byteOffset, pixels.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return `${modelKey}:${Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class LatentCache {
  private readonly memory = new Map<string, Float32Array>();
  /** Set when a write to the persistent store failed: the app says so, the model keeps running. */
  persistError: unknown;

  constructor(
    private readonly persistent?: PersistentLatentStore,
    private readonly maxEntries = 4096,
  ) {}

  async get(key: string): Promise<Float32Array | undefined> {
    const hit = this.memory.get(key);
    if (hit) return hit;
    const stored = await this.persistent?.get(key).catch(() => undefined);
    if (stored) this.remember(key, stored);
    return stored;
  }

  async set(key: string, latents: Float32Array): Promise<void> {
    this.remember(key, latents);
    await this.persistent?.set(key, latents).catch((err: unknown) => {
      this.persistError = err;
    });
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
