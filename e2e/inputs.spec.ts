// Bad inputs in the studio: each file is refused by name with its reason before it is decoded,
// an oversized prompt is refused with the limit named, and the prompt the user built is intact.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { buildPrompt, FIXTURES, generate, normalise, readFixture, waitForModel } from './helpers';
import { pngHeaderOnly } from './fixtures/pngHeaderOnly';


test('bad image files are named with their reason; a huge prompt is refused; the prompt survives', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  const segments = page.getByTestId('segment');
  const valid = readFileSync(join(FIXTURES, (fixture.segments.find((s) => 'image' in s) as { image: string }).image));
  const bad = [
    { name: 'empty.png', buffer: Buffer.alloc(0), reason: 'is empty (0 bytes)' },
    { name: 'cut.png', buffer: valid.subarray(0, valid.length - 30), reason: 'truncated or damaged PNG' },
    { name: 'huge.png', buffer: pngHeaderOnly(10000, 10000), reason: '10000×10000 pixels' },
    { name: 'notes.png', buffer: Buffer.from('%PDF-1.7 not an image'), reason: 'is not an image' },
  ];
  for (const file of bad) {
    await page.getByTestId('image-input').setInputFiles({ name: file.name, mimeType: 'image/png', buffer: file.buffer });
    await expect(page.getByTestId('error').filter({ hasText: file.name })).toContainText(file.reason);
    await expect(segments).toHaveCount(fixture.segments.length);
  }
  // unusual Unicode in the query still answers
  const query = page.getByTestId('segment-text').last();
  await query.fill('Output:\u200f');
  expect((await generate(page)).length).toBeGreaterThanOrEqual(0);
  // a megabyte of text: refused with the limit, nothing lost, the next prompt answers
  await query.fill('Output: ' + 'a'.repeat(1 << 20));
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('error').filter({ hasText: 'characters of text' })).toContainText('at most 20,000');
  await expect(segments).toHaveCount(fixture.segments.length);
  await query.fill((fixture.segments[fixture.segments.length - 1] as { text: string }).text);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));
});
