// `npm run bench [-- --out FILE] [--tokens 32] [--repeats 3] [--rounds 9] [--shots 0,4,8,16,32] [--shot-repeats 7] [--cold 2]
// [--warm 3] [--dwell 5000] [--webgpu] [--no-build]`: the whole comparison in one run, on this machine.
//   1. the bench build (app + bench pages, `vite build --mode bench` → dist-bench/), and our LM
//      exported for transformers.js (models/tools/export_lm_transformersjs.py) into it;
//   2. onnxruntime-node: the CLI bench (src/cli/bench.ts);
//   3. Chromium (bench/browser.ts): app start-up cold and warm, decode, shots, memory, then the
//      text-prompt decode in turns, round by round: ours, transformers.js on the same LM,
//      onnxruntime-node (this process) and PyTorch eager with its KV cache
//      (models/tools/bench_pytorch.py --serve, 2 threads), same prompt, same token count.
// Prints a table and writes JSON (default bench/results.json). Numbers only: nothing is asserted
// about speed. Every ratio is of figures taken within this one run.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem, tmpdir, type as osType, release } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { runBench } from '../src/cli/bench';
import { BUNDLED_MODEL_DIR, createNodeEngine, REPO_ROOT } from '../src/cli/node';
import { runBrowserBench, type BrowserResult } from './browser';
import { textPrompt } from './prompt';
import { buildReport, printReport, simdOf } from './report';
import { startPreview } from './server';

const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const PROMPT_TOKENS = 64;

function run(command: string, args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new Error(`${what}: could not run ${command}: ${error.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`${what} failed (exit ${code}):\n${stderr.trim().split('\n').slice(-8).join('\n')}`)),
    );
  });
}

interface PytorchServer {
  runtime: string;
  /** One decode: tokens/s. */
  decode(): Promise<number>;
  close(): void;
}

/** models/tools/bench_pytorch.py --serve: warmed up once, then one decode per line sent. */
async function startPytorch(args: string[]): Promise<PytorchServer> {
  const child = spawn(PYTHON, ['models/tools/bench_pytorch.py', ...args, '--serve'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.on('error', (error) => (stderr += `could not run ${PYTHON}: ${error.message}`)); // stdout then ends: nextLine says so
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`PyTorch bench ended (exit ${child.exitCode}):\n${stderr.trim().split('\n').slice(-8).join('\n')}`);
    return JSON.parse(value) as Record<string, unknown>;
  };
  const ready = await nextLine();
  return {
    runtime: String(ready.ready),
    async decode() {
      child.stdin.write('run\n');
      return Number((await nextLine()).tokens_per_s);
    },
    close: () => child.stdin.end(),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      out: { type: 'string', default: join(REPO_ROOT, 'bench/results.json') },
      tokens: { type: 'string', default: '32' },
      repeats: { type: 'string', default: '3' },
      // rounds of the text-prompt decode in turns (bench/browser.ts, DecodeRound)
      rounds: { type: 'string', default: '9' },
      shots: { type: 'string', default: '0,4,8,16,32' },
      'shot-repeats': { type: 'string', default: '7' },
      cold: { type: 'string', default: '2' },
      warm: { type: 'string', default: '3' },
      // ms on the page after each start-up, before the next visit (bench/startup.ts)
      dwell: { type: 'string', default: '5000' },
      port: { type: 'string', default: '4371' },
      webgpu: { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
    },
  });
  const newTokens = Number(values.tokens);
  const repeats = Number(values.repeats);
  const shots = values.shots.split(',').map(Number);
  if (!shots.includes(0)) throw new Error('bench: --shots must include 0 (the ratios need it)');
  const date = new Date().toISOString();
  const distDir = join(REPO_ROOT, 'dist-bench');

  if (!values['no-build']) {
    console.log('building the app and the bench pages (vite build --mode bench) …');
    await run(process.execPath, [join(REPO_ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--mode', 'bench'], 'vite build');
    console.log('exporting our LM for transformers.js …');
    await run(PYTHON, ['models/tools/export_lm_transformersjs.py', '--out', join(distDir, 'bench-models/flamingo-lm')], 'the transformers.js export');
  }

  const node = await createNodeEngine(BUNDLED_MODEL_DIR);
  const prompt = await textPrompt(BUNDLED_MODEL_DIR, node.manifest, PROMPT_TOKENS);

  console.log('onnxruntime-node: CLI bench …');
  const scratch = await mkdtemp(join(tmpdir(), 'flamingo-bench-'));
  let cli: unknown;
  let browser: BrowserResult;
  let pytorch: PytorchServer | undefined;
  try {
    const cliOut = join(scratch, 'cli.json');
    await runBench(['--shots', shots.join(','), '--tokens', String(newTokens), '--repeats', String(repeats), '--out', cliOut]);
    cli = JSON.parse(await readFile(cliOut, 'utf8'));

    // The text-prompt decode of onnxruntime-node and PyTorch: warmed up here, timed in turns with
    // the browser's (bench/browser.ts, DecodeRound).
    const options = { maxNewTokens: newTokens, ignoreEndOfChunk: true, stopAtNewline: false };
    const nodeDecode = async () => {
      const done = await node.generate([{ text: prompt.text }], options, () => undefined);
      if (done.promptTokens !== PROMPT_TOKENS || done.tokens !== newTokens) throw new Error('bench: the node decode has the wrong length');
      return done.tokensPerSecond;
    };
    for (let r = 0; r < 20; r++) await nodeDecode();

    console.log('PyTorch eager reference …');
    const promptFile = join(scratch, 'prompt.txt');
    await writeFile(promptFile, prompt.text);
    pytorch = await startPytorch(['--prompt_file', promptFile, '--new_tokens', String(newTokens), '--threads', '2', '--expect_tokens', String(PROMPT_TOKENS)]);

    console.log('Chromium: start-up, decode, shots, transformers.js …');
    const server = await startPreview(distDir, Number(values.port));
    try {
      browser = await runBrowserBench({
        baseUrl: server.url,
        promptText: prompt.text,
        promptIds: prompt.ids,
        newTokens,
        repeats,
        rounds: Number(values.rounds),
        shots,
        shotRepeats: Number(values['shot-repeats']),
        coldRuns: Number(values.cold),
        warmRuns: Number(values.warm),
        startupDwellMs: Number(values.dwell),
        webgpu: values.webgpu,
        rivals: { node: nodeDecode, pytorch: pytorch.decode },
      });
    } finally {
      await server.close();
    }
  } finally {
    pytorch?.close();
    await node.release();
    await rm(scratch, { recursive: true, force: true });
  }

  const report = buildReport({
    date,
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGb: Math.round(totalmem() / 2 ** 30),
      os: `${osType()} ${release()}`,
      simd: simdOf(await readFile('/proc/cpuinfo', 'utf8').catch(() => '')),
      node: process.version,
    },
    settings: { promptTokens: PROMPT_TOKENS, newTokens, repeats, rounds: Number(values.rounds), shotRepeats: Number(values['shot-repeats']), shots, promptText: prompt.text },
    cli,
    pytorchRuntime: pytorch!.runtime,
    browser,
  });
  printReport(report);
  await writeFile(values.out, JSON.stringify(report, null, 2) + '\n');
  console.log(`written to ${values.out}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
