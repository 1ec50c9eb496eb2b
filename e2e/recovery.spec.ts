// Faults at run time: the model worker crashing mid-answer is replaced, the model loads again (from
// IndexedDB), the prompt is intact and the next answer comes.
import { expect, test } from '@playwright/test';
import { buildPrompt, generate, normalise, readFixture, waitForModel } from './helpers';

test('a worker that crashes while answering is restarted; the prompt survives', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  const modelWorker = page.workers().find((w) => w.url().includes('worker'));
  expect(modelWorker, 'the model worker').toBeTruthy();
  // an uncaught error inside the worker, as a runtime fault would raise, while an answer runs
  await page.getByTestId('max-new-tokens').fill('256');
  await page.getByTestId('generate').click();
  await modelWorker!.evaluate(() => setTimeout(() => { throw new Error('simulated crash'); }, 0));
  await expect(page.getByTestId('error')).toContainText('The model worker stopped');
  await expect(page.getByTestId('segment')).toHaveCount(fixture.segments.length);
  await waitForModel(page, 'wasm');
  await page.getByTestId('max-new-tokens').fill('20');
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
});
