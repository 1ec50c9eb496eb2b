// The report `npm run bench` writes (bench/results.json): the top-level fields first,
// then the figures they come from. Every ratio is of numbers taken within the same run.
import type { DecodeTimings } from '../src/engine/types';
import type { BrowserResult, DecodeRound } from './browser';
import type { StartupSample } from './startup';

export interface ReportInput {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGb: number; os: string; simd?: string[]; node: string };
  settings: { promptTokens: number; newTokens: number; repeats: number; rounds: number; shotRepeats: number; shots: number[]; promptText: string };
  /** src/cli/bench.ts's JSON, as it wrote it. */
  cli: unknown;
  /** What bench_pytorch.py ran ("PyTorch 1.13 eager, 2 threads"). */
  pytorchRuntime: string;
  /** Holds the text-prompt decode of every runtime, in turns (`rounds`). */
  browser: BrowserResult;
}

/** The fields every report carries at the top level (bench/report.test.ts checks them). */
export const REQUIRED_FIELDS = [
  'machine',
  'backend',
  'cold_start_ms',
  'warm_start_ms',
  'ttft_ms',
  'decode_tokens_per_s',
  'image_encode_ms',
  'peak_memory_mb',
  'browser_vs_node_ratio',
  'vs_pytorch_ratio',
  'vs_transformersjs_ratio',
  'shots32_vs_0_per_token_ratio',
] as const;

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
const round = (x: number, digits = 1) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

/** Median duration of each phase over start-up samples (spans that overlap stay separate). */
export function startupPhases(samples: StartupSample[]) {
  const span = (pick: (s: StartupSample) => [number, number] | undefined) =>
    round(median(samples.flatMap((s) => { const p = pick(s); return p ? [p[1] - p[0]] : []; })));
  const graphs = [...new Set(samples.flatMap((s) => Object.keys(s.timings.sessions)))];
  return {
    ready_ms: round(median(samples.map((s) => s.readyMs))),
    page_to_load_ms: round(median(samples.map((s) => s.pageToLoadMs))),
    model_files_ms: span((s) => s.timings.files),
    runtime_ms: span((s) => s.timings.runtime),
    sessions_ms: Object.fromEntries(graphs.map((g) => [g, span((s) => s.timings.sessions[g])])),
    worker_load_total_ms: round(median(samples.map((s) => s.timings.total))),
  };
}

function medianTimings(samples: (DecodeTimings | undefined)[]): Record<string, number | null> | null {
  const present = samples.filter((t): t is DecodeTimings => t !== undefined);
  if (!present.length) return null;
  const keys = Object.keys(present[0]) as (keyof DecodeTimings)[];
  return Object.fromEntries(keys.map((k) => [k, round(median(present.map((t) => t[k])), 2)]));
}

/** The median over rounds of a / b, each pair taken within one round (a round's figures are seconds apart). */
export function pairedRatio(a: number[], b: number[]): number {
  return median(a.map((x, i) => x / b[i]));
}

