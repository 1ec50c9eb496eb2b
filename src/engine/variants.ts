// Quantised variants of a model (docs/MODEL_FORMAT.md, "Variants"): which one a backend gets, and
// which files it loads. A variant's files replace some roles' float32 files; the graphs' inputs
// and outputs stay the same, so the engine runs any of them unchanged.
import type { Backend, Manifest, ManifestFile, ModelFileRole } from './types';
import { FlamingoError } from './types';

/** The default files (no variant). */
export const FLOAT32 = 'float32';

/** `auto`, `float32` or a variant's name from the manifest. */
export type VariantChoice = string;

/**
 * `auto`: the first variant in manifest order meant for `backend` whose `requires` the adapter's
 * `features` all meet (none on WASM or the CPU), else float32. A name is taken as asked.
 */
export function pickVariant(
  manifest: Manifest,
  backend: Backend,
  features: ReadonlySet<string>,
  choice: VariantChoice = 'auto',
): string {
  const variants = manifest.variants ?? {};
  if (choice !== 'auto') {
    if (choice !== FLOAT32 && !(choice in variants)) {
      const known = [...Object.keys(variants), FLOAT32].join(', ');
      throw new FlamingoError(`The model has no variant "${choice}" (it has: ${known}).`);
    }
    return choice;
  }
  for (const [name, variant] of Object.entries(variants)) {
    if (variant.backends.includes(backend) && (variant.requires ?? []).every((f) => features.has(f))) return name;
  }
  return FLOAT32;
}

/** Every role's file for `variant`: its own where it has one, the float32 file elsewhere. */
export function variantFiles(manifest: Manifest, variant: string): Record<ModelFileRole, ManifestFile> {
  if (variant === FLOAT32) return manifest.files;
  const own = manifest.variants?.[variant];
  if (!own) throw new FlamingoError(`The model has no variant "${variant}".`);
  return { ...manifest.files, ...own.files };
}

/** The manifest as the engine should see it for `variant` (its files in place of the roles they replace). */
export function withVariant(manifest: Manifest, variant: string): Manifest {
  return variant === FLOAT32 ? manifest : { ...manifest, files: variantFiles(manifest, variant) };
}
