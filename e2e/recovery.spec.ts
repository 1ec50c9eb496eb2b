// Faults at run time: the model worker crashing mid-answer is replaced, the model loads again (from
// IndexedDB), the prompt is intact and the next answer comes. On WebGPU: Stop while the prompt is
// still being prefilled ends the answer before its first token, and a GPU device lost mid-answer
// moves the model to WASM, where that answer is finished.
import { expect, type Page, type Worker } from '@playwright/test';
import { buildPrompt, generate, normalise, readFixture, test, waitForModel } from './helpers';

const modelWorker = (page: Page): Worker | undefined => page.workers().find((w) => w.url().includes('worker'));

test('a worker that crashes while answering is restarted; the prompt survives', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  const worker = modelWorker(page);
  expect(worker, 'the model worker').toBeTruthy();
  // An uncaught error inside the worker, as a runtime fault would raise, while an answer runs: thrown
  // a task after the generate request arrives (comlink's APPLY message), so always mid-answer (an answer
  // awaits IndexedDB and WebCrypto before its first token). Thrown from the test after the click, it
  // could land after this 3-token answer had ended, when a crash is only logged and the model reloaded.
  await worker!.evaluate(() => {
    self.addEventListener('message', (event: MessageEvent<{ path?: string[] } | undefined>) => {
      if (event.data?.path?.includes('generate')) setTimeout(() => { throw new Error('simulated crash'); }, 0);
    });
  });
  await page.getByTestId('max-new-tokens').fill('256');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('error')).toContainText('The model worker stopped');
  await expect(page.getByTestId('segment')).toHaveCount(fixture.segments.length);
  await waitForModel(page, 'wasm');
  await page.getByTestId('max-new-tokens').fill('20');
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
});

test('on WebGPU: Stop during the prefill ends before the first token; a GPU lost mid-answer finishes it on WASM', async ({ page }) => {
  // The test's hand on the GPU: every device the model worker asks for is kept, so that the test
  // can destroy it (GPUDevice.destroy() loses the device, as a driver reset would). Only the
  // browser's API is wrapped; the app has no test hook. The worker asks for its device seconds
  // after it starts (the first WebGPU session), well after this runs.
  page.on('worker', (worker) => {
    void worker
      .evaluate(() => {
        type Adapter = { requestDevice(...args: unknown[]): Promise<unknown> };
        const scope = self as unknown as { testDevices: unknown[]; GPUAdapter?: { prototype: Adapter } };
        if (!scope.GPUAdapter) return;
        scope.testDevices = [];
        const original = scope.GPUAdapter.prototype.requestDevice;
        scope.GPUAdapter.prototype.requestDevice = async function (this: Adapter, ...args: unknown[]) {
          const device = await original.apply(this, args);
          scope.testDevices.push(device);
          return device;
        };
      })
      .catch(() => undefined); // a worker that is already gone
  });
  const fixture = readFixture();
  await page.goto('/?backend=webgpu');
  await waitForModel(page, 'webgpu');
  await buildPrompt(page, fixture);
  const worker = modelWorker(page)!;
  expect(await worker.evaluate(() => (self as unknown as { testDevices: unknown[] }).testDevices.length)).toBe(1);

  // Stop at once: on SwiftShader the images and the prompt take seconds before a first token.
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('live-stats')).toHaveText('Reading the prompt…');
  await page.getByTestId('stop').click();
  await expect(page.getByTestId('answer-panel')).toHaveAttribute('data-state', 'done');
  await expect(page.getByTestId('stop-reason')).toHaveText('stopped');
  await expect(page.getByTestId('tokens')).toHaveAttribute('data-tokens', '0');
  await expect(page.getByTestId('answer')).toHaveText('');

  // The next answer starts on the GPU; its device is lost as soon as the first token shows (watched
  // every frame: the rest of the answer takes a second or more of decode steps on SwiftShader).
  await page.getByTestId('generate').click();
  await page.waitForFunction(() => (document.querySelector('[data-testid="answer"]')?.textContent ?? '') !== '', undefined, { polling: 'raf' });
  await worker.evaluate(() => (self as unknown as { testDevices: { destroy(): void }[] }).testDevices.forEach((device) => device.destroy()));
  await expect(page.getByTestId('answer-panel')).toHaveAttribute('data-state', 'done');
  await expect(page.getByTestId('answer-backend')).toHaveText('wasm');
  expect(normalise((await page.getByTestId('answer').textContent()) ?? '')).toBe(normalise(fixture.answer));
  await expect(page.getByTestId('warning')).toContainText('The GPU stopped working');
  await waitForModel(page, 'wasm');
  await expect(page.getByTestId('error')).toHaveCount(0);
  await expect(page.getByTestId('segment')).toHaveCount(fixture.segments.length);
  // and the next one comes, on WASM
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
});
