/// <reference types="vitest/config" />
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

// WASM threads need SharedArrayBuffer, which needs cross-origin isolation. Every server that
// serves the app (dev, preview, the e2e server) sends these two headers.
const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

// Lets a cross-origin-isolated host page frame /embed.html (an isolated page loads a cross-origin
// iframe only when the frame's response allows it). Same values as src/pwa/headers.ts, which the
// service worker puts on what it serves.
const embeddable = { 'Cross-Origin-Resource-Policy': 'cross-origin' };
const servedHeaders = { ...crossOriginIsolation, ...embeddable };

// URL folder, under the app's base, that holds ONNX Runtime's wasm runtime (src/worker/ort.ts
// points `ort.env.wasm.wasmPaths` there).
const ORT_RUNTIME_DIR = 'ort';

// Each ORT build (src/worker/ort.ts) loads one JS glue module plus its wasm:
// `onnxruntime-web/webgpu` the asyncify build (WebGPU and WASM EPs), `onnxruntime-web/wasm` the
// plain one (WASM EP only). The worker imports one of them, per backend.
const ORT_RUNTIME_FILES = [
  'ort-wasm-simd-threaded.asyncify.mjs',
  'ort-wasm-simd-threaded.asyncify.wasm',
  'ort-wasm-simd-threaded.mjs',
  'ort-wasm-simd-threaded.wasm',
];

const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm'));

/**
 * Serves ONNX Runtime's runtime files from the app's own origin (dev) and emits them into the
 * build, so nothing is fetched from a CDN. The worker points `ort.env.wasm.wasmPaths` here.
 */
function ortRuntimeFiles(): Plugin {
  let base = '/';
  return {
    name: 'flamingo-web:ort-runtime-files',
    configResolved(config) {
      base = config.base;
    },
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? '').split('?')[0];
        const prefix = `${base}${ORT_RUNTIME_DIR}/`;
        if (!path.startsWith(prefix)) return next();
        const name = path.slice(prefix.length);
        if (!ORT_RUNTIME_FILES.includes(name)) return next();
        const file = join(ortDist, name);
        res.setHeader('Content-Type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        res.setHeader('Content-Length', String(statSync(file).size));
        for (const [header, value] of Object.entries(crossOriginIsolation)) res.setHeader(header, value);
        createReadStream(file).pipe(res);
      });
    },
    generateBundle() {
      for (const name of ORT_RUNTIME_FILES) {
        this.emitFile({ type: 'asset', fileName: `${ORT_RUNTIME_DIR}/${name}`, source: readFileSync(join(ortDist, name)) });
      }
    },
  };
}

// The bundled model's folder (under public/, served as is) and the module that carries its
// manifest into the app bundle, so that a warm visit needs no request for manifest.json.
const BUNDLED_MODEL_DIR = 'public/models/emojiworld';
const BUNDLED_MANIFEST_ID = 'virtual:flamingo-web/bundled-manifest';

/** `import manifest from 'virtual:flamingo-web/bundled-manifest'`: the JSON, read at build time. */
function bundledManifest(): Plugin {
  const resolvedId = `\0${BUNDLED_MANIFEST_ID}`;
  return {
    name: 'flamingo-web:bundled-manifest',
    resolveId: (id) => (id === BUNDLED_MANIFEST_ID ? resolvedId : undefined),
    load(id) {
      if (id !== resolvedId) return undefined;
      const file = fileURLToPath(new URL(`${BUNDLED_MODEL_DIR}/manifest.json`, import.meta.url));
      this.addWatchFile(file);
      return `export default ${JSON.stringify(JSON.parse(readFileSync(file, 'utf8')))};`;
    },
  };
}

/**
 * The offline app (src/sw.ts, injectManifest): the precache holds the app shell and whatever is
 * emitted under ORT_RUNTIME_DIR — derived from that folder, checked against ORT_RUNTIME_FILES —
 * and never a model file (weights live in IndexedDB).
 */
