// Bad inputs in the studio: each file is refused by name with its reason before it is decoded,
// an oversized prompt is refused with the limit named, and the prompt the user built is intact.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { buildPrompt, FIXTURES, generate, normalise, readFixture, waitForModel } from './helpers';
import { pngHeaderOnly } from './fixtures/pngHeaderOnly';
import { withExifOrientation } from './fixtures/exifOrientation';
import { PNG } from 'pngjs';


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
  // 100 images: refused with the limit when Generate is pressed; the images stay in the prompt
  const many = Array.from({ length: 100 }, (_, i) => ({ name: `copy-${i}.png`, mimeType: 'image/png', buffer: valid }));
  await page.getByTestId('image-input').setInputFiles(many);
  await expect(segments).toHaveCount(fixture.segments.length + 100);
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('error').filter({ hasText: 'images and clips' })).toContainText(
    `The prompt has ${fixture.segments.filter((s) => 'image' in s).length + 100} images and clips; at most 64 fit in one prompt.`,
  );
  await expect(segments).toHaveCount(fixture.segments.length + 100);
});

test('EXIF-rotated images are decoded upright: a phone photo (JPEG, orientation 6) keeps its shape; a PNG turns as in the CLI', async ({ page }) => {
  await page.goto('/?backend=wasm');
  // A phone's portrait photo: stored 1600×800 (red left, blue right) by the browser's JPEG encoder, orientation 6.
  const stored = await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(1600, 800);
    const context = canvas.getContext('2d')!;
    context.fillStyle = 'rgb(230, 30, 30)';
    context.fillRect(0, 0, 800, 800);
    context.fillStyle = 'rgb(30, 30, 230)';
    context.fillRect(800, 0, 800, 800);
    return Array.from(new Uint8Array(await (await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.9 })).arrayBuffer()));
  });
  const photo = withExifOrientation(Buffer.from(stored), 6);
  await page.getByTestId('image-input').setInputFiles({ name: 'portrait.jpg', mimeType: 'image/jpeg', buffer: photo });
  await page.getByTestId('add-text').click();
  await page.getByTestId('segment-text').last().fill('Output: red over blue.');
  await page.getByTestId('image-input').setInputFiles(join(FIXTURES, 'two-shot-1.png')); // the query: the photo is an example
  // The library keeps an example's image as the studio decoded it (a JPEG is decoded and stored as PNG).
  await page.getByTestId('library-add').click({ timeout: 30_000 });
  const kept = page.getByTestId('library-list').getByRole('img');
  await expect(kept).toHaveCount(1);
  const seen = await kept.evaluate(async (image: HTMLImageElement) => {
    await image.decode();
    const canvas = new OffscreenCanvas(image.naturalWidth, image.naturalHeight);
    const context = canvas.getContext('2d')!;
    context.drawImage(image, 0, 0);
    const rgb = (x: number, y: number) => Array.from(context.getImageData(x, y, 1, 1).data.slice(0, 3));
    return { width: image.naturalWidth, height: image.naturalHeight, top: rgb(256, 200), bottom: rgb(256, 800) };
  });
  // upright (800×1600), scaled to at most 1024 a side with its aspect kept: 512×1024, red above blue
  expect([seen.width, seen.height]).toEqual([512, 1024]);
  expect(seen.top[0] - seen.top[2], `top ${seen.top}`).toBeGreaterThan(150);
  expect(seen.bottom[2] - seen.bottom[0], `bottom ${seen.bottom}`).toBeGreaterThan(150);

  // A PNG's eXIf orientation: the browser applies it too, so the CLI (pngjs) turns the pixels itself.
  const png = new PNG({ width: 40, height: 20 });
  for (let i = 0; i < 40 * 20; i++) png.data.set([...(i % 40 < 20 ? [230, 30, 30] : [30, 30, 230]), 255], i * 4);
  const turned = await page.evaluate(async (base64) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }), { imageOrientation: 'from-image' });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext('2d')!;
    context.drawImage(bitmap, 0, 0);
    return { width: bitmap.width, height: bitmap.height, top: context.getImageData(10, 5, 1, 1).data[0] };
  }, withExifOrientation(PNG.sync.write(png), 6).toString('base64'));
  expect(turned).toEqual({ width: 20, height: 40, top: 230 });
});
