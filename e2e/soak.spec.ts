// Load: 500 answers in a row in one studio page with memory growth under 10 % after warm-up, and
// 20 requests queued at once through the embed, all answered in order. Numbers go to
// test-results/soak.json (and the console); no wall time is asserted.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test, type Page } from '@playwright/test';
import { buildPrompt, FIXTURES, normalise, readFixture, waitForModel } from './helpers';
import { serveFolder } from './servers';

const OUT = 'test-results/soak.json';
const results: Record<string, unknown> = {};

function record(name: string, value: unknown) {
  results[name] = value;
  mkdirSync('test-results', { recursive: true });
  writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  console.log(name, JSON.stringify(value));
}

/** Total memory of the page and its workers (needs cross-origin isolation), after a GC. */
async function memoryMb(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const p = performance as Performance & { measureUserAgentSpecificMemory(): Promise<{ bytes: number }> };
    return (await p.measureUserAgentSpecificMemory()).bytes / 2 ** 20;
  });
}

async function answerOnce(page: Page) {
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('answer-panel')).toHaveAttribute('data-state', 'done');
}

test('500 answers in a row: memory grows less than 10 % after warm-up', async ({ page }) => {
  test.setTimeout(1_800_000);
  const fixture = readFixture();
  await page.goto('/?backend=wasm');
  await waitForModel(page, 'wasm');
  await buildPrompt(page, fixture);
  await page.getByTestId('max-new-tokens').fill('8');
  const WARM_UP = 20;
  const TOTAL = 500;
  for (let i = 0; i < WARM_UP; i++) await answerOnce(page);
  const before = await memoryMb(page);
  for (let i = WARM_UP; i < TOTAL; i++) await answerOnce(page);
  const after = await memoryMb(page);
  expect(normalise((await page.getByTestId('answer').textContent()) ?? '')).toBe(normalise(fixture.answer));
  const growth = (after - before) / before;
  record('studio', { answers: TOTAL, warmUp: WARM_UP, memoryMbAfterWarmUp: before, memoryMbAfterAll: after, growth });
  expect(growth).toBeLessThan(0.1);
});

test('20 requests queued at once through the embed are all answered, in order', async ({ page, baseURL }) => {
  test.setTimeout(600_000);
  const host = await serveFolder(fileURLToPath(new URL('../examples/embed-host/', import.meta.url)));
  try {
    await page.route('**/embed-config.json', (route) => route.fulfill({ json: { allowedOrigins: [host.origin] } }));
    const embed = `${new URL(baseURL!).origin}/embed.html?backend=wasm`;
    await page.goto(`${host.origin}/?embed=${encodeURIComponent(embed)}`);
    const log = () => page.evaluate(() => (window as unknown as { flamingoLog: { type: string; id?: string; text?: string }[] }).flamingoLog);
    await expect.poll(async () => (await log()).some((r) => r.type === 'flamingo:ready'), { timeout: 120_000 }).toBe(true);
    const fixture = readFixture();
    const segments = fixture.segments.map((s) => ('image' in s ? { png: readFileSync(join(FIXTURES, s.image)).toString('base64') } : s));
    const N = 20;
    await page.evaluate(
      ({ segments, N }) => {
        const send = (window as unknown as { flamingoSend: (m: unknown) => void }).flamingoSend;
        const prompt = segments.map((s) => ('text' in s ? s : { image: `data:image/png;base64,${s.png}` }));
        for (let i = 0; i < N; i++) send({ type: 'flamingo:generate', id: `q${i}`, segments: prompt, options: { maxNewTokens: 8 } });
      },
      { segments, N },
    );
    await expect.poll(async () => (await log()).filter((r) => r.type === 'flamingo:done').length, { timeout: 480_000 }).toBe(N);
    const done = (await log()).filter((r) => r.type === 'flamingo:done');
    expect(done.map((r) => r.id)).toEqual(Array.from({ length: N }, (_, i) => `q${i}`));
    for (const r of done) expect(normalise(r.text ?? '')).toBe(normalise(fixture.answer));
    expect((await log()).filter((r) => r.type === 'flamingo:error')).toEqual([]);
    record('embed', { queued: N, answeredInOrder: true });
  } finally {
    await host.close();
  }
});
