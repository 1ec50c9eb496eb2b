// Serves the example host page (index.html here) on its own origin, so that it frames flamingo-web
// cross-origin: `node examples/embed-host/serve.mjs [--port 5174] [--isolated]`. --isolated sends
// COOP/COEP, which (with allow="cross-origin-isolated" on the iframe) gives the embed WASM threads.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const port = Number(args[args.indexOf('--port') + 1] || 5174);
const isolated = args.includes('--isolated');
const page = readFileSync(new URL('./index.html', import.meta.url));

createServer((request, response) => {
  if (new URL(request.url ?? '/', 'http://host').pathname !== '/') {
    response.writeHead(404).end();
    return;
  }
  response.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    ...(isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}),
  });
  response.end(page);
}).listen(port, () => console.log(`example host page: http://localhost:${port}/${isolated ? ' (cross-origin isolated)' : ''}`));