function offlineApp() {
  return VitePWA({
    strategies: 'injectManifest',
    srcDir: 'src',
    filename: 'sw.ts',
    registerType: 'prompt',
    injectRegister: false, // src/pwa/register.ts registers it, for the studio and the embed
    includeManifestIcons: false, // the glob below has them already
    manifest: {
      name: 'flamingo-web',
      short_name: 'flamingo-web',
      description: 'A few-shot visual language model that runs in your browser, offline too.',
      start_url: '.',
      scope: '.',
      display: 'standalone',
      background_color: '#ffffff',
      theme_color: '#1b1b2f',
      icons: [
        { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png' },
        { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png' },
        { src: 'icons/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
      ],
    },
    injectManifest: {
      globPatterns: ['**/*.{js,css,html,png,svg,ico,json,webmanifest}', `${ORT_RUNTIME_DIR}/**/*.{mjs,wasm}`],
      // Weights stay out (IndexedDB has them); the allow-list is read fresh (src/sw.ts).
      globIgnores: ['models/**', 'embed-config.json'],
      // ONNX Runtime's wasm is ~27 MB; workbox skips anything over 2 MiB by default.
      maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
      manifestTransforms: [
        (entries) => {
          const urls = entries.map((entry) => entry.url);
          const missing = ORT_RUNTIME_FILES.filter((name) => !urls.includes(`${ORT_RUNTIME_DIR}/${name}`));
          if (missing.length > 0) throw new Error(`The precache lacks ONNX Runtime's ${missing.join(', ')}`);
          const weights = urls.filter((url) => url.endsWith('.onnx'));
          if (weights.length > 0) throw new Error(`Model files must not be precached: ${weights.join(', ')}`);
          return { manifest: entries, warnings: [] };
        },
      ],
    },
  });
}

// The built pages' Content-Security-Policy, as a <meta> so that it travels with the files to any
// host and through the service worker. No inline script and no eval: 'wasm-unsafe-eval' only lets
// ONNX Runtime compile its WebAssembly. connect-src is the site itself (plus data:/blob: URLs the
// page makes); a deployer who serves models from another origin adds it here. frame-ancestors
// works only as an HTTP header (README, "Embedding"). Not in dev: Vite's dev server injects inline scripts.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self' data: blob:",
  "img-src 'self' data: blob:",
  "media-src 'self' blob:",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join('; ');

function contentSecurityPolicy(): Plugin {
  return {
    name: 'flamingo-web:content-security-policy',
    apply: 'build',
    transformIndexHtml: (html) =>
      html.replace('<head>', `<head>\n    <meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}" />`),
  };
}

// `vite build --mode bench` (npm run bench) builds the app plus the bench pages of bench/pages/
// into dist-bench/; the app's own build never contains them.
const BENCH_PAGES = {
  app: 'index.html',
  flamingo: 'bench/pages/flamingo.html',
  transformers: 'bench/pages/transformers.html',
};

export default defineConfig(({ mode }) => ({
  // the bench build has no CSP: its pages are dev tools, not the shipped app
  plugins: [react(), ortRuntimeFiles(), bundledManifest(), offlineApp(), ...(mode === 'bench' ? [] : [contentSecurityPolicy()])],
  resolve: {
    // The non-bundled entries: they do not inline a second copy of the runtime's JS glue, which
    // is loaded from ORT_RUNTIME_DIR instead.
    alias: {
      'onnxruntime-web/webgpu': join(ortDist, 'ort.webgpu.min.mjs'),
      'onnxruntime-web/wasm': join(ortDist, 'ort.wasm.min.mjs'),
    },
  },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  // The worker bundle has its own plugin list: it imports the bundled manifest too.
  worker: { format: 'es', plugins: () => [bundledManifest()] },
  server: { headers: servedHeaders },
  preview: { headers: servedHeaders },
  // Unit tests (vitest) only: e2e/ is Playwright's, models/ is Python's.
  // Generous: the CLI tests start real processes, and CI machines have two cores.
  test: { exclude: ['**/node_modules/**', 'dist/**', 'e2e/**', 'models/**'], testTimeout: 60_000 },
  build: {
    target: 'es2022',
    // Two pages: the studio and the embed (src/embed/).
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL('index.html', import.meta.url)),
        embed: fileURLToPath(new URL('embed.html', import.meta.url)),
      },
    },
    // The runtime wasm (~27 MB) is emitted as is, never inlined.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
    ...(mode === 'bench' ? { outDir: 'dist-bench', rollupOptions: { input: BENCH_PAGES } } : {}),
  },
}));