export function buildReport(input: ReportInput) {
  const { browser, settings } = input;
  const { rounds } = browser;
  const speeds = (name: keyof DecodeRound) => rounds.map((r) => r[name]);
  const decode = median(speeds('ours'));
  const ours = (name: keyof DecodeRound) => round(pairedRatio(speeds('ours'), speeds(name)), 3);
  const byShots = Object.fromEntries(settings.shots.map((k, i) => [String(k), browser.shots[i]]));
  const shotSpeeds = (k: number) => (byShots[String(k)] ?? []).map((s) => s.tokensPerSecond);
  const shotTps = (k: number) => median(shotSpeeds(k));
  const perImage = browser.shots.flat().map((s) => s.encodeMs / s.images);
  return {
    machine: { ...input.machine, chromium: browser.chromium, date: input.date },
    backend: 'wasm',
    cold_start_ms: round(median(browser.startup.cold.map((s) => s.readyMs))),
    warm_start_ms: round(median(browser.startup.warm.map((s) => s.readyMs))),
    // A new prompt with fresh images: encoding them, prefill and the first token.
    ttft_ms: Object.fromEntries(settings.shots.map((k) => [String(k), round(median(byShots[String(k)].map((s) => s.ttftFreshMs)))])),
    decode_tokens_per_s: round(decode),
    image_encode_ms: round(median(perImage), 2),
    peak_memory_mb: browser.peakMemoryMb === null ? null : round(browser.peakMemoryMb),
    // Each ratio: within each round, then the median over rounds (pairedRatio).
    browser_vs_node_ratio: ours('node'),
    vs_pytorch_ratio: ours('pytorch'),
    vs_transformersjs_ratio: ours('transformers'),
    // Per-token time at 32 shots over 0 shots = tokens/s at 0 over tokens/s at 32 (the counts take turns round by round).
    shots32_vs_0_per_token_ratio: byShots['32'] ? round(pairedRatio(shotSpeeds(0), shotSpeeds(32)), 3) : null,
    details: {
      settings,
      decode_text_prompt: {
        browser_wasm_tokens_per_s: round(decode),
        browser_wasm_seen_by_page_tokens_per_s: round(median(browser.decode.map((d) => d.pageTokensPerSecond))),
        browser_wasm_ttft_ms: round(median(browser.decode.map((d) => d.ttftMs))),
        // A fresh page's first decodes, before V8 has optimised the runtime's wasm (see bench/browser.ts).
        browser_wasm_warm_up_tokens_per_s: browser.decodeWarmUp.map((x) => round(x)),
        // From the engine's own timers, where it has them (DoneEvent.timings), summed over the steps.
        browser_wasm_engine_timings_ms: medianTimings(browser.decode.map((d) => d.timings)),
        // The same decode on the page's thread with session.run timed: per step, ms.
        browser_wasm_per_step_ms: {
          step: round(median(browser.phases.map((p) => p.stepMs)), 3),
          session_run: round(median(browser.phases.map((p) => p.runMs)), 3),
          engine_around_run: round(median(browser.phases.map((p) => p.engineMs)), 3),
          tokens_per_s_on_page_thread: round(median(browser.phases.map((p) => p.tokensPerSecond))),
        },
        // lm.onnx's session.run alone on the page's thread (one decode step, zero inputs), median ms, by what
        // it fetches: present_* (the whole cache, as before the appended cache), new_* (the engine now), logits
        browser_wasm_lm_run_ms: Object.fromEntries(
          [...new Set(browser.lmRuns.map((r) => r.past))].map((past) => [
            `past_${past}`,
            Object.fromEntries(browser.lmRuns.filter((r) => r.past === past).map((r) => [r.outputs, round(r.ms, 3)])),
          ]),
        ),
        onnxruntime_node_tokens_per_s: round(median(speeds('node'))),
        pytorch: { runtime: input.pytorchRuntime, decode_tokens_per_s: round(median(speeds('pytorch'))) },
        // tokens/s of each round, in the order taken (the order turns every round: bench/browser.ts)
        rounds: rounds.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)]))),
        // for comparison with runs before 2026-12-02 evening: the ratio of the medians
        ratios_of_medians: {
          browser_vs_node: round(decode / median(speeds('node')), 3),
          vs_pytorch: round(decode / median(speeds('pytorch')), 3),
          vs_transformersjs: round(decode / median(speeds('transformers')), 3),
          shots32_vs_0: byShots['32'] ? round(shotTps(0) / shotTps(32), 3) : null,
        },
        transformersjs: {
          version: browser.transformers.version,
          tokens_per_s: round(median(speeds('transformers'))),
          ttft_ms: round(median(browser.transformers.decode.map((d) => d.ttftMs))),
          load_ms: round(browser.transformers.loadMs),
          warm_up_tokens_per_s: browser.transformers.warmUp.map((x) => round(x)),
          same_prompt_ids_from_its_tokenizer: browser.transformers.idsMatch,
        },
      },
      shots: Object.fromEntries(
        settings.shots.map((k) => {
          const runs = byShots[String(k)];
          return [String(k), {
            images: runs[0].images,
            prompt_tokens: runs[0].promptTokens,
            ttft_fresh_images_ms: round(median(runs.map((s) => s.ttftFreshMs))),
            ttft_cached_images_ms: round(median(runs.map((s) => s.ttftMs))),
            encode_ms_per_image: round(median(runs.map((s) => s.encodeMs / s.images)), 2),
            decode_tokens_per_s: round(shotTps(k)),
            // per decode step, µs (medians over the answers): where a longer context costs
            per_step_us: Object.fromEntries((['feedsMs', 'runMs', 'outputsMs'] as const).map((phase) => [
              phase.replace('Ms', ''), round(median(runs.map((s) => (1000 * s.timings[phase]) / Math.max(1, s.timings.steps)))),
            ])),
          }];
        }),
      ),
      startup: { cold: startupPhases(browser.startup.cold), warm: startupPhases(browser.startup.warm) },
      onnxruntime_node_cli_bench: input.cli,
      ...(browser.webgpu
        ? {
            webgpu_swiftshader: {
              note: 'WebGPU on SwiftShader (a CPU implementation, no GPU): proves the path runs; not a speed figure',
              backend: browser.webgpu.backend,
              fallback_reason: browser.webgpu.fallbackReason ?? null,
              tokens_per_s: round(median(browser.webgpu.decode.map((d) => d.tokensPerSecond))),
            },
          }
        : {}),
    },
  };
}

