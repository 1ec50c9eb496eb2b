import { describe, expect, it } from 'vitest';
import { validateManifest } from './manifest';
import type { Manifest } from './types';
import { FLOAT32, pickVariant, variantFiles, withVariant } from './variants';
import manifestJson from '../../public/models/emojiworld/manifest.json';

const file = (path: string) => ({ path, bytes: 1, sha256: 'a'.repeat(64) });
const bundled = validateManifest(manifestJson);

/** The bundled manifest with these variants, in this order. */
function withVariants(variants: Manifest['variants']): Manifest {
  return validateManifest({ ...bundled, variants });
}

const fp16 = { description: 'f', backends: ['webgpu'], requires: ['shader-f16'], files: { lm: file('lm.fp16.onnx') } };
const q4 = { description: 'q', backends: ['wasm', 'webgpu'], files: { lm: file('lm.q4.onnx') } };

describe('variant choice (auto = first in manifest order that fits backend and adapter)', () => {
  const m = withVariants({ fp16, q4 } as Manifest['variants']);

  it('gives WebGPU with shader-f16 the first variant, and WebGPU without it the next one', () => {
    expect(pickVariant(m, 'webgpu', new Set(['shader-f16', 'timestamp-query']))).toBe('fp16');
    expect(pickVariant(m, 'webgpu', new Set())).toBe('q4');
  });

  it('gives WASM the first variant meant for it (no adapter features there), the CPU float32', () => {
    expect(pickVariant(m, 'wasm', new Set(['shader-f16']))).toBe('q4');
    expect(pickVariant(m, 'cpu', new Set())).toBe(FLOAT32);
  });

  it('follows the manifest order', () => {
    const reordered = withVariants({ q4, fp16 } as Manifest['variants']);
    expect(pickVariant(reordered, 'webgpu', new Set(['shader-f16']))).toBe('q4');
  });

  it('is float32 for a manifest without variants', () => {
    expect(pickVariant(validateManifest({ ...bundled, variants: undefined }), 'webgpu', new Set(['shader-f16']))).toBe(FLOAT32);
  });

  it('takes a named variant as asked, float32 too, and names the ones there are otherwise', () => {
    expect(pickVariant(m, 'cpu', new Set(), 'q4')).toBe('q4');
    expect(pickVariant(m, 'webgpu', new Set(['shader-f16']), 'float32')).toBe(FLOAT32);
    expect(() => pickVariant(m, 'wasm', new Set(), 'q8')).toThrow('The model has no variant "q8" (it has: fp16, q4, float32).');
  });

  it('replaces only the roles a variant has files for', () => {
    const files = variantFiles(m, 'q4');
    expect(files.lm.path).toBe('lm.q4.onnx');
    expect(files.vision_encoder).toEqual(m.files.vision_encoder);
    expect(withVariant(m, FLOAT32)).toBe(m);
    expect(withVariant(m, 'fp16').files.lm.path).toBe('lm.fp16.onnx');
  });
});

describe('manifest variants validation', () => {
  const bad = (variants: unknown) => () => validateManifest({ ...bundled, variants });

  it('names the field that is wrong', () => {
    expect(bad([])).toThrow('manifest.json: variants is missing or not an object');
    expect(bad({ q4: { ...q4, backends: ['webgl'] } })).toThrow('manifest.json: variants.q4.backends has "webgl", not one of webgpu, wasm, cpu');
    expect(bad({ q4: { ...q4, description: 3 } })).toThrow('manifest.json: variants.q4.description must be a string');
    expect(bad({ q4: { ...q4, requires: 'shader-f16' } })).toThrow('manifest.json: variants.q4.requires must be a list of strings');
    expect(bad({ q4: { ...q4, files: { decoder: file('d.onnx') } } })).toThrow('manifest.json: variants.q4.files.decoder replaces no role of files');
    expect(bad({ q4: { ...q4, files: { lm: { ...file('lm.q4.onnx'), sha256: 'x' } } } })).toThrow(
      'manifest.json: variants.q4.files.lm.sha256 must be 64 lower-case hex digits',
    );
    expect(bad({ float32: q4 })).toThrow('manifest.json: variants.float32 is a reserved name');
  });
});
