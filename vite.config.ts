import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
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

// `onnxruntime-web/webgpu` (1.30) loads the asyncify build: one JS glue module plus its wasm.
// It covers both the WebGPU and the WASM (CPU) execution providers.
const ORT_RUNTIME_FILES = [
  'ort-wasm-simd-threaded.asyncify.mjs',
  'ort-wasm-simd-threaded.asyncify.wasm',
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

export default defineConfig({
  plugins: [react(), ortRuntimeFiles()],
  resolve: {
    // The non-bundled entry: it does not inline a second copy of the runtime's JS glue, which is
    // loaded from ORT_RUNTIME_DIR instead.
    alias: { 'onnxruntime-web/webgpu': join(ortDist, 'ort.webgpu.min.mjs') },
  },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  worker: { format: 'es' },
  server: { headers: crossOriginIsolation },
  preview: { headers: crossOriginIsolation },
  build: {
    target: 'es2022',
    // The runtime wasm (~27 MB) is emitted as is, never inlined.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
  },
});
