// The pictures: after an answer, its gates and each token's cross-attention carried onto the image
// it looked at (a heatmap). A screenshot goes to docs/attention.png for the README.
import { expect, test } from '@playwright/test';
import { buildPrompt, generate, normalise, readFixture, waitForModel } from './helpers';

test('an answer shows its gates and, per token, where it looked', async ({ page }) => {
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  expect(normalise(await generate(page))).toBe(normalise(fixture.answer));

  await page.getByTestId('show-pictures').click();
  const gates = page.getByTestId('gates');
  await expect(gates.locator('tbody tr')).toHaveCount(4); // the bundled model gates every layer
  const tokens = page.getByTestId('picture-token');
  await expect(tokens.first()).toBeVisible();
  expect(await tokens.count()).toBeGreaterThan(0);
  await tokens.first().click();
  await expect(tokens.first()).toHaveAttribute('aria-pressed', 'true');
  const heatmap = page.getByTestId('heatmap');
  await expect(heatmap).toHaveAttribute('aria-label', /image 3; strongest in row \d, column \d/);
  // the overlay is drawn: the canvas is not blank and carries red beyond the image's own pixels
  const drawn = await heatmap.evaluate((canvas: HTMLCanvasElement) => {
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let opaque = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) opaque++;
    return opaque;
  });
  expect(drawn).toBeGreaterThan(1000);
  await page.getByLabel('Layer').selectOption('0');
  await expect(heatmap).toBeVisible();
  const offlineNotice = page.getByRole('button', { name: 'OK' });
  if (await offlineNotice.isVisible()) await offlineNotice.click(); // the PWA's "works offline" toast
  await page.getByTestId('pictures').screenshot({ path: 'docs/attention.png' });
});
