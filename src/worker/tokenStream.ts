// Token events from the worker to the page, at most about one a frame. Each event is a comlink
// callback: a postMessage to the page and a reply back, both handled on the worker's thread
// between decode steps. At ~1,000 tokens/s that was about a tenth of the worker's time in a CPU
// profile (docs/BENCHMARKS.md, "Session 9"), and the page's thread handling them competed for the
// same two cores. A token that comes within `intervalMs` of the last event sent is held and goes
// with the next one; the first token goes at once (time to first token), and every other event
// (done, error) sends the held text first, so nothing is lost and the order is kept.
import type { EngineEvent } from '../engine/types';

/** One frame at 60 Hz: the page cannot show tokens any faster. */
export const TOKEN_INTERVAL_MS = 16;

export interface TokenStream {
  push(event: EngineEvent): void;
  /** Sends the held text now (a generation that ends without a done event: an error). */
  flush(): void;
}

export function tokenStream(send: (event: EngineEvent) => void, intervalMs = TOKEN_INTERVAL_MS, now = () => performance.now()): TokenStream {
  let held = '';
  let lastSent = -Infinity;
  let timerSet = false;
  // the timer is not cleared when the text goes earlier (clearTimeout per event showed in the
  // profile): it fires once and finds nothing held
  const flush = () => {
    if (!held) return;
    const text = held;
    held = '';
    lastSent = now();
    send({ type: 'token', text });
  };
  return {
    push(event) {
      if (event.type !== 'token') {
        flush();
        send(event);
        return;
      }
      held += event.text;
      const since = now() - lastSent;
      if (since >= intervalMs) flush();
      // a slow step after this one must not hold the text: the worker's decode loop yields a task
      // every few ms (ort.ts), where this timer can fire
      else if (!timerSet) {
        timerSet = true;
        setTimeout(() => {
          timerSet = false;
          flush();
        }, intervalMs - since);
      }
    },
    flush,
  };
}
