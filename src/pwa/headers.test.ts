import { describe, expect, it } from 'vitest';
import { SERVED_HEADERS, servableAsStored, withServedHeaders } from './headers';

/** Request's `destination` and `mode` cannot be set from the constructor: a stand-in with them. */
const request = (destination: string, mode: RequestMode = 'cors') => ({ destination, mode }) as Request;
const stored = (type: string) => new Response('x', { headers: { 'Content-Type': type } });

describe('servableAsStored: what the service worker answers straight from Cache Storage', () => {
  it('rebuilds what starts a context: pages, frames and workers need COOP/COEP', () => {
    expect(servableAsStored(request('document', 'navigate'), stored('text/html'), '/index.html')).toBe(false);
    expect(servableAsStored(request('iframe', 'navigate'), stored('text/html'), '/embed.html')).toBe(false);
    expect(servableAsStored(request('worker'), stored('text/javascript'), '/assets/worker-abc.js')).toBe(false);
  });

  it('passes subresources through untouched, so that V8 can cache their compiled code', () => {
    expect(servableAsStored(request(''), stored('application/wasm'), '/ort/ort-wasm-simd-threaded.wasm')).toBe(true);
    expect(servableAsStored(request('script'), stored('text/javascript'), '/ort/ort-wasm-simd-threaded.mjs')).toBe(true);
    expect(servableAsStored(request('style'), stored('text/css'), '/assets/main.css')).toBe(true);
  });

  it('rebuilds a wasm stored with another type: streaming compilation needs application/wasm', () => {
    expect(servableAsStored(request(''), stored('application/octet-stream'), '/ort/ort-wasm-simd-threaded.wasm')).toBe(false);
    const fixed = withServedHeaders(stored('application/octet-stream'), '/ort/ort-wasm-simd-threaded.wasm');
    expect(fixed.headers.get('Content-Type')).toBe('application/wasm');
    for (const [name, value] of Object.entries(SERVED_HEADERS)) expect(fixed.headers.get(name)).toBe(value);
  });
});
