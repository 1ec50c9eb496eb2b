// Decoding settings of the studio → the engine's GenerateOptions. Pure: no DOM.
import type { GenerateOptions } from '../engine/types';

export type DecodingMode = 'greedy' | 'beam' | 'sample';

export interface DecodingSettings {
  mode: DecodingMode;
  /** Beam search width (the paper's setting: 3). */
  beams: number;
  temperature: number;
  /** 0: no top-k cut. */
  topK: number;
  /** 1: no nucleus cut. */
  topP: number;
  seed: number;
  maxNewTokens: number;
}

export const DEFAULT_DECODING: DecodingSettings = {
  mode: 'greedy',
  beams: 3,
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  seed: 1,
  maxNewTokens: 20,
};

export const LIMITS = {
  beams: [1, 8],
  temperature: [0.05, 2],
  topK: [0, 1024],
  topP: [0.05, 1],
  seed: [0, 2 ** 31 - 1],
  maxNewTokens: [1, 256],
} as const satisfies Record<string, readonly [number, number]>;

/** A number typed into a field, kept within its limits (NaN: the lower limit). */
export function clampSetting(key: keyof typeof LIMITS, value: number): number {
  const [low, high] = LIMITS[key];
  if (!Number.isFinite(value)) return low;
  const clamped = Math.min(high, Math.max(low, value));
  return key === 'temperature' || key === 'topP' ? clamped : Math.round(clamped);
}

export function toGenerateOptions(settings: DecodingSettings): GenerateOptions {
  const maxNewTokens = settings.maxNewTokens;
  switch (settings.mode) {
    case 'greedy':
      return { maxNewTokens };
    case 'beam':
      return { maxNewTokens, beams: settings.beams };
    case 'sample':
      return {
        maxNewTokens,
        temperature: settings.temperature,
        topK: settings.topK > 0 ? settings.topK : undefined,
        topP: settings.topP < 1 ? settings.topP : undefined,
        seed: settings.seed,
      };
  }
}
