// flamingo-web CLI: generate | eval | bench, on the bundled model unless --model DIR is given.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { textToPrompt } from '../engine/prompt';
import { parseEpisode, runEpisode, summarize, type Episode, type EpisodeIO, type EpisodeSegment } from '../engine/evaluate';
import { causeText, FlamingoError, pastTrainedContext } from '../engine/types';
import { runBench } from './bench';
import { optionFlag, positiveInt } from './flags';
import { BUNDLED_MODEL_DIR, createNodeEngine, readPng } from './node';

const USAGE: Record<string, string> = {
  generate: `flamingo-web generate --prompt "<image>Output: a cat.<|endofchunk|><image>Output:" --image a.png --image b.png
      [--prompt-file FILE]  the prompt from a file (past the shell's 128 KB argument limit)
      [--max-tokens N] [--beams N | --temperature T --top-k K --top-p P --seed S] [--model DIR] [--variant NAME]`,
  eval: `flamingo-web eval --episodes FILE.jsonl [--out report.json] [--limit N] [--beams N] [--permutations N] [--model DIR] [--variant NAME]
      lines that cannot be read are reported with their line number and skipped; the rest is evaluated`,
  bench: `flamingo-web bench [--out bench.json] [--shots 0,4,16,32] [--tokens N] [--repeats N] [--model DIR] [--variant NAME]`,
};
const USAGE_ALL = `Usage:\n${Object.values(USAGE).map((u) => `  ${u}`).join('\n')}\n\n--variant: float32 (default), one of the manifest's variants (e.g. q4), or auto.\nFLAMINGO_DEBUG=1 prints the cause of an error.`;

