// A converted OpenFlamingo in the app (models/tools/openflamingo_parity.py: random weights at reduced
// sizes, converted by models/flamingo/convert_openflamingo.py): opened by ?model= from another
// origin, its lm.onnx weights fetched as external data shards into IndexedDB, its byte-level BPE
// tokenizer, ALiBi and no BOS; the prompt built through the studio; the answer must be the PyTorch
// reference's greedy tokens (src/engine/openflamingo.test.ts checks the same through onnxruntime-node).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from '@playwright/test';
import { generate, test, waitForModel } from './helpers';
import { serveFolder, type StaticServer } from './servers';

const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../models/tools/openflamingo_parity.py', import.meta.url));

let dir: string;
let server: StaticServer;
let expected: { prompt: string; images: string[]; greedy_tokens: number[]; greedy_text: string };

test.beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'openflamingo-e2e-'));
  execFileSync(PYTHON, [SCRIPT, dir], { stdio: 'pipe' });
  expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  // another origin: CORS for the worker's fetches (cross-origin isolated pages need it)
  server = await serveFolder(dir, { headers: () => ({ 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' }) });
});

test.afterAll(async () => {
  await server?.close();
});

// WebGPU runs on SwiftShader here (about 2 minutes): correct, not fast
for (const backend of ['wasm', 'webgpu'] as const) {
  test(`a converted OpenFlamingo, sharded, answers with the PyTorch reference greedy tokens on ${backend}`, async ({ page }) => {
    const shards: string[] = [];
    page.on('request', (request) => {
      if (/lm\.onnx\.data-\d+$/.test(request.url())) shards.push(request.url());
    });
    const model = `${server.origin}/model/`;
    const manifest = JSON.parse(readFileSync(join(dir, 'model/manifest.json'), 'utf8'));
    await page.goto(`/?backend=${backend}&variant=float32&model=${encodeURIComponent(model)}`);
    await page.getByTestId('confirm-dialog').getByTestId('confirm-ok').click();
    await waitForModel(page, backend);
    await expect(page.getByTestId('model-ready')).toContainText('openflamingo-parity');
    expect(shards).toHaveLength(manifest.files.lm.external_data.length); // each shard fetched once

    // "A picture:<|endofchunk|><image>Output: a red cat.<|endofchunk|><image>Output:" as segments
    const pieces = expected.prompt.split(/(<image>)/).map((p) => p.replace('<|endofchunk|>', '')).filter(Boolean);
    let image = 0;
    for (const piece of pieces) {
      if (piece === '<image>') {
        await page.getByTestId('image-input').setInputFiles(join(dir, expected.images[image++]));
      } else {
        await page.getByTestId('add-text').click();
        await page.getByTestId('segment-text').last().fill(piece);
      }
    }
    await expect(page.getByTestId('segment')).toHaveCount(pieces.length);
    await page.getByTestId('max-new-tokens').fill(String(expected.greedy_tokens.length));
    expect(await generate(page)).toBe(expected.greedy_text.trim());
  });
}
