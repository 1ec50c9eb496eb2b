// The headers every response served by the service worker carries (src/sw.ts). A cached
// response keeps only the headers it was stored with, and a precache fetch may have been answered
// without them; a document or worker script served offline without COOP/COEP would no longer be
// cross-origin isolated (no SharedArrayBuffer: WASM on one thread, PEERS.md "Offline and
// embedding"). CORP: cross-origin lets a cross-origin-isolated host page frame /embed.html.
export const SERVED_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

/** `response` with SERVED_HEADERS set (and wasm typed so that streaming compilation works). */
export function withServedHeaders(response: Response, path: string): Response {
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(SERVED_HEADERS)) headers.set(name, value);
  if (path.endsWith('.wasm')) headers.set('Content-Type', 'application/wasm');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
