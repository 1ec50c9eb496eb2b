// Loading the model in the worker: progress per file, the backend it ended on, warnings.
import { useCallback, useEffect, useRef, useState } from 'react';
import type { ProgressEvent } from '../engine/types';
import type { BackendChoice, FlamingoClient, LoadResult, WarningEvent } from '../worker/client';

/** A User Timing mark set each time a load completes; its detail is the worker's LoadTimings. */
export const MODEL_READY_MARK = 'flamingo-web:model-ready';

export type ModelState =
  | { status: 'loading'; files: ReadonlyMap<string, ProgressEvent>; warnings: WarningEvent[] }
  | { status: 'ready'; result: LoadResult; warnings: WarningEvent[] }
  | { status: 'error'; message: string; warnings: WarningEvent[] };

/** The model's state, and `retry` (after an error: a failed download, a worker that died). */
export function useModel(
  client: FlamingoClient,
  modelUrl: string,
  backend: BackendChoice,
  variant = 'auto',
): { model: ModelState; retry: () => void } {
  const [state, setState] = useState<ModelState>({ status: 'loading', files: new Map(), warnings: [] });
  const [attempt, setAttempt] = useState(0);
  const latest = useRef<{ key: string; id: number }>({ key: '', id: 0 });

  useEffect(() => {
    const key = `${attempt} ${backend} ${variant} ${modelUrl}`;
    // Effects may run twice for the same inputs (StrictMode): one load per change, not per run.
    if (latest.current.key === key) return;
    const id = latest.current.id + 1;
    latest.current = { key, id };
    let settled = false;
    const current = () => latest.current.id === id && !settled;

    const warnings: WarningEvent[] = [];
    const files = new Map<string, ProgressEvent>();
    setState({ status: 'loading', files: new Map(), warnings: [] });
    client
      .load(modelUrl, { backend, variant }, (event) => {
        if (!current()) return;
        if (event.type === 'warning') {
          warnings.push(event);
          console.warn(event.message, event.cause ?? '');
        } else {
          // The engine's session events may name a model file too: keep them apart from its bytes.
          const stage = event.phase === 'session' || event.phase === 'ready' ? `${event.phase}:` : '';
          files.set(`${stage}${event.file}`, event);
        }
        setState({ status: 'loading', files: new Map(files), warnings: [...warnings] });
      })
      .finally(() => {
        settled = true; // progress that arrives after the end must not reopen the bar
      })
      .then(
        (result) => {
          if (latest.current.id !== id) return;
          // Read by `npm run bench` (bench/browser.ts): navigation start → model ready.
          performance.mark(MODEL_READY_MARK, { detail: result.timings });
          // Persistent storage is asked for from the model manager, when the visitor chooses to.
          setState({ status: 'ready', result, warnings: result.warnings });
        },
        (error: unknown) => {
          if (latest.current.id !== id) return;
          console.error(error, (error as Error).cause ?? '');
          setState({ status: 'error', message: (error as Error).message ?? String(error), warnings: [...warnings] });
        },
      );
  }, [client, modelUrl, backend, variant, attempt]);

  useEffect(
    () =>
      client.onCrash((message) => {
        // The client has started a fresh worker: load the model into it (from IndexedDB).
        console.warn(message);
        setAttempt((n) => n + 1);
      }),
    [client],
  );

  useEffect(
    () =>
      client.onWarning((warning) => {
        // Said once (the list is keyed by message); `webgpu-lost`: the worker moved the model to
        // WASM, so the backend shown changes too.
        console.warn(warning.message, warning.cause ?? '');
        setState((current) => {
          if (current.status !== 'ready' || current.warnings.some((w) => w.message === warning.message)) return current;
          const result = warning.code === 'webgpu-lost' ? { ...current.result, backend: 'wasm' as const, fallbackReason: warning.message } : current.result;
          return { status: 'ready', result, warnings: [...current.warnings, warning] };
        });
      }),
    [client],
  );

  const retry = useCallback(() => setAttempt((n) => n + 1), []);
  return { model: state, retry };
}

/** Totals over the files seen so far (all start at once: downloads run in parallel). */
export function loadingSummary(files: ReadonlyMap<string, ProgressEvent>) {
  let loadedBytes = 0;
  let totalBytes = 0;
  let phase: ProgressEvent['phase'] = 'manifest';
  const order: ProgressEvent['phase'][] = ['manifest', 'download', 'verify', 'cache', 'session', 'ready'];
  let downloading = false;
  for (const event of files.values()) {
    if (event.phase === 'session' || event.phase === 'ready') {
      if (order.indexOf(event.phase) > order.indexOf(phase)) phase = event.phase;
      continue;
    }
    totalBytes += event.totalBytes;
    // A file past its download (verify, cache) counts as fully loaded.
    loadedBytes += event.phase === 'download' ? event.loadedBytes : event.totalBytes;
    if (event.phase === 'download' && event.loadedBytes < event.totalBytes) downloading = true;
    if (phase !== 'session' && phase !== 'ready' && order.indexOf(event.phase) > order.indexOf(phase)) phase = event.phase;
  }
  if (downloading) phase = 'download';
  return { loadedBytes, totalBytes, phase };
}