/**
 * The vector extensions named in a Linux /proc/cpuinfo ('' elsewhere: none): hosts of one model name differ in them,
 * and with them in speed (docs/BENCHMARKS.md, "Session 17").
 */
export function simdOf(cpuinfo: string): string[] {
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].trim().split(/\s+/));
  return ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16'].filter((f) => flags.has(f));
}

export type BenchReport = ReturnType<typeof buildReport>;

export function printReport(r: BenchReport): void {
  const d = r.details;
  const line = (label: string, value: unknown) => console.log(`${label.padEnd(44)} ${value ?? '—'}`);
  const simd = r.machine.simd?.length ? ` (${r.machine.simd.join(' ')})` : '';
  console.log(`\nflamingo-web bench, ${r.machine.date}: ${r.machine.cpus} × ${r.machine.cpuModel}${simd}, Chromium ${r.machine.chromium}, ${r.machine.node}`);
  line('start-up, cold / warm (ms)', `${r.cold_start_ms} / ${r.warm_start_ms}`);
  for (const kind of ['cold', 'warm'] as const) {
    const s = d.startup[kind];
    line(`  ${kind}: page→load, files, runtime (ms)`, `${s.page_to_load_ms}, ${s.model_files_ms}, ${s.runtime_ms}`);
    line(`  ${kind}: sessions (ms)`, Object.entries(s.sessions_ms).map(([g, ms]) => `${g} ${ms}`).join(', '));
  }
  line(`decode, ${d.settings.promptTokens}-token prompt, ${d.settings.newTokens} new (tok/s)`, '');
  line('  browser WASM (engine / seen by the page)', `${d.decode_text_prompt.browser_wasm_tokens_per_s} / ${d.decode_text_prompt.browser_wasm_seen_by_page_tokens_per_s}`);
  line('  browser WASM, warm-up runs of a fresh page', d.decode_text_prompt.browser_wasm_warm_up_tokens_per_s.join(', '));
  line('  onnxruntime-node', d.decode_text_prompt.onnxruntime_node_tokens_per_s);
  line(`  ${d.decode_text_prompt.pytorch.runtime}`, d.decode_text_prompt.pytorch.decode_tokens_per_s);
  line(`  transformers.js ${d.decode_text_prompt.transformersjs.version} (WASM)`, d.decode_text_prompt.transformersjs.tokens_per_s);
  const step = d.decode_text_prompt.browser_wasm_per_step_ms;
  line('  browser step ms: whole / session.run / around', `${step.step} / ${step.session_run} / ${step.engine_around_run}`);
  for (const [past, ms] of Object.entries(d.decode_text_prompt.browser_wasm_lm_run_ms)) {
    line(`  lm.onnx run ms, ${past.replace('_', ' ')}: present / new / logits`, `${ms.present} / ${ms.new} / ${ms.logits}`);
  }
  if (d.decode_text_prompt.browser_wasm_engine_timings_ms) line('  engine timings (ms, summed over steps)', JSON.stringify(d.decode_text_prompt.browser_wasm_engine_timings_ms));
  console.log('  shots  images  tokens  TTFT fresh ms  TTFT cached ms  encode ms/img  decode tok/s');
  for (const [k, s] of Object.entries(d.shots)) {
    console.log(`  ${k.padStart(5)}  ${String(s.images).padStart(6)}  ${String(s.prompt_tokens).padStart(6)}  ${String(s.ttft_fresh_images_ms).padStart(13)}  ${String(s.ttft_cached_images_ms).padStart(14)}  ${String(s.encode_ms_per_image).padStart(13)}  ${String(s.decode_tokens_per_s).padStart(12)}`);
  }
  line('peak memory, page + worker (MB)', r.peak_memory_mb);
  line('browser / node', r.browser_vs_node_ratio);
  line('browser / PyTorch eager', r.vs_pytorch_ratio);
  line('browser / transformers.js', r.vs_transformersjs_ratio);
  line('per-token time, 32 shots / 0 shots', r.shots32_vs_0_per_token_ratio);
  const gpu = 'webgpu_swiftshader' in d ? d.webgpu_swiftshader : undefined;
  if (gpu) line('WebGPU on SwiftShader (not a speed figure)', `${gpu.tokens_per_s} tok/s on ${gpu.backend}`);
}
