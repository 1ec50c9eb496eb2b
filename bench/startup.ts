// Start-up of the built app in Chromium: navigation start → the model ready (the page's
// MODEL_READY_MARK), on a cold visit (a fresh browser context: empty IndexedDB, HTTP cache and
// wasm code cache, so every model file is downloaded from localhost) and on warm visits (reloads
// of the same context: model files from IndexedDB). The mark's detail is the worker's LoadTimings.
import type { Browser, Page } from '@playwright/test';
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

/**
 * `coldRuns` fresh contexts; in the last one, `warmRuns` reloads. `query` picks the backend
 * (e.g. '?backend=wasm').
 */
export async function measureStartup(
  browser: Browser,
  baseUrl: string,
  query: string,
  coldRuns: number,
  warmRuns: number,
): Promise<StartupResult> {
  const result: StartupResult = { cold: [], warm: [] };
  for (let i = 0; i < coldRuns; i++) {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning') errors.push(message.text());
      });
      const ready = async () => {
        try {
          return await readyMark(page, 180_000);
        } catch (cause) {
          const shown = await page.locator('#root').innerText().catch(() => '');
          throw new Error(`the app was not ready in 180 s; the page says: ${shown.slice(0, 400)}; console: ${errors.join('; ')}`, { cause });
        }
      };
      await page.goto(`${baseUrl}/${query}`);
      result.cold.push(await ready());
      if (i === coldRuns - 1) {
        for (let w = 0; w < warmRuns; w++) {
          await page.reload();
          result.warm.push(await ready());
        }
      }
      const thrown = errors.filter((e) => !e.startsWith('This browser offers no WebGPU'));
      if (thrown.length) console.warn(`  (the app logged while starting: ${thrown.join('; ')})`);
    } finally {
      await context.close();
    }
  }
  return result;
}
