// Static file servers that a test starts and stops itself: a second origin for the embed's host
// page, and the built app on a server that can be shut down (to be really offline: Playwright's
// context.setOffline does not stop a service worker's own fetches, playwright #2311).
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

export const CROSS_ORIGIN_ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export interface StaticServer {
  /** e.g. http://127.0.0.1:40123 */
  origin: string;
  port: number;
  close(): Promise<void>;
}

export interface ServeOptions {
  /** Extra headers for one request. */
  headers?: (request: IncomingMessage, path: string) => Record<string, string>;
  /** Replaces a file's bytes for one request (a "new deployment"). */
  transform?: (path: string, body: Buffer) => Buffer | undefined;
}

/** Serves `root` on 127.0.0.1 at a free port; `/` is index.html. */
export async function serveFolder(root: string, options: ServeOptions = {}): Promise<StaticServer> {
  const server = createServer((request, response) => {
    let path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
    if (path.endsWith('/')) path += 'index.html';
    const file = join(root, normalize(path).replace(/^(\.\.[/\\])+/, ''));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      response.writeHead(404).end();
      return;
    }
    const headers = { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-cache', ...options.headers?.(request, path) };
    const changed = options.transform?.(path, readFileSync(file));
    if (changed) {
      response.writeHead(200, { ...headers, 'Content-Length': String(changed.length) }).end(changed);
      return;
    }
    response.writeHead(200, { ...headers, 'Content-Length': String(statSync(file).size) });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
