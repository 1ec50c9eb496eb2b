// The latent cache: one store lookup per prompt, writes behind and batched, nothing lost.
import { describe, expect, it } from 'vitest';
import { LatentCache, type PersistentLatentStore } from './caches';

/** A store that records every call it gets. */
function recordingStore(failWrites = false) {
  const saved = new Map<string, Float32Array>();
  const calls: string[] = [];
  const store: PersistentLatentStore = {
    async getMany(keys) {
      calls.push(`get ${keys.join(',')}`);
      return keys.map((k) => saved.get(k));
    },
    async setMany(entries) {
      calls.push(`set ${entries.map(([k]) => k).join(',')}`);
      if (failWrites) throw new Error('QuotaExceededError');
      for (const [k, v] of entries) saved.set(k, v);
    },
  };
  return { store, saved, calls };
}

const latents = (x: number) => Float32Array.of(x, x + 1);

describe('LatentCache', () => {
  it('looks all of a prompt’s misses up in one call, and memory first', async () => {
    const { store, saved, calls } = recordingStore();
    saved.set('b', latents(2));
    const cache = new LatentCache(store);
    cache.set('a', latents(1));
    const found = await cache.getMany(['a', 'b', 'c', 'b']);
    expect(found).toEqual([latents(1), latents(2), undefined, latents(2)]);
    expect(calls).toEqual(['get b,c']); // 'a' from memory, 'b' asked once
    await cache.getMany(['b']);
    expect(calls).toEqual(['get b,c']); // remembered
  });

  it('answers from memory at once and writes the queued entries in one batch', async () => {
    const { store, saved, calls } = recordingStore();
    const cache = new LatentCache(store);
    cache.set('a', latents(1));
    cache.set('b', latents(2));
    expect(saved.size).toBe(0); // not written yet
    expect(await cache.getMany(['a', 'b'])).toEqual([latents(1), latents(2)]);
    await cache.flush();
    expect(calls).toEqual(['set a,b']);
    expect(saved.get('b')).toEqual(latents(2));
  });

  it('finds a queued entry that memory has already dropped', async () => {
    const { store, calls } = recordingStore();
    const cache = new LatentCache(store, 1);
    cache.set('a', latents(1));
    cache.set('b', latents(2)); // evicts 'a' from memory; it is still waiting to be written
    expect(await cache.getMany(['a'])).toEqual([latents(1)]);
    expect(calls).toEqual([]);
    await cache.flush();
  });

  it('keeps working on memory when the store fails, and records the error', async () => {
    const { store } = recordingStore(true);
    const cache = new LatentCache(store);
    cache.set('a', latents(1));
    await cache.flush();
    expect(String(cache.persistError)).toContain('QuotaExceededError');
    expect(await cache.getMany(['a'])).toEqual([latents(1)]);
  });

  it('writes each entry once, even when flushed twice, and nothing before a flush', async () => {
    const { store, calls } = recordingStore();
    const cache = new LatentCache(store);
    cache.set('a', latents(1));
    await new Promise((r) => setTimeout(r, 5));
    expect(calls).toEqual([]); // only queued
    const first = cache.flush();
    await cache.flush();
    await first;
    expect(calls).toEqual(['set a']);
  });
});
