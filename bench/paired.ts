// Two builds measured side by side on one loaded machine (bench/startup-compare.ts,
// bench/first-answer.ts): the options both take, and the order of the builds in each round.
import { resolve } from 'node:path';

export const PAIRED_OPTIONS = {
  before: { type: 'string' },
  after: { type: 'string' },
  rounds: { type: 'string', default: '3' },
  out: { type: 'string' },
} as const;

/** --before and --after as absolute folders; `script` names the command in the error. */
export function pairedBuilds(values: { before?: string; after?: string }, script: string): { before: string; after: string } {
  if (!values.before || !values.after) throw new Error(`${script}: --before DIR and --after DIR are required`);
  return { before: resolve(values.before), after: resolve(values.after) };
}

/** Which build goes first flips every round, so that neither always meets the machine first. */
export function buildOrder(round: number): readonly ['before', 'after'] | readonly ['after', 'before'] {
  return round % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const);
}
