// The CLI's flags as numbers, each refused in the flag's own words; a flag that sets a GenerateOptions
// field is checked by the engine's own table (src/engine/options.ts), so the CLI, the embed and the
// engine accept the same values.
import { OPTION_CHECKS } from '../engine/options';
import { FlamingoError, type GenerateOptions } from '../engine/types';

export function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n)) throw new FlamingoError(`--${name} must be a number (got "${v}")`);
  return n;
}

export function positiveInt(v: string | undefined, name: string): number | undefined {
  const n = num(v, name);
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new FlamingoError(`--${name} must be a whole number of at least 1 (got "${v}")`);
  return n;
}

/** The flag `--name` that sets the option `key`. */
export function optionFlag(v: string | undefined, name: string, key: keyof GenerateOptions): number | undefined {
  const n = num(v, name);
  const problem = n === undefined ? undefined : OPTION_CHECKS[key](n);
  if (problem) throw new FlamingoError(`--${name} must be ${problem} (got "${v}")`);
  return n;
}

/** A comma-separated list of whole numbers ≥ 0 (bench's --shots). */
export function countList(v: string, name: string): number[] {
  const items = v.split(',').map((s) => s.trim());
  if (items.some((s) => !/^\d+$/.test(s))) throw new FlamingoError(`--${name} must be whole numbers ≥ 0, comma-separated (got "${v}")`);
  return items.map(Number);
}
