// Integrity of model files: every file a manifest names must match its byte size and sha256
// before anything runs it. Shared by the browser's model store and the CLI (Node 20 has the same
// WebCrypto as the browser on `globalThis.crypto`).
import { FlamingoError, type ManifestFile } from '../engine/types';

/** Lower-case hex sha256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // digest() takes a BufferSource backed by an ArrayBuffer; a view on a SharedArrayBuffer or a
  // resizable buffer is copied first.
  const source = bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', source));
  let hex = '';
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/** Throws a FlamingoError naming `name` when `bytes` is not the file the manifest describes. */
export async function verifyFile(bytes: Uint8Array, expected: ManifestFile, name: string): Promise<void> {
  if (bytes.byteLength !== expected.bytes) {
    throw new FlamingoError(
      `Model file ${name} is ${bytes.byteLength} bytes, but the manifest says ${expected.bytes}: the download is incomplete or the file was changed.`,
    );
  }
  const actual = await sha256Hex(bytes);
  if (actual !== expected.sha256.toLowerCase()) {
    throw new FlamingoError(
      `Model file ${name} failed its integrity check (sha256 ${actual}, expected ${expected.sha256}): the download is corrupt or the file was changed.`,
    );
  }
}
