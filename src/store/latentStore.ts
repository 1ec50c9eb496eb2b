// Resampler latents that survive a reload: IndexedDB database `flamingo-web-latents`, one entry
// per image or clip, keyed by the vision graphs and the sha256 of its preprocessed pixels
// (src/engine/caches.ts makes the key). A support image used again is never encoded again.
import { clear, createStore, getMany, setMany, type UseStore } from 'idb-keyval';
import type { PersistentLatentStore } from '../engine/caches';

let store: UseStore | undefined;
function latents(): UseStore {
  store ??= createStore('flamingo-web-latents', 'latents');
  return store;
}

export const indexedDbLatentStore: PersistentLatentStore = {
  async getMany(keys) {
    const buffers = await getMany<ArrayBuffer>(keys, latents());
    return buffers.map((buffer) => (buffer ? new Float32Array(buffer) : undefined));
  },
  async setMany(entries) {
    await setMany(
      entries.map(([key, value]) => [key, value.slice().buffer]),
      latents(),
    );
  },
};

export async function clearLatentStore(): Promise<void> {
  await clear(latents());
}
