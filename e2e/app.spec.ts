// The app end to end in Chromium: download with progress, a 2-shot prompt built through the UI on
// WebGPU and on WASM (same answer), a warm reload that touches the network for no model file,
// and a prompt that survives a reload. Each test starts with empty storage (a fresh context).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as base, expect, type Page } from '@playwright/test';
import { chromiumLaunchOptions } from './browser';

// Any uncaught error on the page fails the test.
const test = base.extend({
  page: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await use(page);
    expect(errors, 'uncaught errors on the page').toEqual([]);
  },
});

// Written by the data helper (e2e/fixtures/); E2E_FIXTURES_DIR points elsewhere during development.
const FIXTURES = process.env.E2E_FIXTURES_DIR ?? fileURLToPath(new URL('./fixtures/', import.meta.url));

interface Fixture {
  segments: ({ image: string } | { text: string })[];
  answer: string;
}

function readFixture(): Fixture {
  return JSON.parse(readFileSync(join(FIXTURES, 'two-shot.json'), 'utf8')) as Fixture;
}

/** Answers compare after lower-casing, trimming and dropping a final full stop (DESIGN.md). */
function normalise(answer: string): string {
  return answer.toLowerCase().trim().replace(/\.$/, '').trim();
}

async function waitForModel(page: Page, backend?: 'webgpu' | 'wasm') {
  const shown = page.getByTestId('backend');
  await expect(shown).toBeVisible();
  if (backend) await expect(shown).toHaveText(backend);
}

/** Builds the prompt through the UI: the file input for images, "Add text" + typing for text. */
async function buildPrompt(page: Page, fixture: Fixture) {
  const segments = page.getByTestId('segment');
  for (const [index, segment] of fixture.segments.entries()) {
    if ('image' in segment) {
      await page.getByTestId('image-input').setInputFiles(join(FIXTURES, segment.image));
    } else {
      await page.getByTestId('add-text').click();
      await page.getByTestId('segment-text').last().fill(segment.text);
    }
    await expect(segments).toHaveCount(index + 1);
  }
}

async function generate(page: Page): Promise<string> {
  const button = page.getByTestId('generate');
  await expect(button).toBeEnabled();
  await button.click();
  await expect(page.getByTestId('answer-panel')).toHaveAttribute('data-state', 'done');
  await expect(page.getByTestId('ttft')).toBeVisible();
  await expect(page.getByTestId('tokens-per-second')).toBeVisible();
  return (await page.getByTestId('answer').textContent()) ?? '';
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
  await page.route('**/models/emojiworld/lm.onnx', async (route) => {
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
  // The bundled manifest is part of the app: only the four model files were fetched.
  const files = requested.map((url) => new URL(url).pathname.split('/').pop()).sort();
  expect(files).toEqual(['lm.onnx', 'resampler.onnx', 'tokenizer.json', 'vision_encoder.onnx']);
});

test('a 2-shot prompt built in the UI gives the expected answer on WebGPU', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=webgpu');
  await waitForModel(page, 'webgpu');
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
});

test('the same prompt forced to WASM gives the same answer', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
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
  await page.goto('/?backend=wasm');
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
