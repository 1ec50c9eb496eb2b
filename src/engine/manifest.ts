// Checks that a manifest.json has what the engine reads, so that a broken or foreign model
// folder fails with a message naming the field instead of a runtime error deep in a graph call.
import { FlamingoError, MODEL_FILE_ROLES, type Manifest } from './types';

export const MANIFEST_FORMAT = 'flamingo-web/2';

function fail(field: string, why: string): never {
  throw new FlamingoError(`manifest.json: ${field} ${why}`);
}

function positiveInt(obj: Record<string, unknown>, section: string, key: string): void {
  const v = obj[key];
  if (!Number.isInteger(v) || (v as number) <= 0) fail(`${section}.${key}`, `must be a positive integer (got ${JSON.stringify(v)})`);
}

function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'is missing or not an object');
  return v as Record<string, unknown>;
}

export function validateManifest(input: unknown): Manifest {
  const m = record(input, '(root)');
  if (m.format !== MANIFEST_FORMAT) {
    const old = m.format === 'flamingo-web/1' ? ' (a model folder from before xattn_kv.onnx: export it again)' : '';
    fail('format', `must be "${MANIFEST_FORMAT}" (got ${JSON.stringify(m.format)})${old}`);
  }
  const files = record(m.files, 'files');
  for (const role of MODEL_FILE_ROLES) {
    const f = record(files[role], `files.${role}`);
    if (typeof f.path !== 'string' || !f.path) fail(`files.${role}.path`, 'must be a file name');
    if (!Number.isInteger(f.bytes) || (f.bytes as number) < 0) fail(`files.${role}.bytes`, 'must be a byte count');
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) fail(`files.${role}.sha256`, 'must be 64 lower-case hex digits');
  }
  const vision = record(m.vision, 'vision');
  for (const k of ['image_size', 'n_tokens', 'd_vision', 'max_frames']) positiveInt(vision, 'vision', k);
  for (const k of ['mean', 'std', 'background']) {
    const a = vision[k];
    if (!Array.isArray(a) || a.length !== 3 || !a.every((x) => typeof x === 'number')) fail(`vision.${k}`, 'must be three numbers');
  }
  const resampler = record(m.resampler, 'resampler');
  for (const k of ['n_latents', 'layers', 'heads']) positiveInt(resampler, 'resampler', k);
  const lm = record(m.lm, 'lm');
  for (const k of ['vocab_size', 'd_model', 'layers', 'heads', 'head_dim', 'context_length']) positiveInt(lm, 'lm', k);
  if (!Array.isArray(lm.xattn_layers)) fail('lm.xattn_layers', 'must be a list of layer indices');
  if (lm.gates !== undefined && !(Array.isArray(lm.gates) && lm.gates.every((g) => typeof g?.attn === 'number' && typeof g?.ff === 'number'))) {
    fail('lm.gates', 'must be a list of {layer, attn, ff}');
  }
  const special = record(m.special_tokens, 'special_tokens');
  for (const k of ['image', 'end_of_chunk', 'bos', 'pad', 'unk']) {
    if (typeof special[k] !== 'string') fail(`special_tokens.${k}`, 'must be a string');
  }
  record(m.prompt_templates, 'prompt_templates');
  return m as unknown as Manifest;
}
