// `npx tsx bench/startup-compare.ts --before DIR --after DIR [--rounds 3] [--warm 2] [--dwell 5000]
// [--port 4393] [--incognito] [--out FILE]`: start-up of two builds of the app (`vite build
// --outDir DIR`) served side by side and measured in alternation (round r: before, after; the
// order flips every round), so that both meet the same load on the machine. Each round is one cold
// visit per build in a fresh Chromium profile (a real on-disk profile unless --incognito) and
// `--warm` reloads of it. Prints the median of each phase and after/before ratios; numbers only.
import { chromium } from '@playwright/test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromiumLaunchOptions } from '../e2e/browser';
import { startupPhases } from './report';
import { startPreview } from './server';
import { incognitoProfiles, measureStartup, type StartupResult, type StartupSettings } from './startup';

type Phases = ReturnType<typeof startupPhases>;

/** Fresh on-disk profiles: the HTTP cache, Cache Storage and code caches behave as for a visitor. */
function diskProfiles(): { newProfile: StartupSettings['newProfile']; cleanUp: () => Promise<void> } {
  const dirs: string[] = [];
  return {
    async newProfile() {
      const dir = await mkdtemp(join(tmpdir(), 'flamingo-startup-'));
      dirs.push(dir);
      return chromium.launchPersistentContext(dir, chromiumLaunchOptions({ webgpu: false }));
    },
    cleanUp: async () => void (await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))),
  };
}

function flatten(p: Phases): Record<string, number | null> {
  const { sessions_ms, ...rest } = p;
  return { ...rest, ...Object.fromEntries(Object.entries(sessions_ms).map(([g, ms]) => [`session ${g}`, ms])) };
}

function printComparison(kind: string, before: Phases, after: Phases): void {
  const b = flatten(before);
  const a = flatten(after);
  console.log(`\n${kind}`.padEnd(34) + 'before'.padStart(10) + 'after'.padStart(10) + 'after/before'.padStart(14));
  for (const key of Object.keys({ ...b, ...a })) {
    const ratio = b[key] && a[key] !== null && a[key] !== undefined ? (a[key]! / b[key]!).toFixed(2) : '—';
    console.log(`  ${key}`.padEnd(34) + String(b[key] ?? '—').padStart(10) + String(a[key] ?? '—').padStart(10) + ratio.padStart(14));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      before: { type: 'string' },
      after: { type: 'string' },
      rounds: { type: 'string', default: '3' },
      warm: { type: 'string', default: '2' },
      dwell: { type: 'string', default: '5000' },
      port: { type: 'string', default: '4393' },
      incognito: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  if (!values.before || !values.after) throw new Error('startup-compare: --before DIR and --after DIR are required');
  const builds = { before: resolve(values.before), after: resolve(values.after) };
  const port = Number(values.port);
  const servers = [await startPreview(builds.before, port), await startPreview(builds.after, port + 1)];
  const browser = values.incognito ? await chromium.launch(chromiumLaunchOptions({ webgpu: false })) : undefined;
  const disk = diskProfiles();
  const results: Record<'before' | 'after', StartupResult> = { before: { cold: [], warm: [] }, after: { cold: [], warm: [] } };
  const load: number[] = [];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      const order = round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const);
      for (const which of order) {
        const server = servers[which === 'before' ? 0 : 1];
        const r = await measureStartup({
          url: `${server.url}/?backend=wasm`,
          coldRuns: 1,
          warmRuns: Number(values.warm),
          dwellMs: Number(values.dwell),
          newProfile: browser ? incognitoProfiles(browser) : disk.newProfile,
        });
        results[which].cold.push(...r.cold);
        results[which].warm.push(...r.warm);
        load.push(loadavg()[0]);
        const show = (xs: { readyMs: number }[]) => xs.map((x) => Math.round(x.readyMs)).join(' / ');
        console.log(`round ${round + 1} ${which}: cold ${show(r.cold)}, warm ${show(r.warm)} ms (load ${loadavg()[0].toFixed(1)})`);
      }
    }
  } finally {
    await browser?.close();
    await disk.cleanUp();
    for (const server of servers) await server.close();
  }
  const phases = {
    before: { cold: startupPhases(results.before.cold), warm: startupPhases(results.before.warm) },
    after: { cold: startupPhases(results.after.cold), warm: startupPhases(results.after.warm) },
  };
  console.log(`\nmedians (ms), load average ${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}; spans on the worker's clock`);
  printComparison('cold', phases.before.cold, phases.after.cold);
  printComparison('warm', phases.before.warm, phases.after.warm);
  if (values.out) await writeFile(values.out, JSON.stringify({ builds, load, phases, samples: results }, null, 2) + '\n');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : String(error));
  process.exit(1);
});
