/// <reference lib="webworker" />
// The service worker (vite-plugin-pwa, injectManifest: vite.config.ts). It precaches the app shell
// and ONNX Runtime's runtime files — never the model weights, which live in IndexedDB — and serves
// pages and worker scripts with the cross-origin isolation headers put back, everything else
// straight from Cache Storage, so that V8's code caches keep working (src/pwa/headers.ts).
//
// Versions never mix: a new deployment installs a new worker that waits (registerType "prompt");
// until the user accepts the update, the old worker keeps serving the old version's files from its
// own precache entries (keyed by revision), and when it takes over every open page reloads
// (src/pwa/register.ts).
import { cleanupOutdatedCaches, getCacheKeyForURL, matchPrecache, precache, type PrecacheEntry } from 'workbox-precaching';
import { EMBED_CONFIG_PATH } from './embed/allowList';
import { servableAsStored, withServedHeaders } from './pwa/headers';

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: (PrecacheEntry | string)[] };

precache(self.__WB_MANIFEST);
cleanupOutdatedCaches();

/** The last embed-config.json seen online, for an offline embed. */
const CONFIG_CACHE = 'flamingo-web-embed-config';

self.addEventListener('message', (event) => {
  // Sent by workbox-window's messageSkipWaiting() when the user accepts the update.
  if ((event.data as { type?: unknown } | null)?.type === 'SKIP_WAITING') void self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  // The first visit's page is controlled at once (it is the same version as the precache).
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === new URL(EMBED_CONFIG_PATH, self.registration.scope).pathname) {
    event.respondWith(networkFirst(request));
    return;
  }
  const precached = precachedUrl(url, request.mode === 'navigate');
  if (!precached) return; // model files and anything else: the network, untouched
  event.respondWith(fromPrecache(precached, request));
});

/** The precached URL that answers `url`, if any. Pages ignore their query (`?backend=wasm`). */
function precachedUrl(url: URL, navigation: boolean): string | undefined {
  const candidate = new URL(url.href);
  candidate.hash = '';
  if (navigation) {
    candidate.search = '';
    if (candidate.pathname.endsWith('/')) candidate.pathname += 'index.html';
  }
  return getCacheKeyForURL(candidate.href) ? candidate.href : undefined;
}

async function fromPrecache(url: string, request: Request): Promise<Response> {
  const path = new URL(url).pathname;
  const cached = await matchPrecache(url);
  if (cached && servableAsStored(request, cached, path)) return cached;
  // A precache entry can vanish (the browser evicted the cache): then the network answers.
  return withServedHeaders(cached ?? (await fetch(request)), path);
}

/** The deployer's allow-list is read fresh whenever the network answers; offline, the last copy. */
async function networkFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CONFIG_CACHE);
  try {
    const response = await fetch(request, { cache: 'no-store' });
    if (response.ok) await cache.put(request.url, response.clone());
    return withServedHeaders(response, new URL(request.url).pathname);
  } catch (cause) {
    const cached = await cache.match(request.url);
    if (!cached) throw cause;
    return withServedHeaders(cached, new URL(request.url).pathname);
  }
}
