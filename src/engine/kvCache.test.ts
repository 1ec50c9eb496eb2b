// The appended KV cache: the rows it feeds are exactly those appended, whatever shares its store.
import { describe, expect, it } from 'vitest';
import { Tensor } from 'onnxruntime-common';
import { AppendKv, PastScratch } from './kvCache';

const shape = { layers: 2, heads: 3, headDim: 2 };
const width = shape.heads * shape.headDim;

/** new_key/new_value outputs [batch, count, heads*head_dim] whose values name (buffer, b, position, h, d). */
function rows(batch: number, from: number, count: number, tag = 0): Float32Array[] {
  return Array.from({ length: 2 * shape.layers }, (_, i) =>
    Float32Array.from({ length: batch * count * width }, (_, j) => {
      const b = Math.floor(j / (count * width));
      const s = from + (Math.floor(j / width) % count);
      return tag + i * 10000 + b * 1000 + s * 10 + (j % width) / 10;
    }),
  );
}

/** What past_* must hold: [batch, heads, length, head_dim] of the values `rows` gave each position. */
function expected(i: number, b: number, length: number, tagOf: (s: number) => number): Float32Array {
  const out: number[] = [];
  for (let h = 0; h < shape.heads; h++)
    for (let s = 0; s < length; s++) for (let d = 0; d < shape.headDim; d++) out.push(tagOf(s) + i * 10000 + b * 1000 + s * 10 + (h * shape.headDim + d) / 10);
  return Float32Array.from(out);
}

const fed = (kv: AppendKv, i: number, b = 0) => {
  const t = kv.pastTensors(Tensor)[i];
  expect(t.dims).toEqual([kv.batch, shape.heads, kv.length, shape.headDim]);
  const per = shape.heads * kv.length * shape.headDim;
  return (t.data as Float32Array).slice(b * per, (b + 1) * per);
};

describe('AppendKv', () => {
  it('feeds every appended row in [batch, heads, length, head_dim] order, growing past its capacity', () => {
    let kv = AppendKv.empty(shape, 2, 4);
    kv = kv.append(rows(2, 0, 3), 3);
    for (let s = 3; s < 11; s++) kv = kv.append(rows(2, s, 1), 1); // capacity 4 -> 8 -> 16
    expect(kv.length).toBe(11);
    expect(kv.store.capacity).toBe(16);
    for (let i = 0; i < 2 * shape.layers; i++) for (const b of [0, 1]) expect(fed(kv, i, b)).toEqual(expected(i, b, 11, () => 0));
  });

  it('appends in place only to the longest cache of a store; an older one forks and keeps its rows', () => {
    const prefix = AppendKv.empty(shape, 1).append(rows(1, 0, 5), 5);
    const a = prefix.append(rows(1, 5, 2, 0.5), 2); // in place
    expect(a.store).toBe(prefix.store);
    const b = prefix.append(rows(1, 5, 2, 0.25), 2); // the store has grown past prefix: a copy
    expect(b.store).not.toBe(prefix.store);
    const tagA = (s: number) => (s >= 5 ? 0.5 : 0);
    const tagB = (s: number) => (s >= 5 ? 0.25 : 0);
    for (let i = 0; i < 2 * shape.layers; i++) {
      expect(fed(prefix, i)).toEqual(expected(i, 0, 5, () => 0));
      expect(fed(a, i)).toEqual(expected(i, 0, 7, tagA));
      expect(fed(b, i)).toEqual(expected(i, 0, 7, tagB));
    }
  });

  it('selects rows for beams, repeats allowed, and the scratch feed equals a fresh one', () => {
    const kv = AppendKv.empty(shape, 3).append(rows(3, 0, 4), 4);
    const picked = kv.selectRows([2, 0, 2]);
    expect(picked.batch).toBe(3);
    for (let i = 0; i < 2 * shape.layers; i++) {
      expect(fed(picked, i, 0)).toEqual(expected(i, 2, 4, () => 0));
      expect(fed(picked, i, 1)).toEqual(expected(i, 0, 4, () => 0));
    }
  });

  it('gathers into the reused scratch the same past as into arrays of its own, one step at a time', () => {
    const scratch = new PastScratch(2 * shape.layers);
    const short = AppendKv.empty(shape, 2).append(rows(2, 0, 3), 3);
    const long = short.append(rows(2, 3, 5), 5);
    for (const kv of [long, short, long]) {
      const arrays = scratch.take(kv.pastSize)!;
      expect(scratch.take(kv.pastSize)).toBeUndefined(); // held by this step
      kv.pastTensors(Tensor, arrays).forEach((t, i) => {
        expect(t.data).toEqual(kv.pastTensors(Tensor)[i].data);
        expect((t.data as Float32Array).buffer).toBe(arrays[i].buffer);
      });
      scratch.give();
    }
  });
});
