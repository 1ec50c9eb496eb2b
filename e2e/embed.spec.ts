// /embed.html driven from another origin: the example host page (examples/embed-host/) served by
// a server started here, framing the embed from the preview server. embed-config.json is
// replaced per test (as a deployer would edit it, no rebuild); service workers are blocked so
// that page.route sees the embed's requests.
// Opened on its own (no frame), the embed says what it is and links to the studio.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AxeBuilder from '@axe-core/playwright';
import axe from 'axe-core';
import { test, expect, type Page } from '@playwright/test';
import { FIXTURES, normalise, readFixture } from './helpers';
import { CROSS_ORIGIN_ISOLATION, serveFolder, type StaticServer } from './servers';

test.use({ serviceWorkers: 'block' });

const WCAG_21_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];

const HOST_PAGES = fileURLToPath(new URL('../examples/embed-host/', import.meta.url));

interface Reply {
  type: string;
  id?: string | number | null;
  text?: string;
  message?: string;
  backend?: string;
  crossOriginIsolated?: boolean;
  model?: { name: string };
  stats?: { stopReason: string; tokens: number };
}

let host: StaticServer;
test.beforeAll(async () => {
  // ?isolated=1 makes the host page cross-origin isolated.
  host = await serveFolder(HOST_PAGES, {
    headers: (request) => (request.url?.includes('isolated=1') ? CROSS_ORIGIN_ISOLATION : {}),
  });
});
test.afterAll(async () => host?.close());

async function allowOrigins(page: Page, allowedOrigins: string[]) {
  await page.route('**/embed-config.json', (route) => route.fulfill({ json: { allowedOrigins } }));
}

async function openHost(page: Page, hostOrigin: string, embedOrigin: string, query = '') {
  await page.goto(`${hostOrigin}/?${query}embed=${encodeURIComponent(`${embedOrigin}/embed.html?backend=wasm`)}`);
}

const received = (page: Page) => page.evaluate(() => (window as unknown as { flamingoLog: Reply[] }).flamingoLog);

async function waitForReply(page: Page, match: (reply: Reply) => boolean): Promise<Reply> {
  await expect.poll(async () => (await received(page)).some(match), { timeout: 120_000, intervals: [50] }).toBe(true);
  return (await received(page)).find(match)!;
}

/** The fixture's images as base64, for page.evaluate to rebuild as Blobs there. */
function fixtureSegments() {
  return readFixture().segments.map((segment) =>
    'image' in segment ? { png: readFileSync(join(FIXTURES, segment.image)).toString('base64') } : segment,
  );
}

