// The first answers of a fresh page, for two builds side by side: what the background warm-up
// after a WASM load buys (docs/BENCHMARKS.md, "Decode in the browser: the outputs").
//
//   npx tsx bench/first-answer.ts --before DIR --after DIR [--rounds 3] [--idle 3000] [--answers 3]
//                                 [--shots 0] [--port 4398] [--out FILE]
//
// DIR: `vite build --mode bench --outDir DIR` of each build. Per round and build: a fresh browser
// context loads the bundled model on WASM through the bench page, waits `--idle` ms (a visitor
// building a prompt), then asks `--answers` questions about one fresh noise image each (4 new
// tokens) and records each time to first token; the builds' order flips every round. With
// `--shots N`, each question is the bench's N-shot prompt (N + 1 fresh noise images; bench/pages/
// flamingo.ts `shots`, its `ttftFreshMs`). Prints the
// medians per answer and writes the raw figures as JSON; asserts nothing.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { chromiumLaunchOptions } from '../e2e/browser';
import { buildOrder, PAIRED_OPTIONS, pairedBuilds } from './paired';
import { startPreview } from './server';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    ...PAIRED_OPTIONS,
    idle: { type: 'string', default: '3000' },
    answers: { type: 'string', default: '3' },
    shots: { type: 'string', default: '0' },
    port: { type: 'string', default: '4398' },
  },
});
const builds = pairedBuilds(values, 'first-answer');
const rounds = Number(values.rounds);
const answers = Number(values.answers);
const shots = Number(values.shots);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await chromium.launch(chromiumLaunchOptions({ webgpu: false }));
const ttft: Record<keyof typeof builds, number[][]> = { before: [], after: [] };
try {
  for (let round = 0; round < rounds; round++) {
    for (const name of buildOrder(round)) {
      const server = await startPreview(builds[name], Number(values.port));
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${server.url}/bench/pages/flamingo.html`);
        await page.waitForFunction(() => 'flamingoBench' in window, undefined, { timeout: 60_000 });
        await page.evaluate(() => window.flamingoBench!.load('wasm'));
        await page.waitForTimeout(Number(values.idle));
        const run: number[] = [];
        for (let i = 0; i < answers; i++) {
          const seed = 1000 * round + i;
          run.push(
            shots > 0
              ? (await page.evaluate(([n, s]) => window.flamingoBench!.shots(n, 4, s), [shots, seed] as const)).ttftFreshMs
              : (await page.evaluate(([s]) => window.flamingoBench!.decodeImage('Output:', 4, s), [seed] as const)).ttftMs,
          );
        }
        ttft[name].push(run);
      } finally {
        await context.close();
        await server.close();
      }
    }
  }
} finally {
  await browser.close();
}

for (const name of ['before', 'after'] as const) {
  const perAnswer = Array.from({ length: answers }, (_, i) => Math.round(median(ttft[name].map((r) => r[i]))));
  console.log(`${name.padEnd(6)} TTFT ms, answers 1..${answers} (median of ${rounds}): ${perAnswer.join(', ')}`);
}
const result = { date: new Date().toISOString(), settings: { rounds, idleMs: Number(values.idle), answers, shots, builds }, ttft_ms: ttft };
if (values.out) await writeFile(values.out, `${JSON.stringify(result, null, 2)}\n`);
