// `npx tsx bench/startup-compare.ts --before DIR --after DIR [--rounds 3] [--warm 3] [--dwell 6000]
// [--port 4393] [--incognito] [--out FILE]`: start-up of two builds of the app (`vite build
// --outDir DIR`) served side by side and measured in alternation, visit by visit, so that both meet
// the same load on the machine. Each round opens one fresh Chromium profile per build (a real
// on-disk profile unless --incognito), then: cold visit, cold visit, warm visit, warm visit, …
// (`--warm` warm visits each; which build goes first flips every round). The first warm visit is
// reported apart from the later ones: only from the second on can V8's wasm code cache be there
// (the first visit's runtime came from the network, not from the service worker's Cache Storage). Prints the
// median of each phase and after/before ratios, overall and of the paired visits; numbers only.
import { chromium } from '@playwright/test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromiumLaunchOptions } from '../e2e/browser';
import { startupPhases } from './report';
import { buildOrder, PAIRED_OPTIONS, pairedBuilds } from './paired';
import { startPreview } from './server';
import { incognitoProfiles, newVisitor, type StartupSample, type StartupSettings } from './startup';

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
      ...PAIRED_OPTIONS,
      warm: { type: 'string', default: '3' },
      dwell: { type: 'string', default: '6000' },
      port: { type: 'string', default: '4393' },
      incognito: { type: 'boolean', default: false },
    },
  });
  const builds = pairedBuilds(values, 'startup-compare');
  const port = Number(values.port);
  const servers = [await startPreview(builds.before, port), await startPreview(builds.after, port + 1)];
  const browser = values.incognito ? await chromium.launch(chromiumLaunchOptions({ webgpu: false })) : undefined;
  const disk = diskProfiles();
  const kinds = ['cold', 'first warm visit', 'later warm visits'] as const;
  type Kind = (typeof kinds)[number];
  const results = { before: emptyKinds(), after: emptyKinds() };
  const load: number[] = [];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      const order = buildOrder(round);
      const newProfile = browser ? incognitoProfiles(browser) : disk.newProfile;
      const visitors = { before: await newVisitor(newProfile, Number(values.dwell)), after: await newVisitor(newProfile, Number(values.dwell)) };
      const url = { before: `${servers[0].url}/?backend=wasm`, after: `${servers[1].url}/?backend=wasm` };
      try {
        for (let v = 0; v <= Number(values.warm); v++) {
          const kind: Kind = v === 0 ? 'cold' : v === 1 ? 'first warm visit' : 'later warm visits';
          const line: string[] = [];
          for (const which of order) {
            const sample = v === 0 ? await visitors[which].visit(url[which]) : await visitors[which].revisit();
            results[which][kind].push(sample);
            line.push(`${which} ${Math.round(sample.readyMs)}`);
          }
          load.push(loadavg()[0]);
          console.log(`round ${round + 1}, ${kind}: ${line.join(', ')} ms (load ${loadavg()[0].toFixed(1)})`);
        }
      } finally {
        await visitors.before.close();
        await visitors.after.close();
      }
    }
  } finally {
    await browser?.close();
    await disk.cleanUp();
    for (const server of servers) await server.close();
  }
  console.log(`\nmedians (ms), load average ${Math.min(...load).toFixed(1)}-${Math.max(...load).toFixed(1)}; spans on the worker's clock`);
  const phases: Record<string, { before: Phases; after: Phases; pairedReadyRatio: number | null }> = {};
  for (const kind of kinds) {
    const before = startupPhases(results.before[kind]);
    const after = startupPhases(results.after[kind]);
    const pairedReadyRatio = pairedRatio(results.before[kind], results.after[kind]);
    phases[kind] = { before, after, pairedReadyRatio };
    printComparison(kind, before, after);
    console.log(`  median of the paired visits' ready after/before: ${pairedReadyRatio ?? '—'}`);
  }
  if (values.out) await writeFile(values.out, JSON.stringify({ builds, load, phases, samples: results }, null, 2) + '\n');
}

function emptyKinds(): Record<'cold' | 'first warm visit' | 'later warm visits', StartupSample[]> {
  return { cold: [], 'first warm visit': [], 'later warm visits': [] };
}

/** Median over visit pairs (same round, same visit) of after's ready time over before's. */
function pairedRatio(before: StartupSample[], after: StartupSample[]): number | null {
  const ratios = before.map((b, i) => after[i].readyMs / b.readyMs).sort((x, y) => x - y);
  return ratios.length ? Number(ratios[Math.floor(ratios.length / 2)].toFixed(2)) : null;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : String(error));
  process.exit(1);
});
