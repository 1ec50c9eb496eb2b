// The app end to end in Chromium: download with progress, a 2-shot prompt built through the UI on
// WebGPU and on WASM (same answer), a warm reload that touches the network for no model file,
// a prompt that survives a reload, latents read back after one, and video clips (frames from image files or from a video
// file). Each test starts with empty storage (a fresh context).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, type Page } from '@playwright/test';
import { validateManifest } from '../src/engine/manifest';
import { pickVariant, variantFiles } from '../src/engine/variants';
import { chromiumLaunchOptions } from './browser';
import { buildPrompt, FIXTURES, generate, normalise, readFixture, test, waitForModel } from './helpers';

const MANIFEST = validateManifest(
  JSON.parse(readFileSync(fileURLToPath(new URL('../public/models/emojiworld/manifest.json', import.meta.url)), 'utf8')),
);

/** The variant the model status names (data-variant), once the model is ready. */
async function shownVariant(page: Page): Promise<string> {
  return (await page.getByTestId('variant').getAttribute('data-variant')) ?? '';
}


function modelRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.includes('/models/')) urls.push(request.url());
  });
  return urls;
}

test('downloads the bundled model with a visible progress bar', async ({ page }) => {
  const requested = modelRequests(page);
  // Hold the largest file back for a moment so that the bar is certainly on screen.
  await page.route('**/models/emojiworld/lm*.onnx', async (route) => {
    const response = await route.fetch();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await route.fulfill({ response });
  });
  await page.goto('/');

  const bar = page.getByRole('progressbar', { name: 'Model download' });
  await expect(bar).toBeVisible();
  await expect(page.getByTestId('model-progress-text')).toContainText(/\d+(\.\d)? (B|KB|MB) of \d+(\.\d)? (KB|MB)/);

  await waitForModel(page);
  await expect(bar).toBeHidden();
  // The bundled manifest is part of the app: only the five model files were fetched, those of
  // the variant the backend got.
  const files = requested.map((url) => new URL(url).pathname.split('/').pop()).sort();
  const expected = Object.values(variantFiles(MANIFEST, await shownVariant(page))).map((f) => f.path).sort();
  expect(files).toEqual(expected);
  expect(files).toHaveLength(5);
});

test('a 2-shot prompt built in the UI gives the expected answer on WebGPU', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=webgpu');
  await waitForModel(page, 'webgpu');
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
  await expect(page.getByTestId('context-warning')).toHaveCount(0);
});

test('a prompt longer than the model was trained on still answers, with a warning', async ({ page }) => {
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await page.getByTestId('add-text').click();
  // ~6 tokens a repeat: past the trained context (manifest lm.context_length), under the 4x that is refused
  await page.getByTestId('segment-text').last().fill('Output: a red apple. '.repeat(Math.ceil(MANIFEST.lm.context_length / 4)) + 'Output:');
  await generate(page);
  await expect(page.getByTestId('context-warning')).toContainText(/longer than the \d+ tokens the model was trained on/);
});

test('the same prompt forced to WASM gives the same answer', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
});

test('each backend runs the variant the manifest picks for it, or the one in ?variant=', async ({ page }) => {
  for (const backend of ['wasm', 'webgpu'] as const) {
    await page.goto(`/?backend=${backend}`);
    await waitForModel(page, backend);
    const features = await page.evaluate(async (b) => {
      const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<{ features: Set<string> } | null> } }).gpu;
      return b === 'webgpu' && gpu ? [...((await gpu.requestAdapter())?.features ?? [])] : [];
    }, backend);
    expect(await shownVariant(page)).toBe(pickVariant(MANIFEST, backend, new Set(features)));
  }
  await page.goto('/?backend=wasm&variant=float32');
  await waitForModel(page, 'wasm');
  await expect(page.getByTestId('variant')).toHaveAttribute('data-variant', 'float32');
});

test('after a reload the model comes from IndexedDB: no request under /models/', async ({ page }) => {
  await page.goto('/?backend=wasm');
  await waitForModel(page);

  const requested = modelRequests(page);
  await page.reload();
  await waitForModel(page);
  await expect(page.getByTestId('model-ready')).toContainText('from browser storage');
  expect(requested).toEqual([]);
});

test('images encoded once are read back from IndexedDB after a reload, with the same answer', async ({ page }) => {
  const fixture = readFixture();
  const images = fixture.segments.filter((segment) => 'image' in segment).length;
  await page.goto('/?backend=wasm');
  await buildPrompt(page, fixture);
  await waitForModel(page, 'wasm');
  const first = await generate(page);
  const media = page.getByTestId('media');
  await expect(media).toHaveAttribute('data-media', String(images));
  await expect(media).toHaveAttribute('data-encoded', String(images)); // a fresh context: every image encoded

  await page.reload(); // the prompt is restored; the engine's memory is gone
  await waitForModel(page, 'wasm');
  expect(await generate(page)).toBe(first);
  await expect(media).toHaveAttribute('data-media', String(images));
  await expect(media).toHaveAttribute('data-encoded', '0');
  await expect(media).toContainText(`${images} from the cache`);
});