test('a host on another origin drives the embed: ready, queued requests answered in order, clear errors, Stop from the keyboard', async ({
  page,
  baseURL,
}) => {
  const embedOrigin = new URL(baseURL!).origin;
  const fixture = readFixture();
  await allowOrigins(page, [host.origin]);
  await openHost(page, host.origin, embedOrigin);

  const ready = await waitForReply(page, (reply) => reply.type === 'flamingo:ready');
  expect(ready).toMatchObject({ backend: 'wasm', crossOriginIsolated: false, model: { name: expect.any(String) } });
  expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(false);

  // Two past the prompt limits, then three 2-shot requests sent at once, images as a Blob, a data:
  // URL and an ImageBitmap, a fourth interrupted before it starts, and two malformed ones.
  await page.evaluate(async (segments) => {
    const send = (window as unknown as { flamingoSend: (message: unknown) => void }).flamingoSend;
    const blob = (png: string) => new Blob([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], { type: 'image/png' });
    const as = async (kind: 'blob' | 'data' | 'bitmap') =>
      Promise.all(
        segments.map(async (segment) => {
          if ('text' in segment) return segment;
          if (kind === 'blob') return { image: blob(segment.png) };
          if (kind === 'data') return { image: `data:image/png;base64,${segment.png}` };
          return { image: await createImageBitmap(blob(segment.png)) };
        }),
      );
    const [a, b, c] = [await as('blob'), await as('data'), await as('bitmap')];
    // past the prompt limits (src/engine/limits.ts): 100 images, a megabyte of text
    const image = (segments.find((segment) => 'png' in segment) as { png: string }).png;
    const many = Array.from({ length: 100 }, () => ({ image: `data:image/png;base64,${image}` }));
    send({ type: 'flamingo:generate', id: 'too-many-images', segments: [...many, { text: 'Output:' }] });
    send({ type: 'flamingo:generate', id: 'too-much-text', segments: [{ text: 'Output: ' + 'a'.repeat(1 << 20) }] });
    send({ type: 'flamingo:generate', id: 'a', segments: a, options: { maxNewTokens: 20 } });
    send({ type: 'flamingo:generate', id: 'b', segments: b });
    send({ type: 'flamingo:generate', id: 'c', segments: c, options: { maxNewTokens: 20 } });
    send({ type: 'flamingo:generate', id: 'd', segments: a });
    send({ type: 'flamingo:interrupt', id: 'd' });
    send({ type: 'flamingo:generate', id: 'bad-image', segments: [{ image: 42 }] });
    send({ type: 'flamingo:generate', id: 'bad-option', segments: [{ text: 'Output:' }], options: { temprature: 1 } });
  }, fixtureSegments());

  await waitForReply(page, (reply) => reply.type === 'flamingo:done' && reply.id === 'c');
  const replies = await received(page);
  const about = (id: string) => replies.flatMap((reply, index) => (reply.id === id ? [{ ...reply, index }] : []));
  for (const id of ['a', 'b', 'c']) {
    const done = about(id).find((reply) => reply.type === 'flamingo:done')!;
    expect(normalise(done.text!), `request ${id}`).toBe(normalise(fixture.answer));
    const streamed = about(id)
      .filter((reply) => reply.type === 'flamingo:token')
      .map((reply) => reply.text)
      .join('');
    expect(streamed).toBe(done.text);
  }
  // In order: everything about a before anything about b's generation, b before c.
  const last = (id: string) => Math.max(...about(id).map((reply) => reply.index));
  const first = (id: string) => Math.min(...about(id).filter((reply) => reply.type === 'flamingo:token').map((reply) => reply.index));
  expect(last('a')).toBeLessThan(first('b'));
  expect(last('b')).toBeLessThan(first('c'));
  expect(about('d')).toEqual([expect.objectContaining({ type: 'flamingo:error', message: 'Interrupted before it started.' })]);
  expect(about('bad-image')[0].message).toContain('segments[0].image must be a Blob, an ImageBitmap or a data: URL');
  expect(about('bad-option')[0].message).toContain('unknown option "temprature"');
  const tooMuchText = about('too-much-text')[0];
  expect(tooMuchText.type).toBe('flamingo:error');
  expect(tooMuchText.message).toMatch(/^The prompt has 1,048,584 characters of text; at most 20,000 \(this model was trained on \d+ tokens\)\.$/);
  const tooMany = about('too-many-images')[0];
  // refused by the embed's parser, before any image is decoded, in the engine's words
  expect(tooMany).toMatchObject({ type: 'flamingo:error', message: 'flamingo:generate: The prompt has 100 images and clips; at most 64 fit in one prompt.' });

  // The embed shows the last prompt and its answer.
  const embed = page.frameLocator('iframe');
  await expect(embed.getByTestId('embed-answer')).toHaveText(about('c').find((reply) => reply.type === 'flamingo:done')!.text!);
  await expect(embed.getByRole('img', { name: /Image \d of the prompt/ })).toHaveCount(3);
  await expect(embed.getByTestId('embed-answer')).toHaveAttribute('aria-live', 'polite');

  // Long answers, stopped: from the keyboard (Enter on Stop, then Escape), and by the host.
  const long = { maxNewTokens: 256, ignoreEndOfChunk: true, stopAtNewline: false };
  const stopped: Record<string, () => Promise<void>> = {
    enter: () => embed.getByTestId('embed-stop').press('Enter'),
    escape: () => embed.getByTestId('embed-answer').press('Escape'),
    host: () => page.evaluate(() => (window as unknown as { flamingoSend: (message: unknown) => void }).flamingoSend({ type: 'flamingo:interrupt', id: 'host' })),
  };
  for (const [id, stop] of Object.entries(stopped)) {
    await page.evaluate(
      ([id, options]) =>
        (window as unknown as { flamingoSend: (message: unknown) => void }).flamingoSend({
          type: 'flamingo:generate',
          id,
          segments: [{ text: 'Output: a red apple. Output: a red apple. Output:' }],
          options,
        }),
      [id, long] as const,
    );
    // As soon as it runs (Stop is enabled): on this machine 256 tokens take only seconds.
    await expect(embed.getByTestId('embed-stop')).toBeEnabled();
    await stop();
    const done = await waitForReply(page, (reply) => reply.type === 'flamingo:done' && reply.id === id);
    expect(done.stats, `stopped by ${id}`).toMatchObject({ stopReason: 'interrupted' });
    expect(done.stats!.tokens).toBeLessThan(256);
  }
});

