// The command-line tool as a user runs it: real processes, real files, exit codes and messages.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED_MODEL_DIR, readPng, REPO_ROOT } from './node';
import { pngHeaderOnly } from '../../e2e/fixtures/pngHeaderOnly';
import { withExifOrientation } from '../../e2e/fixtures/exifOrientation';

const run = promisify(execFile);

const BIN = join(REPO_ROOT, 'bin/flamingo-web.mjs');
/** The bundled model's trained context (manifest lm.context_length): the "too long" prompts below exceed it. */
const CONTEXT_LENGTH: number = JSON.parse(readFileSync(join(BUNDLED_MODEL_DIR, 'manifest.json'), 'utf8')).lm.context_length;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: REPO_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flamingo-cli-'));
  for (const [name, rgb] of [['red.png', [230, 30, 30]], ['blue.png', [30, 30, 230]]] as const) {
    const png = new PNG({ width: 40, height: 30 });
    for (let i = 0; i < 40 * 30; i++) png.data.set([...rgb, 255], i * 4);
    writeFileSync(join(dir, name), PNG.sync.write(png));
  }
  writeFileSync(join(dir, 'broken.png'), 'not a png');
});

describe('flamingo-web CLI', () => {
  it('generates an answer for a raw prompt on the bundled model', async () => {
    const r = await cli('generate', '--prompt', '<image>Output: a cat.<|endofchunk|><image>Output:',
      '--image', join(dir, 'red.png'), '--image', join(dir, 'blue.png'), '--max-tokens', '8');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/tokens, TTFT [\d.]+ ms, [\d.]+ tokens\/s, cpu/);
    expect(r.stderr).not.toMatch(/trained on/);
  });

  it('says when a prompt runs past the length the model was trained on', async () => {
    const examples = 'Output: a red apple.<|endofchunk|>'.repeat(Math.ceil(CONTEXT_LENGTH / 6)); // ~8 tokens each
    const r = await cli('generate', '--prompt', `${examples}Output:`, '--max-tokens', '4');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`note: \\d+ tokens, longer than the ${CONTEXT_LENGTH} the model was trained on`));
  });

  it('names an unreadable image and exits non-zero with one line', async () => {
    const r = await cli('generate', '--prompt', '<image>Output:', '--image', join(dir, 'broken.png'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('broken.png” is not an image');
  });

  it('checks image files by their header before decoding: empty, truncated, too many pixels', async () => {
    const red = readFileSync(join(dir, 'red.png'));
    writeFileSync(join(dir, 'empty.png'), '');
    writeFileSync(join(dir, 'truncated.png'), red.subarray(0, red.length - 20));
    writeFileSync(join(dir, 'huge.png'), pngHeaderOnly(10000, 10000));
    const cases = [['empty.png', 'is empty (0 bytes)'], ['truncated.png', 'is a truncated or damaged PNG'], ['huge.png', 'is 10000×10000 pixels (100 megapixels)']];
    for (const [file, message] of cases) {
      const r = await cli('generate', '--prompt', '<image>Output:', '--image', join(dir, file));
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
    }
  });

  it('reads an EXIF-rotated PNG upright, as the browser does; a JPEG (rotated or not) is refused, naming PNG', async () => {
    // stored 40×20, red on the left, blue on the right; orientation 6 shows it a quarter turned clockwise
    const png = new PNG({ width: 40, height: 20 });
    for (let i = 0; i < 40 * 20; i++) png.data.set([...(i % 40 < 20 ? [230, 30, 30] : [30, 30, 230]), 255], i * 4);
    writeFileSync(join(dir, 'portrait.png'), withExifOrientation(PNG.sync.write(png), 6));
    const upright = await readPng(join(dir, 'portrait.png'));
    expect([upright.width, upright.height]).toEqual([20, 40]);
    const red = (x: number, y: number) => upright.data[(y * upright.width + x) * 4];
    expect([red(10, 5), red(10, 35)]).toEqual([230, 30]); // red on top, blue below

    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0, 20, 0, 40, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0xff, 0xda, 0, 2, 0xff, 0xd9]);
    writeFileSync(join(dir, 'phone.jpg'), withExifOrientation(jpeg, 6));
    const r = await cli('generate', '--prompt', '<image>Output:', '--image', join(dir, 'phone.jpg'));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('phone.jpg is a JPEG image; the command line reads PNG (the app reads the others): convert it to PNG.');
  });

  it('takes a prompt from a file, and refuses one past the text limit with a message', async () => {
    writeFileSync(join(dir, 'prompt.txt'), '<image>Output: a cat.<|endofchunk|><image>Output:');
    const ok = await cli('generate', '--prompt-file', join(dir, 'prompt.txt'), '--image', join(dir, 'red.png'), '--image', join(dir, 'blue.png'), '--max-tokens', '4');
    expect(ok.code).toBe(0);
    writeFileSync(join(dir, 'long.txt'), `<image>${'a'.repeat(200 * 1024)} Output:`); // past the shell's 128 KB argument limit
    const long = await cli('generate', '--prompt-file', join(dir, 'long.txt'), '--image', join(dir, 'red.png'));
    expect(long.code).toBe(1);
    expect(long.stderr.trim().split('\n')).toHaveLength(1);
    expect(long.stderr).toMatch(/204,8\d\d characters of text; at most 20,000/);
  });

  it('prints the usage of each command for --help', async () => {
    for (const command of ['generate', 'eval', 'bench']) {
      const r = await cli(command, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`flamingo-web ${command}`);
    }
    const all = await cli('--help');
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('flamingo-web eval');
  });

  it("refuses decoding flags out of the engine's range in their own words, before loading the model", async () => {
    const cases: [string[], RegExp][] = [
      [['--max-tokens', '0'], /--max-tokens must be an integer from 1 to 256 \(got "0"\)/],
      [['--max-tokens', '2.5'], /--max-tokens must be an integer from 1 to 256/],
      [['--top-p', '2'], /--top-p must be a number above 0, at most 1 \(got "2"\)/],
      [['--top-k', ''], /--top-k must be a number \(got ""\)/],
      [['--beams', '9'], /--beams must be an integer from 1 to 8/],
      [['--temperature=-1'], /--temperature must be a number from 0 \(greedy\) to 10/],
      // parseArgs' own advice is kept whole: how to pass a value that starts with a dash
      [['--temperature', '-1'], /argument is ambiguous\..*use '--temperature=-XYZ'/],
    ];
    for (const [flags, message] of cases) {
      const r = await cli('generate', '--prompt', 'Output:', ...flags);
      expect(r.code, flags.join(' ')).toBe(1);
      expect(r.stderr, flags.join(' ')).toMatch(message);
    }
    const bench = await cli('bench', '--shots', '0,x');
    expect(bench.code).toBe(1);
    expect(bench.stderr).toContain('--shots must be whole numbers');
  });

  it('says when images and <image> markers do not match', async () => {
    const r = await cli('generate', '--prompt', '<image><image>Output:', '--image', join(dir, 'red.png'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('2 <image> marker(s) but 1 image(s)');
  });

  it('refuses a model file that fails its sha256, naming the file', async () => {
    const model = join(dir, 'corrupt-model');
    cpSync(BUNDLED_MODEL_DIR, model, { recursive: true });
    const lm = readFileSync(join(model, 'lm.onnx'));
    lm[lm.length - 5] ^= 0xff;
    writeFileSync(join(model, 'lm.onnx'), lm);
    const r = await cli('generate', '--model', model, '--prompt', '<image>Output:', '--image', join(dir, 'red.png'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/lm\.onnx failed its integrity check/);
  });

  it('names a model folder whose manifest is missing, not JSON, or of an older format', async () => {
    const cases: [string, (dir: string) => void, string][] = [
      ['no-manifest', () => undefined, 'Cannot read the model manifest'],
      ['not-json', (d) => writeFileSync(join(d, 'manifest.json'), '{ not json'), 'is not valid JSON'],
      ['format-1', (d) => writeFileSync(join(d, 'manifest.json'), JSON.stringify({ format: 'flamingo-web/1' })), 'export it again'],
    ];
    for (const [name, write, message] of cases) {
      const model = mkdtempSync(join(dir, `${name}-`));
      write(model);
      const r = await cli('generate', '--model', model, '--prompt', '<image>Output:', '--image', join(dir, 'red.png'));
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(message);
    }
  });

  it('evaluates an episode file and writes the report', async () => {
    const episodes = join(dir, 'episodes.jsonl');
    const lines = [
      { id: 'e1', task: 'naming', segments: [{ image: 'red.png' }, { text: 'Output: red.' }, { image: 'blue.png' }, { text: 'Output:' }], answer: 'blue' },
      { id: 'e2', task: 'close', segments: [{ image: 'red.png' }, { text: 'Output:' }], answer: 'red', options: ['red', 'blue'] },
      // 40 shots of over CONTEXT_LENGTH / 40 tokens each: longer than the trained context
      { id: 'e3', task: 'long', segments: [...Array(40).fill([{ image: 'red.png' }, { text: `Output: a red apple.${' A red apple.'.repeat(Math.ceil(CONTEXT_LENGTH / 120))}` }]).flat(), { image: 'blue.png' }, { text: 'Output:' }], answer: 'blue' },
      // RICES from a pool of two: the identical image is the most similar, so it comes last
      { id: 'e4', task: 'rices', segments: [{ image: 'red.png' }, { text: 'Output:' }], answer: 'red', rices: { shots: 2, pool: 'pool.jsonl' } },
    ];
    writeFileSync(episodes, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const pool = [['red.png', 'red'], ['blue.png', 'blue']].map(([image, name]) =>
      JSON.stringify({ segments: [{ image }, { text: `Output: ${name}.` }] }));
    writeFileSync(join(dir, 'pool.jsonl'), pool.join('\n') + '\n');
    const out = join(dir, 'report.json');
    const r = await cli('eval', '--episodes', episodes, '--out', out);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(Object.keys(report.tasks).sort()).toEqual(['close', 'long', 'naming', 'rices']);
    expect(report.episodes).toHaveLength(4);
    expect(report.episodes[0].supports).toBeUndefined();
    expect(report.episodes[3].supports).toEqual([1, 0]); // pool entries, least to most similar
    expect([report.tasks.naming.pastTrainedContext, report.tasks.long.pastTrainedContext]).toEqual([0, 1]);
    expect(r.stdout).toMatch(/long .*\(1 prompts longer than the model was trained on\)/);
    expect(['red', 'blue']).toContain(report.episodes[1].prediction);
    for (const e of report.episodes) expect(e.correct).toBe(e.prediction.toLowerCase().replace(/\.$/, '') === e.answer);
  });

  it('reports each broken line of an episode file by number and evaluates the rest', async () => {
    const episodes = join(dir, 'bad.jsonl');
    const good = JSON.stringify({ id: 'g', task: 't', segments: [{ image: 'red.png' }, { text: 'Output:' }], answer: 'red', options: ['red', 'blue'] });
    const missing = JSON.stringify({ id: 'm', task: 't', segments: [{ image: 'nowhere.png' }, { text: 'Output:' }], answer: 'x' });
    writeFileSync(episodes, `{oops\n${good}\n{"id":"a"}\n${missing}\n`);
    const out = join(dir, 'bad-report.json');
    const r = await cli('eval', '--episodes', episodes, '--out', out);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('bad.jsonl:1: not valid JSON');
    expect(r.stderr).toContain('bad.jsonl:3: an episode needs');
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.episodes.map((e: { id: string }) => e.id)).toEqual(['g']);
    expect(report.skipped.map((s: { line: number }) => s.line)).toEqual([1, 3, 4]);
    expect(report.skipped[2].error).toContain('nowhere.png');
  });

  it('fails with one line when no episode line can be read', async () => {
    const episodes = join(dir, 'all-bad.jsonl');
    writeFileSync(episodes, '{oops\n');
    const r = await cli('eval', '--episodes', episodes);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no readable episode');
  });

  it('benchmarks real work and writes JSON', async () => {
    const out = join(dir, 'bench.json');
    const r = await cli('bench', '--shots', '0,2', '--tokens', '3', '--repeats', '1', '--out', out);
    expect(r.code).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    expect(report.rows.map((row: { shots: number }) => row.shots)).toEqual([0, 2]);
    for (const row of report.rows) {
      expect(row.decodeTokens).toBe(3);
      expect(row.decodeTokensPerSecond).toBeGreaterThan(0);
      expect(row.imageEncodeMsPerImage).toBeGreaterThan(0);
    }
    expect(report.rows[1].promptTokens).toBeGreaterThan(report.rows[0].promptTokens);
  });

  it('prints usage for an unknown command', async () => {
    const r = await cli('frobnicate');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Unknown command "frobnicate"');
  });
});
