// The installable, offline app: after one online visit the service worker is active and the app
// shell plus ONNX Runtime are precached; with the server gone, a reload is still cross-origin
// isolated and a 2-shot prompt answers (the model from IndexedDB). A new deployment waits for the
// user's go-ahead, and until then the page stays on the old version.
//
// The built app (dist/) is served here by a server this test can stop. That server sends
// COOP/COEP to documents and scripts but not to fetch() requests (Sec-Fetch-Dest: empty) — and
// the service worker's precache fetches are such requests, so the copies it stores lack the
// headers: an isolated offline reload proves the worker puts them back (src/pwa/headers.ts).
import { fileURLToPath } from 'node:url';
import { test, expect, type Page } from '@playwright/test';
import { buildPrompt, generate, normalise, readFixture, waitForModel } from './helpers';
import { CROSS_ORIGIN_ISOLATION, serveFolder, type ServeOptions } from './servers';

const DIST = fileURLToPath(new URL('../dist/', import.meta.url));

const headersForPages: ServeOptions['headers'] = (request) =>
  request.headers['sec-fetch-dest'] === 'empty' ? {} : CROSS_ORIGIN_ISOLATION;

async function serviceWorkerReady(page: Page) {
  await page.waitForFunction(() => navigator.serviceWorker.controller?.state === 'activated', undefined, { timeout: 120_000 });
}

test('after one visit the app installs, and offline it reloads cross-origin isolated and answers', async ({ browser }) => {
  const fixture = readFixture();
  const server = await serveFolder(DIST, { headers: headersForPages });
  const context = await browser.newContext({ baseURL: server.origin });
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto('/?backend=wasm');
    await waitForModel(page, 'wasm');
    await serviceWorkerReady(page);
    await expect(page.getByTestId('offline-ready')).toBeVisible();
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);

    // Installable: Chromium finds nothing missing (manifest, icons, service worker) but a window
    // that is not incognito, which every Playwright context is.
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    expect(installabilityErrors.filter((error) => error.errorId !== 'in-incognito')).toEqual([]);
    const manifest = await cdp.send('Page.getAppManifest');
    expect(manifest.errors).toEqual([]);

    // What the precache holds: ONNX Runtime's runtime files, never a model file.
    const cached = await page.evaluate(async () => {
      const urls: string[] = [];
      for (const name of await caches.keys()) {
        for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
      }
      return urls;
    });
    expect(cached.some((path) => /^\/ort\/.*\.wasm$/.test(path))).toBe(true);
    expect(cached.some((path) => /^\/ort\/.*\.mjs$/.test(path))).toBe(true);
    expect(cached.filter((path) => path.includes('/models/'))).toEqual([]);

    // Offline: the server is gone, and anything that still tries the network is aborted.
    await server.close();
    const reachedNetwork: string[] = [];
    await context.route('**/*', (route) => {
      reachedNetwork.push(route.request().url());
      return route.abort('internetdisconnected');
    });
    await page.reload();
    await waitForModel(page, 'wasm');
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
    await expect(page.getByTestId('model-ready')).toContainText('from browser storage');

    // A fresh prompt (the reload kept the old one: start again).
    const segments = page.getByTestId('segment');
    while ((await segments.count()) > 0) await page.getByRole('button', { name: 'Remove segment 1' }).click();
    await buildPrompt(page, fixture);
    expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
    expect(errors).toEqual([]);
    console.log(`requests that tried the network while offline: ${reachedNetwork.length}`, reachedNetwork);
  } finally {
    await context.close();
    await server.close().catch(() => undefined);
  }
});

test('a new deployment waits for "Update": until then the page stays on the version it started with', async ({ browser }) => {
  let version = 1;
  // Version 2 changes index.html, and sw.js with it (its precache revision for index.html).
  const server = await serveFolder(DIST, {
    headers: headersForPages,
    transform: (path, body) => {
      if (version === 1) return undefined;
      if (path === '/index.html') return Buffer.from(body.toString().replace('<head>', '<head><meta name="test-version" content="2">'));
      if (path === '/sw.js') return Buffer.from(body.toString().replace(/"revision":"[0-9a-f]+","url":"index\.html"/, '"revision":"version-2","url":"index.html"'));
      return undefined;
    },
  });
  const context = await browser.newContext({ baseURL: server.origin });
  try {
    const page = await context.newPage();
    const shownVersion = () =>
      page
        .evaluate(() => document.querySelector('meta[name="test-version"]')?.getAttribute('content') ?? '1')
        .catch(() => 'reloading'); // the context is destroyed while the page reloads
    await page.goto('/?backend=wasm');
    await serviceWorkerReady(page);
    expect(await shownVersion()).toBe('1');

    version = 2;
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())?.update());
    await expect(page.getByTestId('update-available')).toBeVisible();

    // Reloading without accepting: the old worker still serves version 1.
    await page.reload();
    expect(await shownVersion()).toBe('1');
    await expect(page.getByTestId('update-available')).toBeVisible();

    await page.getByTestId('update-now').click();
    await expect.poll(shownVersion).toBe('2');
    expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
  } finally {
    await context.close();
    await server.close();
  }
});
