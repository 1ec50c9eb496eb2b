// Few-shot evaluation on episode files (DESIGN.md, "Episode files"): open-ended episodes are
// generated greedily, close-ended ones (with `options`) ranked by log-likelihood.
import type { FlamingoEngine } from './engine';
import { selectByRices } from './rices';
import type { Prompt, RgbaImage } from './types';
import { FlamingoError, pastTrainedContext } from './types';

export type EpisodeSegment = { image: string } | { video: string[] } | { text: string };

export interface Episode {
  id: string;
  task: string;
  segments: EpisodeSegment[];
  answer: string;
  options?: string[];
  /**
   * Supports chosen at evaluation time by RICES (an extension of DESIGN.md's format): the `shots`
   * entries of the pool file (JSON lines of {"segments": [...]}, relative to the episode file)
   * nearest the query's first image go before `segments`, the most similar last.
   */
  rices?: { shots: number; pool: string };
}

export interface EpisodeIO {
  loadImage(path: string): Promise<RgbaImage>;
  loadPool(path: string): Promise<EpisodeSegment[][]>;
}

export interface EpisodeResult {
  id: string;
  task: string;
  answer: string;
  prediction: string;
  correct: boolean;
  promptTokens: number;
  /** The prompt, with the generated answer where one is generated, ran past the longest sequence the model was trained on (manifest lm.context_length). */
  pastTrainedContext: boolean;
  /** With RICES: the pool entries put before the query (0-based, in file order, blank lines skipped), least to most similar. */
  supports?: number[];
}

export interface EvalReport {
  /** Per task: episodes, accuracy, and how many prompts ran past the trained context. */
  tasks: Record<string, { n: number; accuracy: number; pastTrainedContext: number }>;
  episodes: EpisodeResult[];
}

/** Lower-case, trim, drop a final full stop (DESIGN.md). */
export function normalizeAnswer(s: string): string {
  return s.trim().toLowerCase().replace(/\.$/, '').trim();
}

export function parseEpisode(line: string, where: string): Episode {
  let e: Partial<Episode>;
  try {
    e = JSON.parse(line) as Partial<Episode>;
  } catch (err) {
    throw new FlamingoError(`${where}: not valid JSON`, { cause: err });
  }
  if (typeof e.id !== 'string' || typeof e.task !== 'string' || typeof e.answer !== 'string' || !Array.isArray(e.segments)) {
    throw new FlamingoError(`${where}: an episode needs "id", "task", "answer" (strings) and "segments" (a list)`);
  }
  for (const s of e.segments) {
    const ok = s && typeof s === 'object' &&
      (typeof (s as { image?: unknown }).image === 'string' ||
        typeof (s as { text?: unknown }).text === 'string' ||
        (Array.isArray((s as { video?: unknown }).video) && (s as { video: unknown[] }).video.every((f) => typeof f === 'string')));
    if (!ok) throw new FlamingoError(`${where}: each segment is {"image": path}, {"video": [paths]} or {"text": string}`);
  }
  if (e.options !== undefined && (!Array.isArray(e.options) || !e.options.every((o) => typeof o === 'string'))) {
    throw new FlamingoError(`${where}: "options" must be a list of strings`);
  }
  if (e.rices !== undefined && !(Number.isInteger(e.rices?.shots) && e.rices.shots >= 0 && typeof e.rices?.pool === 'string')) {
    throw new FlamingoError(`${where}: "rices" must be {"shots": a count, "pool": a file}`);
  }
  return e as Episode;
}

async function toPrompt(segments: EpisodeSegment[], loadImage: EpisodeIO['loadImage']): Promise<Prompt> {
  const prompt: Prompt = [];
  for (const s of segments) {
    if ('image' in s) prompt.push({ image: await loadImage(s.image) });
    else if ('video' in s) prompt.push({ video: await Promise.all(s.video.map(loadImage)) });
    else prompt.push({ text: s.text });
  }
  return prompt;
}

function firstVisual(prompt: Prompt, what: string): RgbaImage[] {
  for (const s of prompt) {
    if ('image' in s) return [s.image];
    if ('video' in s) return s.video;
  }
  throw new FlamingoError(`${what} has no image or clip to compare by RICES`);
}

// Pools are shared by every episode of a task: decode their images once per IO object.
const pools = new WeakMap<EpisodeIO, Map<string, Promise<{ prompts: Prompt[]; visuals: RgbaImage[][] }>>>();

function loadPool(path: string, io: EpisodeIO) {
  let byPath = pools.get(io);
  if (!byPath) pools.set(io, (byPath = new Map()));
  let pool = byPath.get(path);
  if (!pool) {
    pool = (async () => {
      const prompts = await Promise.all((await io.loadPool(path)).map((segs) => toPrompt(segs, io.loadImage)));
      return { prompts, visuals: prompts.map((p, i) => firstVisual(p, `${path} entry ${i + 1}`)) };
    })();
    byPath.set(path, pool);
  }
  return pool;
}

/** How answers are produced: open-ended by greedy or beam search, close-ended optionally ensembled. */
export interface EpisodeDecoding {
  maxNewTokens?: number;
  beams?: number;
  /** Prompt ensembling over this many support orders (close-ended). */
  permutations?: number;
}

export async function runEpisode(
  engine: FlamingoEngine,
  episode: Episode,
  io: EpisodeIO,
  decoding: EpisodeDecoding = {},
): Promise<EpisodeResult> {
  const { maxNewTokens = 16, beams, permutations } = decoding;
  let prompt = await toPrompt(episode.segments, io.loadImage);
  let chosen: number[] | undefined;
  if (episode.rices && episode.rices.shots > 0) {
    const pool = await loadPool(episode.rices.pool, io);
    chosen = await selectByRices(
      engine,
      firstVisual(prompt, `episode ${episode.id}`),
      pool.visuals,
      episode.rices.shots,
    );
    prompt = [...chosen.flatMap((i) => pool.prompts[i]), ...prompt];
  }
  // Open-ended answers count their generated tokens too, as the app's warning does (pastTrainedContext);
  // a close-ended ranking is judged by its prompt.
  let prediction: string, promptTokens: number, past: boolean;
  if (episode.options) {
    const scores = await engine.score(prompt, episode.options, { permutations });
    prediction = scores.reduce((best, s) => (s.logLikelihood > best.logLikelihood ? s : best)).option;
    promptTokens = engine.countTokens(prompt);
    past = promptTokens > engine.manifest.lm.context_length;
  } else {
    const done = await engine.generate(prompt, { maxNewTokens, beams }, () => undefined);
    prediction = done.text;
    promptTokens = done.promptTokens;
    past = pastTrainedContext(done);
  }
  const correct = normalizeAnswer(prediction) === normalizeAnswer(episode.answer);
  return {
    id: episode.id, task: episode.task, answer: episode.answer, prediction, correct, promptTokens,
    pastTrainedContext: past, ...(chosen ? { supports: chosen } : {}),
  };
}

export function summarize(results: EpisodeResult[]): EvalReport {
  const tasks: EvalReport['tasks'] = {};
  for (const r of results) {
    const t = (tasks[r.task] ??= { n: 0, accuracy: 0, pastTrainedContext: 0 });
    t.n++;
    t.accuracy += r.correct ? 1 : 0;
    t.pastTrainedContext += r.pastTrainedContext ? 1 : 0;
  }
  for (const t of Object.values(tasks)) t.accuracy /= t.n;
  return { tasks, episodes: results };
}
