// A `vite preview` server for the bench: serves a built folder with the app's COOP/COEP headers
// (vite.config.ts), on its own port so that it never meets a developer's or the e2e server.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// vite's own script, run by this Node (not through npx, so that kill() reaches the server).
const viteBin = join(dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');

export interface PreviewServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Resolves once this server (not another process on the same port: --strictPort makes vite exit
 * then) prints its address.
 */
export async function startPreview(outDir: string, port: number): Promise<PreviewServer> {
  const child = spawn(
    process.execPath,
    [viteBin, 'preview', '--outDir', outDir, '--host', '127.0.0.1', '--port', String(port), '--strictPort'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const close = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill();
    });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      void close();
      reject(new Error(`vite preview did not start on ${url} within 60 s: ${output.trim()}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`127.0.0.1:${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vite preview exited (${code}) before serving ${url}: ${output.trim()}`));
    });
  });
  child.stdout.removeAllListeners('data');
  child.stdout.resume(); // keep draining, so the server never blocks on a full pipe
  child.stderr.removeAllListeners('data');
  child.stderr.resume();
  return { url, close };
}