test('the prompt survives a reload, and an image that cannot be decoded is named', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await buildPrompt(page, fixture);

  await page.getByTestId('image-input').setInputFiles({
    name: 'broken.png',
    mimeType: 'image/png',
    buffer: Buffer.from('this is not a PNG'),
  });
  await expect(page.getByTestId('error')).toContainText('broken.png');
  await expect(page.getByTestId('segment')).toHaveCount(fixture.segments.length);

  await page.reload();
  await expect(page.getByTestId('segment')).toHaveCount(fixture.segments.length);
  const texts = fixture.segments.flatMap((segment) => ('text' in segment ? [segment.text] : []));
  for (const [index, text] of texts.entries()) await expect(page.getByTestId('segment-text').nth(index)).toHaveValue(text);
  await expect(page.getByRole('img')).toHaveCount(fixture.segments.length - texts.length);
});

test('a clip made of PNG frames generates on WASM and survives a reload', async ({ page }) => {
  const frames = ['two-shot-1.png', 'two-shot-2.png', 'two-shot-3.png'];
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');

  // Picked out of order: the clip takes them in file-name order.
  await page.getByTestId('clip-input').setInputFiles([frames[2], frames[0], frames[1]].map((name) => join(FIXTURES, name)));
  const segments = page.getByTestId('segment');
  await expect(segments).toHaveCount(1);
  const clip = segments.first();
  await expect(clip).toHaveAttribute('data-kind', 'clip');
  await expect(clip.getByTestId('clip-frame-count')).toHaveAttribute('data-frames', '3');
  await expect(clip.getByTestId('clip-frame')).toHaveCount(3);
  await expect(clip.getByRole('img').first()).toHaveAttribute('alt', /frame 1$/);
  await expect(clip).toContainText('two-shot-1.png … two-shot-3.png');

  await page.getByTestId('add-text').click();
  await page.getByTestId('segment-text').last().fill('Output:');
  await expect(segments).toHaveCount(2);

  // A clip moves like any segment: Alt+↓ on its controls, then its ↑ button.
  await clip.getByRole('button', { name: 'Move segment 1 down' }).press('Alt+ArrowDown');
  await expect(segments.nth(1)).toHaveAttribute('data-kind', 'clip');
  await page.getByRole('button', { name: 'Move segment 2 up' }).click();
  await expect(segments.nth(0)).toHaveAttribute('data-kind', 'clip');
  await generate(page);

  // A video that cannot be decoded is named, and the prompt stays as it was.
  await page.getByTestId('clip-input').setInputFiles({
    name: 'broken.webm',
    mimeType: 'video/webm',
    buffer: Buffer.from('this is not a video'),
  });
  await expect(page.getByTestId('error')).toContainText('broken.webm');
  await expect(segments).toHaveCount(2);

  await page.reload();
  await expect(segments).toHaveCount(2);
  await expect(page.locator('[data-testid="segment"][data-kind="clip"]')).toHaveCount(1);
  await expect(segments.first().getByTestId('clip-frame-count')).toHaveAttribute('data-frames', '3');
  await expect(segments.first().getByTestId('clip-frame')).toHaveCount(3);
  await expect(page.getByTestId('segment-text')).toHaveValue('Output:');
  await waitForModel(page, 'wasm');
  await expect(page.getByTestId('generate')).toBeEnabled(); // the frames were decoded again
});

test('a video file becomes a clip of frames taken at 1 per second (4 for a short one)', async ({ page }) => {
  await page.goto('/?backend=wasm');
  // A 2-second WebM recorded in the page (its header says duration Infinity, as MediaRecorder's do).
  const video = await page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 48;
    const context = canvas.getContext('2d')!;
    const recorder = new MediaRecorder(canvas.captureStream(25), { mimeType: 'video/webm' });
    const chunks: Blob[] = [];
    recorder.ondataavailable = (event) => chunks.push(event.data);
    const stopped = new Promise((resolve) => (recorder.onstop = resolve));
    recorder.start();
    const start = performance.now();
    while (performance.now() - start < 2000) {
      context.fillStyle = `hsl(${((performance.now() - start) / 2000) * 360}, 80%, 50%)`;
      context.fillRect(0, 0, canvas.width, canvas.height);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    recorder.stop();
    await stopped;
    return Array.from(new Uint8Array(await new Blob(chunks).arrayBuffer()));
  });
  await page.getByTestId('clip-input').setInputFiles({ name: 'colours.webm', mimeType: 'video/webm', buffer: Buffer.from(video) });
  const clip = page.getByTestId('segment');
  await expect(clip).toHaveCount(1);
  await expect(clip.getByTestId('clip-frame-count')).toHaveAttribute('data-frames', '4');
  await expect(clip.getByTestId('clip-frame')).toHaveCount(4);
  await expect(clip).toContainText('colours.webm');
  await expect(clip).not.toContainText('decoding');
  await expect(page.getByTestId('error')).toHaveCount(0);
  // The frames come from different times: the colour changes from one to the next.
  const colours = await clip.getByTestId('clip-frame').evaluateAll((images) =>
    Promise.all(
      images.map(async (image) => {
        // an <img> not decoded yet draws nothing (it read 0,0,0 four times once)
        await (image as HTMLImageElement).decode();
        const canvas = document.createElement('canvas');
        canvas.width = canvas.height = 1;
        const context = canvas.getContext('2d')!;
        context.drawImage(image as HTMLImageElement, 32, 24, 1, 1, 0, 0, 1, 1);
        return Array.from(context.getImageData(0, 0, 1, 1).data.slice(0, 3)).join(',');
      }),
    ),
  );
  expect(new Set(colours).size, `frame colours ${colours.join(' | ')}`).toBe(4);
});

