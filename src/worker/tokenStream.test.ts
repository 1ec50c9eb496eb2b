// Token events coalesced per frame: the same text in the same order, the first token at once.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DoneEvent, EngineEvent } from '../engine/types';
import { tokenStream } from './tokenStream';

const token = (text: string): EngineEvent => ({ type: 'token', text });
const done = { type: 'done', text: 'abcd' } as DoneEvent;

describe('tokenStream', () => {
  let clock = 0;
  beforeEach(() => {
    vi.useFakeTimers();
    clock = 0;
  });
  afterEach(() => vi.useRealTimers());

  function stream() {
    const sent: EngineEvent[] = [];
    return { sent, stream: tokenStream((e) => sent.push(e), 16, () => clock) };
  }

  it('sends the first token at once and holds the ones within the interval', () => {
    const { sent, stream: s } = stream();
    s.push(token('a'));
    expect(sent).toEqual([token('a')]);
    clock = 5;
    s.push(token('b'));
    clock = 10;
    s.push(token('c'));
    expect(sent).toEqual([token('a')]);
    clock = 16;
    s.push(token('d'));
    expect(sent).toEqual([token('a'), token('bcd')]);
  });

  it('sends held text before the done event, and nothing after it', () => {
    const { sent, stream: s } = stream();
    s.push(token('a'));
    clock = 1;
    s.push(token('b'));
    s.push(done);
    expect(sent).toEqual([token('a'), token('b'), done]);
    vi.advanceTimersByTime(100);
    expect(sent).toHaveLength(3);
  });

  it('sends held text when the interval passes without another token (a slow step)', () => {
    const { sent, stream: s } = stream();
    s.push(token('a'));
    clock = 4;
    s.push(token('b'));
    vi.advanceTimersByTime(11);
    expect(sent).toEqual([token('a')]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([token('a'), token('b')]);
  });

  it('flush sends what is held (a generation that ends in an error)', () => {
    const { sent, stream: s } = stream();
    s.push(token('a'));
    s.push(token('b'));
    s.flush();
    s.flush();
    expect(sent).toEqual([token('a'), token('b')]);
  });

  it('keeps every character over a long answer', () => {
    const { sent, stream: s } = stream();
    const text = 'the quick brown fox jumps over the lazy dog '.repeat(20);
    for (const ch of text) {
      clock += 1.3;
      s.push(token(ch));
    }
    s.push({ ...done, text });
    const tokens = sent.filter((e) => e.type === 'token');
    expect(tokens.map((e) => (e as { text: string }).text).join('')).toBe(text);
    expect(tokens.length).toBeLessThan(text.length / 10);
    expect(sent.at(-1)?.type).toBe('done');
  });
});
