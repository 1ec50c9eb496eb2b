// Model files that go wrong, in the browser: a manifest that is missing, not JSON or of an unknown
// format is named and the app stays usable; a download broken off mid-file, then offline,
// resumes from the bytes it has (page.route plays the network); without IndexedDB the model runs
// from memory, with a notice. (A full disk and a corrupt download: app.spec.ts.)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from '@playwright/test';
import { buildPrompt, generate, normalise, readFixture, test, waitForModel } from './helpers';

// page.route sees the worker's requests only when no service worker answers them first.
test.use({ serviceWorkers: 'block' });

const BUNDLED_MANIFEST = JSON.parse(
  readFileSync(fileURLToPath(new URL('../public/models/emojiworld/manifest.json', import.meta.url)), 'utf8'),
) as Record<string, unknown>;

test('a missing, non-JSON or unknown-format manifest is named; the prompt and the bundled model stay usable', async ({ page }) => {
  await page.route('**/models/missing/manifest.json', (route) => route.fulfill({ status: 404, body: 'Not found' }));
  await page.route('**/models/html/manifest.json', (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><p>Sign in</p>' }));
  await page.route('**/models/future/manifest.json', (route) => route.fulfill({ json: { ...BUNDLED_MANIFEST, format: 'flamingo-web/3' } }));
  await page.route('**/models/old/manifest.json', (route) => route.fulfill({ json: { ...BUNDLED_MANIFEST, format: 'flamingo-web/1' } }));
  const cases = [
    ['missing', /Could not fetch the model manifest http:\S+\/models\/missing\/manifest\.json: HTTP 404/],
    ['html', /The model manifest http:\S+\/models\/html\/manifest\.json is not valid JSON/],
    ['future', /models\/future\/manifest\.json is not a usable flamingo-web model manifest: .*format must be "flamingo-web\/2" \(got "flamingo-web\/3"\)/],
    ['old', /format must be "flamingo-web\/2" \(got "flamingo-web\/1"\) \(a model folder from before xattn_kv\.onnx: export it again\)/],
  ] as const;
  for (const [folder, message] of cases) {
    await page.goto(`/?backend=wasm&model=/models/${folder}/`);
    await expect(page.getByTestId('model-error')).toHaveText(message);
    await expect(page.getByTestId('retry-load')).toBeVisible();
  }
  // The studio still works: a prompt can be written, and the bundled model picked.
  await page.getByTestId('add-text').click();
  await page.getByTestId('segment-text').fill('Output:');
  await page.getByTestId('model-row').filter({ hasText: 'bundled with the app' }).getByTestId('model-use').click();
  await waitForModel(page, 'wasm');
  await expect(page.getByTestId('model-error')).toHaveCount(0);
  await expect(page.getByTestId('segment-text')).toHaveValue('Output:');
  await expect(page.getByTestId('generate')).toBeEnabled();
});

test('a download broken off mid-file, then offline, resumes from the bytes it has', async ({ page }) => {
  const ranges: (string | undefined)[] = [];
  let half = 0;
  await page.route('**/models/emojiworld/lm*.onnx', async (route) => {
    ranges.push(route.request().headers()['range']);
    if (ranges.length === 1) {
      // the first half of the file, then the body ends: the connection went away
      const body = await (await route.fetch()).body();
      half = body.length >> 1;
      await route.fulfill({ status: 200, contentType: 'application/octet-stream', body: body.subarray(0, half) });
    } else if (ranges.length === 2) {
      await route.abort('internetdisconnected'); // the retry finds the network gone
    } else {
      await route.continue(); // back online: the preview server answers the Range with 206
    }
  });
  await page.goto('/?backend=wasm');
  await expect(page.getByTestId('warning').filter({ hasText: 'broke off' }).first()).toContainText(/The download of lm\S*\.onnx broke off after [\d.]+ (KB|MB); trying again \(1 of 3\)/);
  await waitForModel(page, 'wasm');
  expect(ranges).toEqual([undefined, `bytes=${half}-`, `bytes=${half}-`]);
  await expect(page.getByTestId('model-ready')).not.toContainText('from browser storage');
  await expect(page.getByTestId('error')).toHaveCount(0);
});

test('without IndexedDB the model runs from memory, with a notice', async ({ page }) => {
  // IndexedDB refused in the page and in the model worker, as a browser that blocks site storage does.
  const refuse = `IDBFactory.prototype.open = function () { throw new DOMException('The user denied permission to access the database.', 'SecurityError'); };\n`;
  await page.addInitScript(refuse);
  await page.route('**/assets/worker-*.js', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, body: refuse + (await response.text()) });
  });
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  const warnings = page.getByTestId('warning');
  await expect(warnings.filter({ hasText: 'model is downloaded on every visit' })).toHaveText(
    "The browser's storage (IndexedDB) is not available here, so the model is downloaded on every visit.",
  );
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
  // the prompt's storage says so once, not once per edit; nothing failed
  await expect(warnings.filter({ hasText: 'prompt is not saved' })).toHaveText(
    "The browser's storage (IndexedDB) is not available here, so the prompt is not saved: it will be lost on reload. ✕",
  );
  await expect(warnings).toHaveCount(2);
  await expect(page.getByTestId('model-row')).toContainText(['(not stored)']);
  // the one part that needs storage says so
  await expect(page.getByTestId('error')).toHaveText([/^The example library is kept in the browser’s storage \(IndexedDB\), which is not available here/]);
});
