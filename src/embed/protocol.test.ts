import { describe, expect, it } from 'vitest';
import { isAllowed, parseAllowList } from './allowList';
import { parseRequest } from './protocol';
import { SerialQueue } from './queue';

const png = 'data:image/png;base64,iVBORw0KGgo=';

describe('parseRequest', () => {
  it('accepts a generate request with Blob, data URL and text segments and known options', () => {
    const result = parseRequest({
      type: 'flamingo:generate',
      id: 'q1',
      segments: [{ image: new Blob([]) }, { image: png }, { text: 'Output:' }],
      options: { maxNewTokens: 8, temperature: 0 },
    });
    expect(result.ok).toBe(true);
    if (result.ok && result.request.type === 'flamingo:generate') {
      expect(result.request.segments).toHaveLength(3);
      expect(result.request.options).toEqual({ maxNewTokens: 8, temperature: 0 });
    }
  });

  it('accepts as many images as the engine does, each with its text', () => {
    const segments = Array.from({ length: 64 }, () => [{ image: png }, { text: 'Output: a cat.' }]).flat();
    expect(parseRequest({ type: 'flamingo:generate', id: 1, segments }).ok).toBe(true);
  });

  it('accepts an interrupt', () => {
    expect(parseRequest({ type: 'flamingo:interrupt', id: 7 })).toEqual({ ok: true, request: { type: 'flamingo:interrupt', id: 7 } });
  });

  it.each([
    [{ type: 'flamingo:generate', segments: [{ text: 'x' }] }, null, '"id" must be'],
    [{ type: 'flamingo:generat', id: 1 }, 1, 'Unknown request type "flamingo:generat"'],
    [{ type: 'flamingo:generate', id: 1, segments: [] }, 1, '"segments" must be a non-empty array'],
    [{ type: 'flamingo:generate', id: 1, segments: [{ image: 42 }] }, 1, 'segments[0].image must be a Blob, an ImageBitmap or a data: URL'],
    [{ type: 'flamingo:generate', id: 1, segments: [{ image: 'https://x/cat.png' }] }, 1, 'not a data: URL of an image'],
    [{ type: 'flamingo:generate', id: 1, segments: [{ text: 'a', image: png }] }, 1, 'exactly one field'],
    [{ type: 'flamingo:generate', id: 1, segments: [{ text: 3 }] }, 1, 'segments[0].text must be a string'],
    [{ type: 'flamingo:generate', id: 1, segments: [{ text: 'a' }], options: { temprature: 1 } }, 1, 'unknown option "temprature"'],
    [{ type: 'flamingo:generate', id: 1, segments: [{ text: 'a' }], options: { maxNewTokens: 0 } }, 1, 'options.maxNewTokens must be an integer from 1 to 256'],
    [{ type: 'flamingo:generate', id: 1, segments: [{ text: 'a' }], prompt: 'x' }, 1, 'unknown field prompt'],
    ['hello', null, 'must be an object'],
    [{ type: 'flamingo:generate', id: 1, segments: Array(65).fill({ image: png }) }, 1, 'The prompt has 65 images and clips; at most 64 fit in one prompt.'],
    [{ type: 'flamingo:generate', id: 1, segments: Array(257).fill({ text: 'a' }) }, 1, '"segments" has 257 entries; at most 256.'],
  ])('refuses %j, naming the problem', (data, id, message) => {
    const result = parseRequest(data);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.id).toBe(id);
      expect(result.message).toContain(message);
    }
  });
});

describe('embed-config.json', () => {
  it('allows exactly the listed origins', () => {
    const list = parseAllowList({ allowedOrigins: ['https://example.org', 'http://localhost:5174'] });
    expect(isAllowed(list, 'https://example.org')).toBe(true);
    expect(isAllowed(list, 'http://localhost:5174')).toBe(true);
    expect(isAllowed(list, 'https://example.org:8443')).toBe(false);
    expect(isAllowed(list, 'http://example.org')).toBe(false);
    expect(isAllowed(list, 'null')).toBe(false);
  });

  it('allows every origin only with an explicit "*", and never "null"', () => {
    expect(isAllowed(parseAllowList({ allowedOrigins: [] }), 'https://a.example')).toBe(false);
    const any = parseAllowList({ allowedOrigins: ['*'] });
    expect(isAllowed(any, 'https://a.example')).toBe(true);
    expect(isAllowed(any, 'null')).toBe(false);
  });

  it.each([
    [{}, '"allowedOrigins" must be an array'],
    [{ allowedOrigins: ['https://example.org/'] }, 'allowedOrigins[0] is "https://example.org/", not an origin'],
    [{ allowedOrigins: ['example.org'] }, 'not an origin'],
    [{ allowedOrigins: [], allowed: [] }, 'unknown keys: allowed'],
    [[], 'must be a JSON object'],
  ])('refuses %j', (json, message) => {
    expect(() => parseAllowList(json)).toThrow(message);
  });
});

describe('SerialQueue', () => {
  it('runs jobs one at a time in arrival order; a queued job can be dropped', async () => {
    const log: string[] = [];
    const release: (() => void)[] = [];
    const queue = new SerialQueue<{ id: string; source: unknown }>(
      (job) =>
        new Promise<void>((resolve) => {
          log.push(`start ${job.id}`);
          release.push(() => {
            log.push(`end ${job.id}`);
            resolve();
          });
        }),
    );
    const source = {};
    for (const id of ['a', 'b', 'c']) queue.add({ id, source });
    expect(queue.interrupt(source, 'b')).toMatchObject({ was: 'queued' });
    expect(queue.interrupt(source, 'a')).toMatchObject({ was: 'running' });
    expect(queue.interrupt({}, 'c')).toEqual({ was: 'unknown' }); // another window's ids are its own
    expect(queue.has(source, 'c')).toBe(true);
    release.shift()!();
    await Promise.resolve();
    await Promise.resolve();
    release.shift()!();
    await Promise.resolve();
    expect(log).toEqual(['start a', 'end a', 'start c', 'end c']);
  });
});
