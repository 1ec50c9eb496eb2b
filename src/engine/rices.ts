// RICES (Retrieval-based In-Context Example Selection; Yang et al. 2022, used by Flamingo's and
// OpenFlamingo's evaluations): the support examples most similar to the query by frozen vision
// features, the most similar placed last, right before the query.
import type { FlamingoEngine } from './engine';
import type { RgbaImage } from './types';

// A pool is reused across many queries: remember each image's embedding (per engine, per image
// object) instead of preprocessing every pool image again for every query.
const embeddings = new WeakMap<FlamingoEngine, WeakMap<RgbaImage[], Float32Array>>();

async function embed(engine: FlamingoEngine, frames: RgbaImage[]): Promise<Float32Array> {
  let cache = embeddings.get(engine);
  if (!cache) embeddings.set(engine, (cache = new WeakMap()));
  let e = cache.get(frames);
  if (!e) cache.set(frames, (e = await engine.imageEmbedding(frames)));
  return e;
}

/** Indices of the `shots` pool entries nearest the query, ordered least to most similar. */
export async function selectByRices(
  engine: FlamingoEngine,
  query: RgbaImage[],
  pool: RgbaImage[][],
  shots: number,
): Promise<number[]> {
  const q = await engine.imageEmbedding(query);
  const embedded: Float32Array[] = [];
  for (const frames of pool) embedded.push(await embed(engine, frames));
  return nearestByEmbedding(q, embedded, shots);
}

/** Indices of the `shots` embeddings nearest `query` (dot product of unit vectors), least to most similar. */
export function nearestByEmbedding(query: Float32Array, pool: readonly Float32Array[], shots: number): number[] {
  const scored = pool.map((e, index) => {
    let similarity = 0;
    for (let i = 0; i < query.length; i++) similarity += query[i] * e[i];
    return { index, similarity };
  });
  scored.sort((a, b) => b.similarity - a.similarity || a.index - b.index);
  return scored.slice(0, shots).reverse().map((s) => s.index);
}
