import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// Our stylesheets use no CSS nesting, so a rule that opens inside another rule is a missing `}`: the browser
// would read every later rule as nested under the unclosed one, and none of them would apply (the studio's
// styles were lost that way once, after a merge).

/** The problems in one stylesheet's braces: a rule opened inside a rule, a stray `}`, or blocks left open. */
function braceProblems(css: string): string[] {
  const source = css.replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ' '));
  const problems: string[] = [];
  const open: { atRule: boolean; line: number }[] = [];
  let line = 1;
  let prelude = '';
  for (const char of source) {
    if (char === '\n') line += 1;
    if (char === '{') {
      const parent = open.at(-1);
      if (parent && !parent.atRule) problems.push(`line ${line}: a rule opens inside the rule of line ${parent.line}`);
      open.push({ atRule: prelude.trim().startsWith('@'), line });
      prelude = '';
    } else if (char === '}') {
      if (!open.pop()) problems.push(`line ${line}: a } closes nothing`);
      prelude = '';
    } else if (char === ';') {
      prelude = '';
    } else {
      prelude += char;
    }
  }
  for (const block of open) problems.push(`line ${block.line}: a block is never closed`);
  return problems;
}

const stylesheets = readdirSync('src', { recursive: true, encoding: 'utf8' }).filter((path) => path.endsWith('.css'));

describe('stylesheets', () => {
  it('finds the app’s stylesheets', () => {
    expect(stylesheets.length).toBeGreaterThanOrEqual(3);
  });

  it.each(stylesheets)('%s: every rule is closed before the next one opens', (path) => {
    expect(braceProblems(readFileSync(join('src', path), 'utf8'))).toEqual([]);
  });

  it('catches a missing brace, a stray one and an unclosed block', () => {
    expect(braceProblems('a { color: red;\n/* b { */\nb { color: blue; }')).toEqual([
      'line 3: a rule opens inside the rule of line 1',
      'line 1: a block is never closed',
    ]);
    expect(braceProblems('a { color: red; } }')).toEqual(['line 1: a } closes nothing']);
    expect(braceProblems('@media (x) { a { color: red; } }\n@keyframes k { from { opacity: 0; } }')).toEqual([]);
  });
});
