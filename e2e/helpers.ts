// What the PWA and embed specs share with app.spec.ts's way of driving a prompt: the 2-shot
// fixture (e2e/fixtures/), building it through the studio's UI, and generating.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as base, expect, type Page } from '@playwright/test';

/** Playwright's test, with any uncaught error on the page failing it. */
export const test = base.extend({
  page: async ({ page }, use) => {
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await use(page);
    expect(errors, 'uncaught errors on the page').toEqual([]);
  },
});

export const FIXTURES = process.env.E2E_FIXTURES_DIR ?? fileURLToPath(new URL('./fixtures/', import.meta.url));

export interface Fixture {
  segments: ({ image: string } | { text: string })[];
  answer: string;
}

export function readFixture(): Fixture {
  return JSON.parse(readFileSync(join(FIXTURES, 'two-shot.json'), 'utf8')) as Fixture;
}

/** Answers compare after lower-casing, trimming and dropping a final full stop (DESIGN.md). */
export function normalise(answer: string): string {
  return answer.toLowerCase().trim().replace(/\.$/, '').trim();
}

export async function waitForModel(page: Page, backend?: 'webgpu' | 'wasm') {
  const shown = page.getByTestId('backend');
  await expect(shown).toBeVisible();
  if (backend) await expect(shown).toHaveText(backend);
}

export async function buildPrompt(page: Page, fixture: Fixture) {
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

export async function generate(page: Page): Promise<string> {
  const button = page.getByTestId('generate');
  await expect(button).toBeEnabled();
  await button.click();
  await expect(page.getByTestId('answer-panel')).toHaveAttribute('data-state', 'done');
  await expect(page.getByTestId('ttft')).toBeVisible();
  await expect(page.getByTestId('tokens-per-second')).toBeVisible();
  return (await page.getByTestId('answer').textContent()) ?? '';
}
