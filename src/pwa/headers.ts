// The headers every document and worker script served by the service worker carries (src/sw.ts).
// A cached response keeps only the headers it was stored with, and a precache fetch may have been
// answered without them; a document or worker script served offline without COOP/COEP would no
// longer be cross-origin isolated (no SharedArrayBuffer: WASM on one thread, PEERS.md "Offline and
// embedding"). CORP: cross-origin lets a cross-origin-isolated host page frame /embed.html.
export const SERVED_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

/** Request destinations whose response headers set the policy of a new context: pages, frames, workers. */
const CONTEXT_DESTINATIONS: ReadonlySet<string> = new Set(['document', 'iframe', 'frame', 'worker', 'sharedworker']);

/**
 * Whether the precached `stored` response can answer `request` untouched. Only a response straight
 * from Cache Storage lets Chromium keep V8's compiled code beside it (the wasm code cache and the
 * JS code cache), while a response the service worker builds (`withServedHeaders`) is synthetic
 * and never cached: ONNX Runtime's 14 MB wasm would be compiled afresh on every visit. So only
 * the responses that need other headers are rebuilt: those that start a context (COOP/COEP make
 * it cross-origin isolated), and a wasm stored with the wrong type (streaming compilation needs
 * exactly `application/wasm`). A subresource's COOP/COEP/CORP do nothing here: it is same-origin
 * to the page or worker that loads it.
 */
export function servableAsStored(request: Request, stored: Response, path: string): boolean {
  if (request.mode === 'navigate' || CONTEXT_DESTINATIONS.has(request.destination)) return false;
  return !path.endsWith('.wasm') || stored.headers.get('Content-Type')?.toLowerCase() === 'application/wasm';
}

/** `response` with SERVED_HEADERS set (and wasm typed so that streaming compilation works). */
export function withServedHeaders(response: Response, path: string): Response {
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(SERVED_HEADERS)) headers.set(name, value);
  if (path.endsWith('.wasm')) headers.set('Content-Type', 'application/wasm');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
