// One model file over the network, into one buffer of the manifest's size (no second copy), with
// progress. A download that breaks off (network error, HTTP 5xx / 408 / 429, a body cut short or
// one that ends before the manifest's size) is
// tried again after a backoff, resuming from the bytes already fetched with an HTTP Range request
// when the server answers 206 (from the start when it answers 200). A 404 or a file of the wrong
// size is not retried: it will not get better. The caller verifies the sha256. `onBytes` also
// gets the buffer, so that the caller can store each part of it as soon as it is complete.
import { FlamingoError, type ManifestFile } from '../engine/types';

/** Waits before each retry, in ms: three tries after the first. */
const BACKOFF_MS = [500, 1500, 4000];
export const DOWNLOAD_RETRIES = BACKOFF_MS.length;

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Before each retry: which one (1-based), how many bytes are kept, why. */
  onRetry?: (attempt: number, loadedBytes: number, cause: unknown) => void;
  /** The backoff (tests shorten it). */
  backoffMs?: readonly number[];
}

/** A failure worth another try. */
class Transient extends Error {}

export async function download(
  url: URL,
  file: ManifestFile,
  onBytes: (loadedBytes: number, bytes: Uint8Array) => void,
  options: DownloadOptions = {},
): Promise<Uint8Array> {
  const backoff = options.backoffMs ?? BACKOFF_MS;
  const bytes = new Uint8Array(file.bytes);
  const state = { loaded: 0 };
  onBytes(0, bytes);
  for (let attempt = 0; ; attempt++) {
    try {
      await fetchInto(url, file, bytes, state, onBytes, options.signal);
      return bytes;
    } catch (error) {
      if (!(error instanceof Transient) || attempt >= backoff.length || options.signal?.aborted) {
        throw error instanceof Transient ? new FlamingoError(error.message, { cause: error.cause }) : error;
      }
      options.onRetry?.(attempt + 1, state.loaded, error.cause ?? error);
      await sleep(backoff[attempt], options.signal);
    }
  }
}

async function fetchInto(
  url: URL,
  file: ManifestFile,
  bytes: Uint8Array,
  state: { loaded: number },
  onBytes: (loadedBytes: number, bytes: Uint8Array) => void,
  signal?: AbortSignal,
): Promise<void> {
  const name = file.path;
  const resumeFrom = state.loaded;
  let response: Response;
  try {
    // 'no-cache' revalidates: a stale HTTP-cached copy of a replaced file must not be used.
    const headers: HeadersInit = resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {};
    response = await fetch(url, { cache: 'no-cache', signal, headers });
  } catch (cause) {
    if (signal?.aborted) throw new FlamingoError(`The download of ${name} was cancelled.`, { cause });
    throw new Transient(`Could not download model file ${name} from ${url.href} (the network failed).`, { cause });
  }
  if (response.status === 416) {
    // the bytes kept reach past the end of the file the server has now
    throw new FlamingoError(`Model file ${name} on the server is smaller than the ${file.bytes} bytes the manifest says: the file was changed.`);
  }
  if (!response.ok) {
    const message = `Could not download model file ${name}: HTTP ${response.status} from ${url.href}.`;
    if (response.status >= 500 || response.status === 408 || response.status === 429) throw new Transient(message);
    throw new FlamingoError(message);
  }
  // 206: the rest of the file; anything else: the whole file again
  state.loaded = response.status === 206 ? resumeFrom : 0;
  if (!response.body) {
    const whole = new Uint8Array(await response.arrayBuffer());
    if (state.loaded + whole.byteLength > file.bytes) throw tooLarge(file);
    bytes.set(whole, state.loaded);
    state.loaded += whole.byteLength;
    onBytes(state.loaded, bytes);
    if (state.loaded < file.bytes) throw new Transient(`The download of model file ${name} broke off after ${state.loaded} of ${file.bytes} bytes.`);
    return;
  }
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (state.loaded + value.byteLength > file.bytes) throw tooLarge(file);
      bytes.set(value, state.loaded);
      state.loaded += value.byteLength;
      onBytes(state.loaded, bytes);
    }
  } catch (cause) {
    if (cause instanceof FlamingoError) throw cause;
    if (signal?.aborted) throw new FlamingoError(`The download of ${name} was cancelled.`, { cause });
    throw new Transient(`The download of model file ${name} broke off after ${state.loaded} of ${file.bytes} bytes.`, { cause });
  } finally {
    reader.releaseLock();
  }
  // A body that ends early without an error (a proxy that closes a chunked response, a server
  // restarted mid-file) broke off all the same: resume it.
  if (state.loaded < file.bytes) {
    throw new Transient(`The download of model file ${name} broke off after ${state.loaded} of ${file.bytes} bytes.`);
  }
}

function tooLarge(file: ManifestFile): FlamingoError {
  return new FlamingoError(`Model file ${file.path} is larger than the ${file.bytes} bytes the manifest says: the file was changed.`);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
