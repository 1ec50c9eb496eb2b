// A converted model folder too big for `npm run bench` or the tests (OpenFlamingo-3B-shaped, from
// models/tools/openflamingo_random.py) in Chromium, WASM, through the app's own worker:
//
//   npx tsx bench/openflamingo.ts --model DIR [--variant q4] [--tokens 4] [--runs 2] [--warm]
//                                 [--profile EMPTY_DIR] [--no-build] [--out FILE]
//
// The bench build (`vite build --mode bench`) on `vite preview`; the folder from a second local
// server (another origin, as `?model=` would fetch it); a fresh browser profile (off the record, or
// on disk in --profile, which must be empty), so the first load
// downloads every file into IndexedDB (sha256 checked) and starts the sessions; `--warm` reloads the
// page and loads again from IndexedDB. Then `--runs` prompts of one fresh noise image and "Output:",
// `--tokens` new tokens each. Memory: the renderer processes' resident set (page and worker live
// there), sampled from /proc every 250 ms, and the page's measureUserAgentSpecificMemory. Prints
// JSON (and writes it to --out); asserts nothing about speed.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { chromiumLaunchOptions } from '../e2e/browser';
import { serveFolder } from '../e2e/servers';
import { REPO_ROOT } from '../src/cli/node';
import { startPreview } from './server';

/** Resident memory of every renderer process under `ancestor`, MB (Linux /proc). */
function rendererRssMb(ancestor: number): number {
  const parents = new Map<number, number>();
  const renderers = new Set<number>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parents.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) renderers.add(pid);
    } catch {
      // the process ended while we looked
    }
  }
  const under = (pid: number): boolean => {
    for (let p = parents.get(pid); p; p = parents.get(p)) if (p === ancestor) return true;
    return false;
  };
  let kb = 0;
  for (const pid of renderers) {
    if (!under(pid)) continue;
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // ended
    }
  }
  return kb / 1024;
}

/** The highest reading of `sample` while `work` runs. */
async function peakDuring<T>(sample: () => number, work: () => Promise<T>): Promise<{ result: T; peakMb: number }> {
  let peakMb = sample();
  const timer = setInterval(() => (peakMb = Math.max(peakMb, sample())), 250);
  try {
    const result = await work();
    return { result, peakMb: Math.max(peakMb, sample()) };
  } finally {
    clearInterval(timer);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      model: { type: 'string' },
      variant: { type: 'string', default: 'q4' },
      tokens: { type: 'string', default: '4' },
      runs: { type: 'string', default: '2' },
      text: { type: 'string', default: 'Output:' },
      port: { type: 'string', default: '4381' },
      warm: { type: 'boolean', default: false },
      profile: { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  if (!values.model) throw new Error('bench/openflamingo.ts: --model DIR (a model folder with manifest.json) is required');
  const modelDir = resolve(values.model);
  const manifest = JSON.parse(readFileSync(`${modelDir}/manifest.json`, 'utf8')) as { name: string };
  if (!values['no-build']) execFileSync('npx', ['vite', 'build', '--mode', 'bench'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const preview = await startPreview(resolve(REPO_ROOT, 'dist-bench'), Number(values.port));
  const folder = await serveFolder(modelDir, {
    headers: () => ({ 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' }),
  });
  // --profile DIR: a profile on disk, as a visitor's browser has; else an off-the-record context
  const context = values.profile
    ? await chromium.launchPersistentContext(resolve(values.profile), chromiumLaunchOptions({ webgpu: false }))
    : await (await chromium.launch(chromiumLaunchOptions({ webgpu: false }))).newContext();
  const rss = () => rendererRssMb(process.pid); // Playwright starts Chromium as a child of this process
  try {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') console.error(`[page] ${message.text()}`);
    });
    const open = async () => {
      await page.goto(`${preview.url}/bench/pages/flamingo.html`);
      await page.waitForFunction(() => 'flamingoBench' in window, undefined, { timeout: 60_000 });
    };
    const model = { url: `${folder.origin}/`, variant: values.variant };
    const load = () => page.evaluate((m) => window.flamingoBench!.load('wasm', m), model);
    const uaMemoryMb = () =>
      Promise.race([page.evaluate(() => window.flamingoBench!.memoryMb()), new Promise<null>((r) => setTimeout(() => r(null), 60_000))]);

    await open();
    console.error(`loading ${manifest.name} (${values.variant}) into a fresh profile …`);
    let cold;
    try {
      cold = await peakDuring(rss, load);
    } catch (error) {
      // a model that cannot fit is refused before any download: that message is the result
      const refused = { model: manifest.name, variant: values.variant, refused: error instanceof Error ? error.message : String(error) };
      console.log(JSON.stringify(refused, null, 2));
      if (values.out) writeFileSync(values.out, JSON.stringify(refused, null, 2) + '\n');
      return;
    }
    const afterLoad = { rssMb: rss(), uaMemoryMb: await uaMemoryMb() };
    let warm;
    if (values.warm) {
      await open();
      console.error('loading again from IndexedDB …');
      warm = await peakDuring(rss, load);
    }
    const decode = [];
    for (let run = 0; run < Number(values.runs); run++) {
      console.error(`decode ${run + 1}: one image, ${values.tokens} tokens …`);
      const text = values.text;
      const { result, peakMb } = await peakDuring(rss, () =>
        page.evaluate(([t, n, seed]) => window.flamingoBench!.decodeImage(t, n, seed), [text, Number(values.tokens), run + 1] as const),
      );
      decode.push({ ...result, rendererRssPeakMb: peakMb });
    }
    const report = {
      date: new Date().toISOString(),
      machine: { cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`, memoryGb: totalmem() / 2 ** 30, loadAverage: loadavg() },
      chromium: context.browser()?.version() ?? 'persistent context',
      profile: values.profile ? 'on disk (--profile)' : 'off the record (Playwright newContext)',
      model: manifest.name,
      variant: cold.result.variant,
      backend: cold.result.backend,
      cold: { ...cold.result, rendererRssPeakMb: cold.peakMb },
      afterLoad,
      warm: warm && { ...warm.result, rendererRssPeakMb: warm.peakMb },
      decode,
      afterDecode: { rssMb: rss(), uaMemoryMb: await uaMemoryMb() },
    };
    const json = JSON.stringify(report, null, 2);
    console.log(json);
    if (values.out) writeFileSync(values.out, json + '\n');
  } finally {
    await context.close();
    await context.browser()?.close();
    await folder.close();
    await preview.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
