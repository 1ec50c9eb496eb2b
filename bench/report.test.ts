// The report of `npm run bench` carries every field the issue asks for (built from made-up
// figures: the bench itself needs a browser and minutes, and asserts nothing about speed).
import { describe, expect, it } from 'vitest';
import type { LoadTimings } from '../src/worker/api';
import { buildReport, REQUIRED_FIELDS, simdOf, type ReportInput } from './report';

const timings: LoadTimings = {
  workerOrigin: 0, workerStartMs: 1, files: [0, 10], runtime: [0, 20], sessions: { 'lm.onnx': [20, 30] }, total: 30,
};
const sample = { readyMs: 100, pageToLoadMs: 5, timings };
const decode = { promptTokens: 64, tokens: 32, tokensPerSecond: 100, ttftMs: 5, pageTokensPerSecond: 99, pageTotalMs: 400 };
const shot = (shots: number, tps: number) => ({
  shots, images: shots + 1, promptTokens: 4 + 7 * shots, encodeMs: 2 * (shots + 1), ttftMs: 3, ttftFreshMs: 9, tokensPerSecond: tps,
  timings: { encodeMs: 1, prefillMs: 2, feedsMs: 3.1, runMs: 31, outputsMs: 0.31, sampleMs: 0.1, detokenizeMs: 0.1, steps: 31 },
});

const input: ReportInput = {
  date: '2026-12-01T00:00:00.000Z',
  machine: { cpus: 2, cpuModel: 'test', memoryGb: 24, os: 'Linux', node: 'v20' },
  settings: { promptTokens: 64, newTokens: 32, repeats: 1, rounds: 3, shotRepeats: 2, shots: [0, 4, 8, 16, 32], promptText: 'Output: dog face.' },
  cli: { rows: [] },
  pytorchRuntime: 'PyTorch eager, 2 threads',
  browser: {
    chromium: '156',
    startup: { cold: [sample], warm: [sample] },
    decode: [decode],
    phases: [{ tokens: 32, tokensPerSecond: 100, stepMs: 10, runMs: 9, engineMs: 1 }],
    lmRuns: [{ outputs: 'present', past: 4, ms: 2 }, { outputs: 'new', past: 4, ms: 0.5 }, { outputs: 'logits', past: 4, ms: 0.4 }],
    // round 2 on a slow host: 0 and 32 shots both half as fast; paired, the ratio stays 2
    shots: [[shot(0, 200), shot(0, 100)], [shot(4, 180), shot(4, 90)], [shot(8, 170), shot(8, 85)], [shot(16, 150), shot(16, 75)], [shot(32, 100), shot(32, 50)]],
    loadTimings: { backend: 'wasm', variant: 'float32', loadMs: 30, timings, fromCache: false },
    peakMemoryMb: 40,
    decodeWarmUp: [10, 90, 100],
    // the host slows down in the third round; each round's ratios are those of the first
    rounds: [
      { ours: 100, transformers: 80, node: 400, pytorch: 50 },
      { ours: 100, transformers: 80, node: 400, pytorch: 50 },
      { ours: 40, transformers: 32, node: 160, pytorch: 20 },
    ],
    transformers: { version: '4.3.2', loadMs: 50, idsMatch: true, warmUp: [10, 80], decode: [{ tokens: 32, tokensPerSecond: 80, ttftMs: 6 }] },
  },
};

describe('bench report', () => {
  it('has the required top-level fields, ttft per shot count, and ratios from the same run', () => {
    const report = buildReport(input);
    for (const field of REQUIRED_FIELDS) expect(report, field).toHaveProperty(field);
    expect(Object.keys(report.ttft_ms)).toEqual(['0', '4', '8', '16', '32']);
    expect(report.backend).toBe('wasm');
    expect(report.browser_vs_node_ratio).toBe(0.25);
    expect(report.vs_pytorch_ratio).toBe(2);
    expect(report.vs_transformersjs_ratio).toBe(1.25);
    expect(report.shots32_vs_0_per_token_ratio).toBe(2);
    expect(report.details.startup.cold.sessions_ms).toEqual({ 'lm.onnx': 10 });
    expect(report.details.shots['32'].per_step_us).toEqual({ feeds: 100, run: 1000, outputs: 10 });
    expect(report.decode_tokens_per_s).toBe(100);
    expect(report.details.decode_text_prompt.onnxruntime_node_tokens_per_s).toBe(400);
  });

  it('takes a ratio within each round, so a host that slows down between rounds does not move it', () => {
    const drifting = structuredClone(input);
    // the host is slow in rounds 2 and 3, and turns slow in round 2 after node's decode
    drifting.browser.rounds = [
      { ours: 100, transformers: 80, node: 400, pytorch: 50 },
      { ours: 40, transformers: 32, node: 400, pytorch: 20 },
      { ours: 40, transformers: 32, node: 160, pytorch: 20 },
    ];
    const report = buildReport(drifting);
    expect(report.browser_vs_node_ratio).toBe(0.25);
    expect(report.vs_transformersjs_ratio).toBe(1.25);
    expect(report.details.decode_text_prompt.ratios_of_medians.browser_vs_node).toBe(0.1); // 40 / 400
  });
});

describe('simdOf', () => {
  it('names the vector extensions of the first CPU in /proc/cpuinfo, in a fixed order', () => {
    const info = 'processor\t: 0\nflags\t\t: fpu sse4_2 avx512_bf16 fma avx2 avx avx512f\n\nprocessor\t: 1\nflags\t\t: fpu\n';
    expect(simdOf(info)).toEqual(['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_bf16']);
  });
  it('is empty where there is no cpuinfo', () => {
    expect(simdOf('')).toEqual([]);
  });
});
