// The prompt studio end to end in Chromium: a gallery example answered in two clicks (generate
// and rank), beam search, task presets, the example library (add, export, delete, a bad import
// that changes nothing, import, RICES pick), the model manager (storage, persist, delete, a
// folder from disk, another origin only after confirming), a keyboard-only flow, an axe scan, and the
// prompt's rows at a phone's width.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AxeBuilder from '@axe-core/playwright';
import { expect, type Page } from '@playwright/test';
import { test, waitForModel } from './helpers';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GALLERY = join(ROOT, 'public/examples/gallery');
const BUNDLED_MODEL = join(ROOT, 'public/models/emojiworld');

async function answer(page: Page): Promise<string> {
  await expect(page.getByTestId('answer-panel')).toHaveAttribute('data-state', 'done');
  return ((await page.getByTestId('answer').textContent()) ?? '').trim();
}

const example = (page: Page, id: string) => page.locator(`[data-testid="gallery-example"][data-example="${id}"]`);

async function axeViolations(page: Page) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return results.violations.map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target.join(' ')).join(' | ')}`);
}

test('a gallery example answers in two clicks; beam search gives the same answer; axe finds nothing', async ({ page }) => {
  await page.setViewportSize({ width: 960, height: 2400 });
  await page.goto('/?backend=wasm');
  await waitForModel(page);

  await example(page, 'naming-novel-1shot-003').click(); // click 1
  await expect(page.getByTestId('segment')).toHaveCount(4);
  await page.getByTestId('generate').click(); // click 2
  expect(await answer(page)).toBe('green salad.');
  await expect(page.getByTestId('ttft')).toBeVisible();
  await expect(page.getByTestId('tokens-per-second')).toBeVisible();

  expect(await axeViolations(page), 'axe: WCAG 2.1 A + AA, with a prompt and an answer on screen').toEqual([]);
  if (process.env.README_SCREENSHOTS) {
    // The README's picture of the studio: the gallery down to the answer.
    const top = (await page.locator('section.gallery').boundingBox())!;
    const bottom = (await page.getByTestId('answer-panel').boundingBox())!;
    await page.screenshot({
      path: join(ROOT, 'docs/studio.png'),
      clip: { x: top.x - 8, y: top.y - 8, width: top.width + 16, height: bottom.y + bottom.height - top.y + 16 },
    });
  }

  await page.getByTestId('decoding-beam').check();
  await expect(page.getByTestId('decoding-beams')).toHaveValue('3');
  await page.getByTestId('generate').click();
  expect(await answer(page)).toBe('green salad.');

  await page.getByTestId('decoding-sample').check();
  await page.getByTestId('decoding-seed').fill('7');
  await page.getByTestId('generate').click();
  expect((await answer(page)).length).toBeGreaterThan(0);
});

test('on a phone-wide page every prompt row fits its panel; a long file name is one cut line with the whole name as its title', async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 900 });
  await page.goto('/?backend=wasm');
  await waitForModel(page);
  await example(page, 'classify-5way-1shot-002').click();
  await expect(page.getByTestId('segment')).toHaveCount(12);
  const panel = (await page.locator('section.prompt').boundingBox())!;
  for (const row of await page.getByTestId('segment').all()) {
    const box = (await row.boundingBox())!;
    expect(box.x + box.width, 'a row ends inside the panel').toBeLessThanOrEqual(panel.x + panel.width);
  }
  const name = page.locator('.segment .file-name').first();
  await expect(name).toHaveAttribute('title', 'classify-5way-1shot-002-002-00.png');
  const lineHeight = await name.evaluate((el) => parseFloat(getComputedStyle(el).lineHeight));
  expect((await name.boundingBox())!.height).toBeLessThan(1.5 * lineHeight);
  const text = (await page.getByTestId('segment-text').first().boundingBox())!;
  expect(text.width, 'a text segment keeps room to type').toBeGreaterThan(150);
});

test('a classify example ranks its options in two clicks, with prompt ensembling', async ({ page }) => {
  await page.goto('/?backend=wasm');
  await waitForModel(page);
  await example(page, 'classify-5way-1shot-002').click(); // click 1
  await expect(page.getByTestId('options')).toHaveValue(/chipmunk/);
  await expect(page.getByTestId('task-classify')).toBeChecked();
  await page.getByTestId('rank').click(); // click 2
  await expect(page.getByTestId('scores').locator('li').first()).toContainText('chipmunk');

  await page.getByTestId('permutations').fill('3');
  await page.getByTestId('rank').click();
  await expect(page.getByTestId('scores').locator('li')).toHaveCount(5);
  await expect(page.getByTestId('scores').locator('li').first()).toContainText('chipmunk');
});

test('task presets rewrite the prompt in the model’s templates', async ({ page }) => {
  await page.goto('/?backend=wasm');
  await waitForModel(page);
  await example(page, 'binding-2way-1shot-000').click();
  const texts = page.getByTestId('segment-text');
  await expect(texts).toHaveCount(3);

  await page.getByTestId('task-question_answering').check();
  await page.getByTestId('task-question').fill('what is it?');
  await page.getByTestId('apply-task').click();
  await expect(texts.nth(0)).toHaveValue('Question: {question} Short answer: zifil');
  await expect(texts.nth(2)).toHaveValue('Question: what is it? Short answer:');
  await expect(page.getByTestId('unfilled')).toContainText('{question}');

  await page.getByTestId('task-classify').check();
  await page.getByTestId('apply-task').click();
  await expect(texts.nth(0)).toHaveValue('Output: zifil.');
  await expect(texts.nth(1)).toHaveValue('Output: dusa.');
  await expect(texts.nth(2)).toHaveValue('Output:');
  await expect(page.getByTestId('options')).toHaveValue('zifil, dusa');
  await page.getByTestId('rank').click();
  await expect(page.getByTestId('scores').locator('li').first()).toContainText('zifil');
});

test('the example library: add, export, delete, a bad import changes nothing, import, pick by RICES', async ({ page }) => {
  await page.goto('/?backend=wasm');
  await waitForModel(page);
  await example(page, 'classify-5way-1shot-002').click();
  await expect(page.getByTestId('segment')).toHaveCount(12);
  const count = page.getByTestId('library-count');
  await expect(count).toHaveText('0 examples in the library.');
  await page.getByTestId('library-add').click();
  await expect(count).toHaveText('5 examples in the library.');
  await page.getByTestId('library-add').click(); // the same examples are not added twice
  await expect(page.getByTestId('info').last()).toContainText('Added 0 examples to the library (5 already there)');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('library-export').click()]);
  const exported = readFileSync(await download.path(), 'utf8');
  expect(JSON.parse(exported).examples).toHaveLength(5);

  await page.getByRole('button', { name: /^Delete Output: classical building\./ }).click();
  await expect(count).toHaveText('4 examples in the library.');

  const bad = JSON.parse(exported);
  bad.examples[2].image = 'data:image/png;base64,bm90IGEgcG5n';
  await page.getByTestId('library-import-input').setInputFiles({ name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(bad)) });
  await expect(page.getByTestId('error')).toContainText('bad.json: Example 3: the image is not a PNG file. Nothing was imported');
  await expect(count).toHaveText('4 examples in the library.');

  await page.getByTestId('library-import-input').setInputFiles({ name: 'library.json', mimeType: 'application/json', buffer: Buffer.from(exported) });
  await expect(count).toHaveText('5 examples in the library.');
  await page.reload();
  await expect(count).toHaveText('5 examples in the library.');
  await waitForModel(page);

  // A new prompt with only the query: RICES puts the nearest example before it.
  await page.getByTestId('clear-prompt').click();
  await page.getByTestId('image-input').setInputFiles(join(GALLERY, 'classify-5way-1shot-002-002-05.png'));
  await page.getByTestId('add-text').click();
  await page.getByTestId('segment-text').last().fill('Output:');
  await page.getByTestId('library-k').fill('5');
  await page.getByTestId('library-pick').click();
  const segments = page.getByTestId('segment');
  await expect(segments).toHaveCount(12);
  await expect(segments.nth(0)).toHaveAttribute('data-kind', 'image');
  await expect(segments.nth(10)).toHaveAttribute('data-kind', 'image');
  // The drawing of the same thing is the most similar: it comes last, right before the query.
  await expect(page.getByTestId('segment-text').nth(4)).toHaveValue('Output: chipmunk.');
  await expect(page.getByTestId('segment-text').last()).toHaveValue('Output:');
  await page.getByTestId('task-classify').check();
  await page.getByTestId('apply-task').click();
  await expect(page.getByTestId('options')).toHaveValue(/chipmunk$/);
  await page.getByTestId('rank').click();
  await expect(page.getByTestId('scores').locator('li').first()).toContainText('chipmunk');
});

test('the model manager: stored size, persist, delete, a folder from disk, another origin only after confirming', async ({ page, baseURL }) => {
  await page.goto('/?backend=wasm');
  await waitForModel(page);
  const rows = page.getByTestId('model-row');
  const bundled = rows.filter({ hasText: 'emojiworld 0.2.3' }).first();
  await expect(bundled.getByTestId('model-stored')).toHaveText(/^(\d+\.\d MB) of \1$/);
  await expect(page.getByTestId('storage-estimate')).toContainText(/This site uses .* of the .* the browser allows it/);
  await page.getByTestId('persist-storage').click();
  await expect(page.getByTestId('info').last()).toContainText(/Storage is persistent|declined/);

  await bundled.getByTestId('model-delete').click();
  await expect(bundled.getByTestId('model-stored')).toContainText('0 B of');
  await expect(bundled.getByTestId('model-stored')).toContainText('(not stored)');

  // A folder on disk: every file is checked; a tampered one is named and nothing loads.
  const dir = mkdtempSync(join(tmpdir(), 'flamingo-model-'));
  try {
    const folder = join(dir, 'my-model');
    cpSync(BUNDLED_MODEL, folder, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8'));
    writeFileSync(join(folder, 'manifest.json'), JSON.stringify({ ...manifest, name: 'my-model' }));
    const tokenizer = readFileSync(join(folder, 'tokenizer.json'));
    writeFileSync(join(folder, 'tokenizer.json'), Buffer.concat([tokenizer.subarray(0, -1), Buffer.from(' ')]));
    await page.getByTestId('model-folder-input').setInputFiles(folder);
    await expect(page.getByTestId('error')).toContainText('tokenizer.json failed its integrity check');
    await expect(page.getByTestId('model-ready')).toContainText('emojiworld');

    writeFileSync(join(folder, 'tokenizer.json'), tokenizer);
    await page.getByTestId('model-folder-input').setInputFiles(folder);
    await expect(page.getByTestId('model-ready')).toContainText('my-model 0.2.3');
    await expect(rows.filter({ hasText: 'my-model' })).toHaveAttribute('data-current', 'true');
    await expect(rows.filter({ hasText: 'my-model' })).toContainText('picked from a folder');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Another origin (the same server under another host name): a dialog first.
  const other = new URL(baseURL!);
  other.hostname = other.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
  const otherModel = new URL('/models/emojiworld/', other).href;
  await page.getByTestId('model-url').fill(otherModel);
  await page.getByTestId('model-url-load').click();
  const dialog = page.getByTestId('confirm-dialog');
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId('confirm-url')).toHaveText(otherModel);
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId('model-ready')).toContainText('my-model');

  await page.getByTestId('model-url-load').click();
  await dialog.getByTestId('confirm-ok').click();
  await expect(page.getByTestId('model-ready')).toContainText('emojiworld 0.2.3');
  await expect(rows.filter({ hasText: otherModel })).toHaveAttribute('data-current', 'true');
  expect(new URL(page.url()).searchParams.get('model')).toBe(otherModel);

  // A link with ?model= on another origin asks too; cancelling keeps the bundled model.
  await page.goto(`/?backend=wasm&model=${encodeURIComponent(otherModel)}`);
  await expect(page.getByTestId('confirm-dialog')).toBeVisible();
  await page.getByTestId('confirm-cancel').click();
  await waitForModel(page);
  await expect(rows.filter({ hasText: 'bundled with the app' })).toHaveAttribute('data-current', 'true');
});

test('keyboard only: pick a gallery example, generate, read the answer', async ({ page }) => {
  await page.goto('/?backend=wasm');
  await waitForModel(page);
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? document.activeElement?.tagName);

  async function tabTo(testId: string, match?: (page: Page) => Promise<boolean>) {
    for (let i = 0; i < 120; i++) {
      await page.keyboard.press('Tab');
      if ((await focused()) === testId && (!match || (await match(page)))) return;
    }
    throw new Error(`Tab never reached ${testId}`);
  }

  await tabTo('gallery-example', async (p) =>
    p.evaluate(() => document.activeElement?.getAttribute('data-example') === 'binding-5way-1shot-000'),
  );
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('segment')).toHaveCount(12);
  await tabTo('generate');
  await page.keyboard.press('Enter');
  expect(await answer(page)).toBe('nobi.');
  // The answer region announces itself.
  await expect(page.getByTestId('answer')).toHaveAttribute('aria-live', 'polite');
});