test('opened on its own, not in a frame, the embed says what it is and links to the studio', async ({ page }) => {
  await page.goto('/embed.html');
  const note = page.getByTestId('embed-waiting-for-host');
  await expect(note).toContainText('another site shows it in a frame');
  await page.getByRole('link', { name: 'open the studio' }).click();
  await expect(page.getByRole('heading', { name: 'flamingo-web', level: 1 })).toBeVisible();
  await expect(page.getByTestId('gallery')).toBeVisible();
});

test('an origin not in embed-config.json gets no reply at all, only a console warning', async ({ page, baseURL }) => {
  const embedOrigin = new URL(baseURL!).origin;
  // Allowed: 127.0.0.1 at the host's port. The page comes from localhost at that port: another origin.
  await allowOrigins(page, [host.origin]);
  const rejectedOrigin = `http://localhost:${host.port}`;
  const warnings: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'warning') warnings.push(message.text());
  });
  await openHost(page, rejectedOrigin, embedOrigin);
  await expect(page.frameLocator('iframe').getByTestId('embed-backend')).toBeVisible({ timeout: 120_000 });
  await page.evaluate(() =>
    (window as unknown as { flamingoSend: (message: unknown) => void }).flamingoSend({
      type: 'flamingo:generate',
      id: 1,
      segments: [{ text: 'Output:' }],
    }),
  );
  await expect.poll(() => warnings.some((text) => text.includes(`ignored a request from ${rejectedOrigin}`))).toBe(true);
  await page.waitForTimeout(1000);
  expect(await received(page)).toEqual([]);
});

test('a cross-origin-isolated host with allow="cross-origin-isolated" gets an isolated embed ("*" in the allow-list)', async ({
  page,
  baseURL,
}) => {
  await allowOrigins(page, ['*']);
  await openHost(page, host.origin, new URL(baseURL!).origin, 'isolated=1&');
  expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
  const ready = await waitForReply(page, (reply) => reply.type === 'flamingo:ready');
  expect(ready).toMatchObject({ backend: 'wasm', crossOriginIsolated: true });
});

test('axe finds no WCAG 2.1 A/AA violation in the embed, with a prompt and an answer on screen', async ({ page, baseURL }) => {
  await allowOrigins(page, [host.origin]);
  await openHost(page, host.origin, new URL(baseURL!).origin);
  await waitForReply(page, (reply) => reply.type === 'flamingo:ready');
  await page.evaluate((segments) => {
    const blob = (png: string) => new Blob([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], { type: 'image/png' });
    (window as unknown as { flamingoSend: (message: unknown) => void }).flamingoSend({
      type: 'flamingo:generate',
      id: 1,
      segments: segments.map((segment) => ('text' in segment ? segment : { image: blob(segment.png) })),
    });
  }, fixtureSegments());
  await waitForReply(page, (reply) => reply.type === 'flamingo:done');
  const embed = page.frameLocator('iframe');
  await expect(embed.getByTestId('embed-stats')).toBeVisible();
  await expect(embed.getByTestId('embed-answer')).not.toBeEmpty();

  // The host page, with @axe-core/playwright.
  const hostResults = await new AxeBuilder({ page }).withTags(WCAG_21_AA).analyze();
  expect(hostResults.violations.map((violation) => violation.id)).toEqual([]);
  // The embed: @axe-core/playwright came back without a single node from inside the iframe (in
  // this Chromium), so axe-core itself runs in the embed's frame.
  const frame = page.frames().find((candidate) => new URL(candidate.url()).pathname === '/embed.html')!;
  await frame.evaluate(axe.source);
  const results = await frame.evaluate(
    (tags) => (window as unknown as { axe: typeof axe }).axe.run(document, { runOnly: { type: 'tag', values: tags } }),
    WCAG_21_AA,
  );
  expect(results.violations.map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.target).join(' ')}`)).toEqual([]);
  const checked = results.passes.flatMap((result) => result.nodes.map((node) => String(node.target)));
  expect(checked.some((target) => target.includes('output'))).toBe(true);
  expect(checked.some((target) => target.includes('img'))).toBe(true);
});
