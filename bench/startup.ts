// Start-up of the built app in Chromium: navigation start → the model ready (the page's
// MODEL_READY_MARK), on a cold visit (a fresh browser profile: empty IndexedDB, HTTP cache, Cache
// Storage and wasm code cache, so every model file is downloaded from localhost) and on warm visits
// (the same URL again in the same profile: model files from IndexedDB, the app and runtime from the service
// worker's precache). The mark's detail is the worker's LoadTimings.
//
// Each visit stays `dwellMs` on the page after it is ready, as a visitor would: V8 writes a wasm
// module's compiled code to its cache only once its optimised code has stopped growing for a while
// (--wasm-caching-timeout-ms, 2 s), so a reload right at the ready mark would never find it
// (docs/BENCHMARKS.md, "Start-up on WASM"). Then the page goes to about:blank, so that nothing of it
// (V8 optimising in the background) runs on into the next measurement; a warm visit navigates back.
import type { Browser, BrowserContext, Page } from '@playwright/test';
import { MODEL_READY_MARK } from '../src/ui/useModel';
import type { LoadTimings } from '../src/worker/api';

export interface StartupSample {
  readyMs: number;
  /** Navigation start → the worker's `load` call (page script, React, worker start). */
  pageToLoadMs: number;
  timings: LoadTimings;
}

export interface StartupResult {
  cold: StartupSample[];
  warm: StartupSample[];
}

export interface StartupSettings {
  /** Page URL, query included (e.g. `http://127.0.0.1:4371/?backend=wasm`). */
  url: string;
  coldRuns: number;
  /** Warm visits after the last cold visit. */
  warmRuns: number;
  /** Time on the page after each ready mark, before the next visit (ms). */
  dwellMs: number;
  /** A fresh profile per cold visit; closed when that visit and its warm visits are done. */
  newProfile: () => Promise<BrowserContext>;
}

/** Fresh incognito-like contexts of one browser (what `npm run bench` uses). */
export const incognitoProfiles = (browser: Browser) => () => browser.newContext();

async function readyMark(page: Page, timeoutMs: number): Promise<StartupSample> {
  const handle = await page.waitForFunction(
    (name) => {
      const mark = performance.getEntriesByName(name, 'mark')[0] as PerformanceMark | undefined;
      return mark ? { startTime: mark.startTime, detail: mark.detail as unknown } : undefined;
    },
    MODEL_READY_MARK,
    { timeout: timeoutMs, polling: 100 },
  );
  const { startTime, detail } = (await handle.jsonValue()) as { startTime: number; detail: LoadTimings };
  const pageOrigin = await page.evaluate(() => performance.timeOrigin);
  // detail.workerStartMs is on the worker's clock: its timeOrigin is reported alongside.
  const loadStart = detail.workerOrigin + detail.workerStartMs - pageOrigin;
  return { readyMs: startTime, pageToLoadMs: loadStart, timings: detail };
}

/** One visitor: a fresh profile whose page visits the app, then again and again, each visit timed. */
export interface Visitor {
  /** The cold visit: the first navigation to `url`. */
  visit(url: string): Promise<StartupSample>;
  /** A warm visit: the same URL again, in the same profile. */
  revisit(): Promise<StartupSample>;
  close(): Promise<void>;
}

export async function newVisitor(newProfile: StartupSettings['newProfile'], dwellMs: number): Promise<Visitor> {
  const context = await newProfile();
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') errors.push(message.text());
  });
  const ready = async () => {
    try {
      const sample = await readyMark(page, 180_000);
      await page.waitForTimeout(dwellMs);
      await page.goto('about:blank');
      return sample;
    } catch (cause) {
      const shown = await page.locator('#root').innerText().catch(() => '');
      throw new Error(`the app was not ready in 180 s; the page says: ${shown.slice(0, 400)}; console: ${errors.join('; ')}`, { cause });
    }
  };
  let visited = '';
  return {
    async visit(url) {
      visited = url;
      await page.goto(url);
      return ready();
    },
    async revisit() {
      await page.goto(visited);
      return ready();
    },
    async close() {
      const thrown = errors.filter((e) => !e.startsWith('This browser offers no WebGPU'));
      if (thrown.length) console.warn(`  (the app logged while starting: ${thrown.join('; ')})`);
      await context.close();
    },
  };
}

/** `coldRuns` fresh profiles; in the last one, `warmRuns` warm visits. */
export async function measureStartup(s: StartupSettings): Promise<StartupResult> {
  const result: StartupResult = { cold: [], warm: [] };
  for (let i = 0; i < s.coldRuns; i++) {
    const visitor = await newVisitor(s.newProfile, s.dwellMs);
    try {
      result.cold.push(await visitor.visit(s.url));
      if (i === s.coldRuns - 1) {
        for (let w = 0; w < s.warmRuns; w++) result.warm.push(await visitor.revisit());
      }
    } finally {
      await visitor.close();
    }
  }
  return result;
}
