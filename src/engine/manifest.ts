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

const BACKENDS = ['webgpu', 'wasm', 'cpu'] as const;

function fileEntry(v: unknown, field: string, shard = false): void {
  const f = record(v, field);
  if (typeof f.path !== 'string' || !f.path) fail(`${field}.path`, 'must be a file name');
  if (!Number.isInteger(f.bytes) || (f.bytes as number) < 0) fail(`${field}.bytes`, 'must be a byte count');
  if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) fail(`${field}.sha256`, 'must be 64 lower-case hex digits');
  if (f.external_data !== undefined) {
    if (shard) fail(`${field}.external_data`, 'is only for a graph, not for a shard');
    if (!Array.isArray(f.external_data)) fail(`${field}.external_data`, 'must be a list of files');
    f.external_data.forEach((s, i) => fileEntry(s, `${field}.external_data[${i}]`, true));
  }
}

function strings(v: unknown, field: string, allowed?: readonly string[]): void {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) fail(field, 'must be a list of strings');
  const bad = allowed && (v as string[]).find((x) => !allowed.includes(x));
  if (allowed && bad !== undefined) fail(field, `has ${JSON.stringify(bad)}, not one of ${allowed.join(', ')}`);
}

function requirements(v: unknown, field: string): void {
  const r = record(v, field);
  for (const k of ['storage_bytes', 'memory_bytes', 'largest_tensor_bytes']) positiveInt(r, field, k);
}

/** `variants`: {name: {description, backends, requires?, files}}, each file replacing a role's. */
function validateVariants(v: unknown, roles: Record<string, unknown>): void {
  const variants = record(v, 'variants');
  for (const [name, value] of Object.entries(variants)) {
    const field = `variants.${name}`;
    if (name === 'float32' || name === 'auto') fail(field, 'is a reserved name (the default files, the automatic pick)');
    const variant = record(value, field);
    if (typeof variant.description !== 'string') fail(`${field}.description`, 'must be a string');
    strings(variant.backends, `${field}.backends`, BACKENDS);
    if (variant.requires !== undefined) strings(variant.requires, `${field}.requires`);
    if (variant.requirements !== undefined) requirements(variant.requirements, `${field}.requirements`);
    const files = record(variant.files, `${field}.files`);
    for (const [role, file] of Object.entries(files)) {
      if (!(role in roles)) fail(`${field}.files.${role}`, 'replaces no role of files');
      fileEntry(file, `${field}.files.${role}`);
    }
  }
}

export function validateManifest(input: unknown): Manifest {
  const m = record(input, '(root)');
  if (m.format !== MANIFEST_FORMAT) {
    const old = m.format === 'flamingo-web/1' ? ' (a model folder from before xattn_kv.onnx: export it again)' : '';
    fail('format', `must be "${MANIFEST_FORMAT}" (got ${JSON.stringify(m.format)})${old}`);
  }
  const files = record(m.files, 'files');
  for (const role of MODEL_FILE_ROLES) fileEntry(files[role], `files.${role}`);
  if (m.variants !== undefined) validateVariants(m.variants, files);
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
  for (const k of ['xattn_heads', 'xattn_head_dim']) if (lm[k] !== undefined) positiveInt(lm, 'lm', k);
  if (lm.positions !== undefined && lm.positions !== 'rope' && lm.positions !== 'alibi') fail('lm.positions', 'must be "rope" or "alibi"');
  if (lm.gates !== undefined && !(Array.isArray(lm.gates) && lm.gates.every((g) => typeof g?.attn === 'number' && typeof g?.ff === 'number'))) {
    fail('lm.gates', 'must be a list of {layer, attn, ff}');
  }
  const special = record(m.special_tokens, 'special_tokens');
  for (const k of ['image', 'end_of_chunk', 'pad', 'unk']) {
    if (typeof special[k] !== 'string') fail(`special_tokens.${k}`, 'must be a string');
  }
  if (special.bos !== undefined && typeof special.bos !== 'string') fail('special_tokens.bos', 'must be a string when present');
  record(m.prompt_templates, 'prompt_templates');
  if (m.requirements !== undefined) requirements(m.requirements, 'requirements');
  return m as unknown as Manifest;
}