/** `--help` / `-h` anywhere after a command prints that command's usage. */
function wantsHelp(args: string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new FlamingoError(`Cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

async function generate(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      prompt: { type: 'string' }, image: { type: 'string', multiple: true, default: [] }, model: { type: 'string' },
      'max-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' },
      'top-p': { type: 'string' }, seed: { type: 'string' }, beams: { type: 'string' }, 'prompt-file': { type: 'string' },
      variant: { type: 'string' },
    },
  });
  if (values.prompt !== undefined && values['prompt-file'] !== undefined) throw new FlamingoError('give --prompt or --prompt-file, not both');
  if (values['prompt-file'] !== undefined) values.prompt = await readText(values['prompt-file'], 'prompt file');
  if (!values.prompt) throw new FlamingoError('generate needs --prompt or --prompt-file');
  const beams = optionFlag(values.beams, 'beams', 'beams');
  const options = {
    maxNewTokens: optionFlag(values['max-tokens'], 'max-tokens', 'maxNewTokens'),
    temperature: optionFlag(values.temperature, 'temperature', 'temperature'),
    topK: optionFlag(values['top-k'], 'top-k', 'topK'), topP: optionFlag(values['top-p'], 'top-p', 'topP'),
    seed: optionFlag(values.seed, 'seed', 'seed'), beams,
  };
  if (beams && beams > 1 && values.temperature) throw new FlamingoError('--beams and --temperature exclude each other: beam search is deterministic');
  const images = await Promise.all(values.image.map(readPng));
  const engine = await createNodeEngine(values.model ?? BUNDLED_MODEL_DIR, undefined, values.variant);
  const prompt = textToPrompt(values.prompt, images, engine.manifest.special_tokens);
  const done = await engine.generate(
    prompt,
    options,
    (e) => {
      if (e.type === 'token') process.stdout.write(e.text);
    },
  );
  process.stdout.write('\n');
  if (pastTrainedContext(done))
    process.stderr.write(`note: ${done.promptTokens + done.tokens} tokens, longer than the ${done.contextLength} the model was trained on; answers degrade\n`);
  process.stderr.write(`[${done.tokens} tokens, TTFT ${done.ttftMs.toFixed(1)} ms, ${done.tokensPerSecond.toFixed(1)} tokens/s, ${done.backend}]\n`);
}

/** A RICES pool: JSON lines of {"segments": [...]}, image paths relative to the pool file. */
async function readPool(path: string): Promise<EpisodeSegment[][]> {
  const text = await readText(path, 'RICES pool');
  const dir = dirname(path);
  return text.split('\n').filter((l) => l.trim()).map((line, i) => {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new FlamingoError(`${path}:${i + 1}: not valid JSON`, { cause: err });
    }
    const entry = parseEpisode(JSON.stringify({ id: `pool-${i}`, task: 'pool', answer: '', ...(raw as object) }), `${path}:${i + 1}`);
    return entry.segments.map((s) =>
      'image' in s ? { image: resolve(dir, s.image) } : 'video' in s ? { video: s.video.map((f) => resolve(dir, f)) } : s);
  });
}

async function evaluate(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      episodes: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' },
      beams: { type: 'string' }, permutations: { type: 'string' }, variant: { type: 'string' },
    },
  });
  const decoding = { beams: optionFlag(values.beams, 'beams', 'beams'), permutations: positiveInt(values.permutations, 'permutations') };
  if (!values.episodes) throw new FlamingoError('eval needs --episodes FILE.jsonl');
  const file = resolve(values.episodes);
  const text = await readText(file, 'episode file');
  const lines = text.split('\n').map((l, i) => [l, i + 1] as const).filter(([l]) => l.trim());
  // A broken line is reported and skipped; the rest is evaluated and the report says which were skipped.
  const episodes: Episode[] = [];
  const lineOf = new Map<Episode, number>();
  const skipped: { line: number; error: string }[] = [];
  for (const [l, n] of lines) {
    try {
      const episode = parseEpisode(l, `${file}:${n}`);
      episodes.push(episode);
      lineOf.set(episode, n);
    } catch (err) {
      skipped.push({ line: n, error: err instanceof Error ? err.message : String(err) });
      process.stderr.write(`flamingo-web: skipped ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  if (episodes.length === 0) throw new FlamingoError(`${file}: no readable episode (${skipped.length} broken line${skipped.length === 1 ? '' : 's'})`);
  const limit = positiveInt(values.limit, 'limit') ?? episodes.length;
  const engine = await createNodeEngine(values.model ?? BUNDLED_MODEL_DIR, undefined, values.variant);
  const base = dirname(file);
  const io: EpisodeIO = {
    loadImage: (p) => readPng(resolve(base, p)),
    loadPool: (p) => readPool(resolve(base, p)),
  };
  const results = [];
  for (const episode of episodes.slice(0, limit)) {
    try {
      results.push(await runEpisode(engine, episode, io, decoding));
    } catch (err) {
      // one unreadable image or an oversized prompt costs that episode, not the evaluation
      skipped.push({ line: lineOf.get(episode)!, error: `${episode.id}: ${err instanceof Error ? err.message : String(err)}` });
      process.stderr.write(`flamingo-web: skipped episode ${episode.id}: ${err instanceof Error ? err.message : String(err)}\n`);
      continue;
    }
    if (results.length % 50 === 0) process.stderr.write(`${results.length}/${Math.min(limit, episodes.length)} episodes\n`);
  }
  const report = { ...summarize(results), skipped };
  for (const [task, t] of Object.entries(report.tasks)) {
    const past = t.pastTrainedContext ? `  (${t.pastTrainedContext} prompts longer than the model was trained on)` : '';
    console.log(`${task.padEnd(32)} n=${String(t.n).padStart(4)}  accuracy ${(100 * t.accuracy).toFixed(1)}%${past}`);
  }
  if (values.out) {
    await mkdir(dirname(resolve(values.out)), { recursive: true });
    await writeFile(values.out, JSON.stringify({ variant: values.variant ?? 'float32', ...report }, null, 2) + '\n');
    console.log(`report written to ${values.out}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command in USAGE && wantsHelp(rest)) {
    console.log(`Usage:\n  ${USAGE[command]}`);
    return 0;
  }
  try {
    if (command === 'generate') await generate(rest);
    else if (command === 'eval') await evaluate(rest);
    else if (command === 'bench') await runBench(rest);
    else {
      const help = command === '--help' || command === '-h';
      if (help) console.log(USAGE_ALL);
      else console.error(command ? `Unknown command "${command}".\n${USAGE_ALL}` : USAGE_ALL);
      return help ? 0 : 2;
    }
    return 0;
  } catch (err) {
    // One line for the user; the cause only when asked for.
    const message = err instanceof FlamingoError ? err.message : err instanceof Error ? err.message : String(err);
    // node:util's parseArgs explains itself over several lines (how to pass a value that starts with a dash)
    const parsing = String((err as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
    console.error(`flamingo-web: ${parsing ? message.replace(/\n/g, ' ') : message.split('\n')[0]}`);
    if (parsing && command in USAGE) console.error(`Usage:\n  ${USAGE[command]}`);
    if (process.env.FLAMINGO_DEBUG) console.error(causeText(err));
    return 1;
  }
}
