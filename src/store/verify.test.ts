import { describe, expect, it } from 'vitest';
import { FlamingoError } from '../engine/types';
import { sha256Hex, verifyFile } from './verify';

const abc = new TextEncoder().encode('abc');
const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

describe('sha256Hex', () => {
  it('matches the FIPS 180-2 test vector', async () => {
    expect(await sha256Hex(abc)).toBe(ABC_SHA256);
  });

  it('hashes only the view, not the whole buffer behind it', async () => {
    const padded = new Uint8Array([120, 97, 98, 99, 120]);
    expect(await sha256Hex(padded.subarray(1, 4))).toBe(ABC_SHA256);
  });
});

describe('verifyFile', () => {
  it('accepts the file the manifest describes', async () => {
    await expect(verifyFile(abc, { path: 'lm.onnx', bytes: 3, sha256: ABC_SHA256 }, 'lm.onnx')).resolves.toBeUndefined();
  });

  it('names the file when its size is wrong', async () => {
    const check = verifyFile(abc, { path: 'lm.onnx', bytes: 4, sha256: ABC_SHA256 }, 'lm.onnx');
    await expect(check).rejects.toBeInstanceOf(FlamingoError);
    await expect(check).rejects.toThrow(/lm\.onnx is 3 bytes.*says 4/);
  });

  it('names the file when its hash is wrong', async () => {
    const check = verifyFile(abc, { path: 'tokenizer.json', bytes: 3, sha256: '0'.repeat(64) }, 'tokenizer.json');
    await expect(check).rejects.toThrow(/tokenizer\.json failed its integrity check/);
  });
});
