// The per-image mask of Flamingo (the paper's φ), as integers, outside the graph.
// Twin of media_index() in models/flamingo/mask.py; a parity test compares the two.

/**
 * For each token, the index of the last `<image>` at or before it; −1 before the first one.
 * The `<image>` token itself already sees its image. `startCount` continues the count from an
 * earlier chunk of the same sequence (prefill, then decode steps).
 */
export function mediaIndex(tokenIds: ArrayLike<number>, imageTokenId: number, startCount = 0): BigInt64Array {
  const out = new BigInt64Array(tokenIds.length);
  let count = startCount;
  for (let i = 0; i < tokenIds.length; i++) {
    if (tokenIds[i] === imageTokenId) count++;
    out[i] = BigInt(count - 1);
  }
  return out;
}
