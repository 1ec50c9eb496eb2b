import { describe, expect, it } from 'vitest';
import { normalizeAnswer, parseEpisode, summarize } from './evaluate';

describe('episode evaluation', () => {
  it('normalises answers as DESIGN.md says', () => {
    expect(normalizeAnswer('  Dog Face. ')).toBe('dog face');
    expect(normalizeAnswer('toma')).toBe(normalizeAnswer('Toma.'));
    expect(normalizeAnswer('3.5')).toBe('3.5');
  });

  it('parses an episode and names the line of a broken one', () => {
    const e = parseEpisode('{"id":"a","task":"t","segments":[{"image":"x.png"},{"text":"Output:"}],"answer":"toma"}', 'f:1');
    expect(e.segments).toHaveLength(2);
    expect(() => parseEpisode('{"id":"a"}', 'eps.jsonl:7')).toThrow(/^eps\.jsonl:7: an episode needs/);
    expect(() => parseEpisode('not json', 'eps.jsonl:3')).toThrow('eps.jsonl:3: not valid JSON');
    expect(() => parseEpisode('{"id":"a","task":"t","segments":[{"audio":"x"}],"answer":"b"}', 'f:2')).toThrow(/each segment/);
  });

  it('summarises accuracy per task', () => {
    const episode = { answer: 'x', promptTokens: 100, pastTrainedContext: false };
    const r = summarize([
      { ...episode, id: '1', task: 'a', prediction: 'x', correct: true },
      { ...episode, id: '2', task: 'a', prediction: 'y', correct: false, promptTokens: 300, pastTrainedContext: true },
      { ...episode, id: '3', task: 'b', prediction: 'x', correct: true },
    ]);
    expect(r.tasks).toEqual({
      a: { n: 2, accuracy: 0.5, pastTrainedContext: 1 },
      b: { n: 1, accuracy: 1, pastTrainedContext: 0 },
    });
  });
});