test('segments reorder with the buttons and with Alt+arrow keys', async ({ page }) => {
  await page.goto('/?backend=wasm');
  for (const text of ['first', 'second', 'third']) {
    await page.getByTestId('add-text').click();
    await page.getByTestId('segment-text').last().fill(text);
  }
  const texts = page.getByTestId('segment-text');

  await texts.nth(2).press('Alt+ArrowUp');
  await expect(texts.nth(1)).toHaveValue('third');
  await expect(texts.nth(1)).toBeFocused();

  await page.getByRole('button', { name: 'Move segment 1 down' }).click();
  await expect(texts.nth(0)).toHaveValue('third');
  await expect(texts.nth(1)).toHaveValue('first');

  await page.getByRole('button', { name: 'Remove segment 1' }).click();
  await expect(texts).toHaveCount(2);
  await expect(texts.nth(0)).toHaveValue('first');
});

test('without a WebGPU adapter, auto falls back to WASM and says why', async ({ playwright, baseURL }) => {
  // The same browser without --enable-unsafe-webgpu, so there is no adapter.
  const browser = await playwright.chromium.launch(chromiumLaunchOptions({ webgpu: false }));
  try {
    const page = await browser.newPage({ baseURL });
    await page.goto('/');
    await waitForModel(page, 'wasm');
    await expect(page.getByTestId('warning')).toContainText('no WebGPU adapter');
  } finally {
    await browser.close();
  }
});

test('a full disk is reported, and the model still runs from memory', async ({ page, baseURL }) => {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(baseURL!).origin, quotaSize: 64 * 1024 });
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await expect(page.getByTestId('warning').first()).toContainText('Not enough browser storage');
});

test('encoded pictures that cannot be saved are reported once, and answers go on', async ({ page, baseURL }) => {
  const fixture = readFixture();
  const cdp = await page.context().newCDPSession(page);
  // Below one image's latents (n_latents x d_model float32): every write of them fails.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(baseURL!).origin, quotaSize: 1024 });
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
  const notSaved = page.getByTestId('warning').filter({ hasText: 'Encoded pictures could not be saved' });
  await expect(notSaved).toHaveCount(1);
  await expect(notSaved).toContainText('pictures are encoded again after a reload');
  await page.getByTestId('image-input').setInputFiles(join(FIXTURES, fixture.segments.find((s) => 'image' in s)!.image));
  await generate(page);
  await expect(notSaved).toHaveCount(1);
});

test('"Load example" builds a 2-shot prompt', async ({ page }) => {
  await page.goto('/?backend=wasm');
  await page.getByTestId('load-example').click();
  await expect(page.getByTestId('segment')).toHaveCount(6);
  await expect(page.getByTestId('segment-text').last()).toHaveValue('Output:');
});

test('a corrupt download names the file, keeps the prompt, and can be retried', async ({ page }) => {
  await page.route('**/models/emojiworld/resampler.onnx', async (route) => {
    const response = await route.fetch();
    const body = await response.body();
    body[body.length >> 1] ^= 0xff; // one flipped byte: same size, wrong sha256
    await route.fulfill({ response, body });
  });
  // lm.onnx still arrives after the failure: its late progress must not hide the error.
  await page.route('**/models/emojiworld/lm.onnx', async (route) => {
    const response = await route.fetch();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await route.fulfill({ response });
  });
  await page.goto('/?backend=wasm&variant=float32'); // the float32 files, routed above
  await page.getByTestId('add-text').click();
  await page.getByTestId('segment-text').fill('Output:');

  await expect(page.getByTestId('model-error')).toContainText('resampler.onnx');
  await expect(page.getByTestId('segment-text')).toHaveValue('Output:');
  await page.waitForTimeout(2000);
  await expect(page.getByTestId('model-error')).toBeVisible();

  await page.unrouteAll();
  await page.getByTestId('retry-load').click();
  await waitForModel(page, 'wasm');
  await expect(page.getByTestId('segment-text')).toHaveValue('Output:');
});
