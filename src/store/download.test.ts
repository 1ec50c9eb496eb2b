import { afterEach, describe, expect, it, vi } from 'vitest';
import { download } from './download';

const FILE = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
const entry = { path: 'lm.onnx', bytes: FILE.length, sha256: '0'.repeat(64) };
const url = new URL('http://test.invalid/lm.onnx');

/** A body that delivers `bytes`, then fails (a connection that drops) when `breakAfter` is set. */
function body(bytes: Uint8Array, breakAfter?: number): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(breakAfter === undefined ? bytes : bytes.subarray(0, breakAfter));
      } else if (breakAfter === undefined) controller.close();
      else controller.error(new TypeError('network error')); // after the first chunk was read
    },
  });
}

afterEach(() => vi.unstubAllGlobals());

describe('model file downloads', () => {
  it('retries a 500 and a dropped connection, resuming with a Range request', async () => {
    const ranges: (string | null)[] = [];
    const responses = [
      () => new Response('busy', { status: 500 }),
      () => new Response(body(FILE, 400), { status: 200 }),
      (range: string | null) => {
        const from = Number(/bytes=(\d+)-/.exec(range ?? '')?.[1]);
        return new Response(body(FILE.subarray(from)), { status: 206 });
      },
    ];
    vi.stubGlobal('fetch', async (_: URL, init: RequestInit) => {
      const range = new Headers(init.headers).get('Range');
      ranges.push(range);
      return responses.shift()!(range);
    });
    const retries: [number, number][] = [];
    const got = await download(url, entry, () => undefined, { backoffMs: [0, 0, 0], onRetry: (n, kept) => retries.push([n, kept]) });
    expect(got).toEqual(FILE);
    expect(ranges).toEqual([null, null, 'bytes=400-']);
    expect(retries).toEqual([[1, 0], [2, 400]]);
  });

  it('starts over when the server ignores the Range request (200)', async () => {
    const responses = [() => new Response(body(FILE, 300), { status: 200 }), () => new Response(body(FILE), { status: 200 })];
    vi.stubGlobal('fetch', async () => responses.shift()!());
    expect(await download(url, entry, () => undefined, { backoffMs: [0] })).toEqual(FILE);
  });

  it('resumes a body that ends early without an error; a file now shorter than the manifest says is named', async () => {
    const ranges: (string | null)[] = [];
    const responses = [
      () => new Response(FILE.subarray(0, 600), { status: 200 }), // ends cleanly, 400 bytes short
      () => new Response(body(FILE.subarray(600)), { status: 206 }),
    ];
    vi.stubGlobal('fetch', async (_: URL, init: RequestInit) => {
      ranges.push(new Headers(init.headers).get('Range'));
      return responses.shift()!();
    });
    expect(await download(url, entry, () => undefined, { backoffMs: [0, 0] })).toEqual(FILE);
    expect(ranges).toEqual([null, 'bytes=600-']);

    const shorter = [() => new Response(FILE.subarray(0, 600), { status: 200 }), () => new Response('', { status: 416 })];
    vi.stubGlobal('fetch', async () => shorter.shift()!());
    await expect(download(url, entry, () => undefined, { backoffMs: [0, 0] })).rejects.toThrow(
      'lm.onnx on the server is smaller than the 1000 bytes the manifest says',
    );
  });

  it('does not retry a 404, and gives up after the last retry with the reason', async () => {
    let calls = 0;
    vi.stubGlobal('fetch', async () => {
      calls++;
      return new Response('no', { status: 404 });
    });
    await expect(download(url, entry, () => undefined, { backoffMs: [0, 0] })).rejects.toThrow('HTTP 404');
    expect(calls).toBe(1);
    calls = 0;
    vi.stubGlobal('fetch', async () => {
      calls++;
      throw new TypeError('offline');
    });
    await expect(download(url, entry, () => undefined, { backoffMs: [0, 0] })).rejects.toThrow('the network failed');
    expect(calls).toBe(3);
  });
});
