// What each GenerateOptions field may hold: one table for the engine (every caller: the worker, the
// CLI, the embed), the embed's protocol and the CLI's flags, so all three refuse the same values in
// the same words.
import { FlamingoError, type GenerateOptions } from './types';

/** Each option's check: undefined when the value is allowed, else what it must be. */
export const OPTION_CHECKS: Record<keyof GenerateOptions, (value: unknown) => string | undefined> = {
  maxNewTokens: (value) => (isInteger(value, 1, 256) ? undefined : 'an integer from 1 to 256'),
  temperature: (value) => (isNumber(value, 0, 10) ? undefined : 'a number from 0 (greedy) to 10'),
  topK: (value) => (isInteger(value, 1, 1e6) ? undefined : 'a positive integer'),
  topP: (value) => (isNumber(value, 0, 1) && value > 0 ? undefined : 'a number above 0, at most 1'),
  seed: (value) => (isInteger(value, 0, 2 ** 32 - 1) ? undefined : 'an integer from 0 to 2^32 - 1'),
  stopAtNewline: (value) => (typeof value === 'boolean' ? undefined : 'true or false'),
  ignoreEndOfChunk: (value) => (typeof value === 'boolean' ? undefined : 'true or false'),
  beams: (value) => (isInteger(value, 1, 8) ? undefined : 'an integer from 1 to 8'),
  reusePrefix: (value) => (typeof value === 'boolean' ? undefined : 'true or false'),
  persistLatents: (value) => (typeof value === 'boolean' ? undefined : 'true or false'),
};

/** What is wrong with `options` — the first field that is unknown or out of range — or undefined (undefined fields are unset). */
export function optionsProblem(options: Record<string, unknown>): string | undefined {
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!Object.hasOwn(OPTION_CHECKS, key)) return `unknown option "${key}" (known: ${Object.keys(OPTION_CHECKS).join(', ')}).`;
    const problem = OPTION_CHECKS[key as keyof GenerateOptions](value);
    if (problem) return `options.${key} must be ${problem} (it is ${typeof value === 'number' ? String(value) : JSON.stringify(value) ?? String(value)}).`;
  }
  return undefined;
}

export function checkGenerateOptions(options: GenerateOptions): void {
  const problem = optionsProblem(options as Record<string, unknown>);
  if (problem) throw new FlamingoError(`Cannot generate: ${problem}`);
}

function isNumber(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max;
}

function isInteger(value: unknown, min: number, max: number): value is number {
  return isNumber(value, min, max) && Number.isInteger(value);
}
