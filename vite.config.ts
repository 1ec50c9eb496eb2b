/// <reference types="vitest/config" />
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

// WASM threads need SharedArrayBuffer, which needs cross-origin isolation. Every server that
// serves the app (dev, preview, the e2e server) sends these two headers.
const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

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

// `vite build --mode bench` (npm run bench) builds the app plus the bench pages of bench/pages/
// into dist-bench/; the app's own build never contains them.
const BENCH_PAGES = {
  app: 'index.html',
  flamingo: 'bench/pages/flamingo.html',
  transformers: 'bench/pages/transformers.html',
};

export default defineConfig(({ mode }) => ({
  plugins: [react(), ortRuntimeFiles(), bundledManifest()],
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
  server: { headers: crossOriginIsolation },
  preview: { headers: crossOriginIsolation },
  // Unit tests (vitest) only: e2e/ is Playwright's, models/ is Python's.
  test: { exclude: ['**/node_modules/**', 'dist/**', 'e2e/**', 'models/**'] },
  build: {
    target: 'es2022',
    // The runtime wasm files (14 and 27 MB) are emitted as they are, never inlined.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
    ...(mode === 'bench' ? { outDir: 'dist-bench', rollupOptions: { input: BENCH_PAGES } } : {}),
  },
}));
