// The example library as a file: JSON with each image as a PNG data URL. Reading a file checks
// all of it before anything is added, so a bad file changes nothing. Pure: no DOM, no storage.
import { FlamingoError } from '../engine/types';

export const LIBRARY_FILE_FORMAT = 'flamingo-web/example-library';
export const LIBRARY_FILE_VERSION = 1;
/** Larger than any sensible example image (the model sees them at a few dozen pixels a side). */
export const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
const MAX_EXAMPLES = 10_000;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const DATA_URL_PREFIX = 'data:image/png;base64,';

/** One labelled example: a PNG image and the text that follows it in a prompt ("Output: dog face."). */
export interface ExampleRecord {
  name: string;
  text: string;
  png: Uint8Array;
  addedAt: number;
}

interface LibraryFile {
  format: typeof LIBRARY_FILE_FORMAT;
  version: typeof LIBRARY_FILE_VERSION;
  examples: { name: string; text: string; image: string; addedAt: number }[];
}

export class LibraryFileError extends FlamingoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LibraryFileError';
  }
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length > PNG_SIGNATURE.length && PNG_SIGNATURE.every((byte, i) => bytes[i] === byte);
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function base64ToBytes(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function serializeLibrary(examples: readonly ExampleRecord[]): string {
  const file: LibraryFile = {
    format: LIBRARY_FILE_FORMAT,
    version: LIBRARY_FILE_VERSION,
    examples: examples.map(({ name, text, png, addedAt }) => ({
      name,
      text,
      image: DATA_URL_PREFIX + bytesToBase64(png),
      addedAt,
    })),
  };
  return `${JSON.stringify(file, null, 1)}\n`;
}

/** Reads a library file; throws a LibraryFileError that says what is wrong and where. */
export function parseLibraryFile(contents: string): ExampleRecord[] {
  let json: unknown;
  try {
    json = JSON.parse(contents);
  } catch (cause) {
    throw new LibraryFileError('This file is not an example library: it is not valid JSON.', { cause });
  }
  if (!isObject(json) || json.format !== LIBRARY_FILE_FORMAT) {
    throw new LibraryFileError(`This file is not an example library (its "format" is not "${LIBRARY_FILE_FORMAT}").`);
  }
  if (json.version !== LIBRARY_FILE_VERSION) {
    throw new LibraryFileError(
      `This example library is version ${String(json.version)}; this app reads version ${LIBRARY_FILE_VERSION}.`,
    );
  }
  if (!Array.isArray(json.examples)) throw new LibraryFileError('This example library has no "examples" list.');
  if (json.examples.length > MAX_EXAMPLES) {
    throw new LibraryFileError(`This example library has ${json.examples.length} examples; at most ${MAX_EXAMPLES}, please.`);
  }
  return json.examples.map((entry: unknown, index: number) => {
    const where = `Example ${index + 1}`;
    if (!isObject(entry)) throw new LibraryFileError(`${where} is not an object.`);
    const { name, text, image, addedAt } = entry;
    if (typeof text !== 'string') throw new LibraryFileError(`${where} has no "text" (its label, e.g. "Output: dog face.").`);
    if (name !== undefined && typeof name !== 'string') throw new LibraryFileError(`${where}: "name" is not text.`);
    if (typeof image !== 'string' || !image.startsWith(DATA_URL_PREFIX)) {
      throw new LibraryFileError(`${where}: "image" is not a PNG data URL (data:image/png;base64,…).`);
    }
    const base64 = image.slice(DATA_URL_PREFIX.length);
    if (base64.length > (MAX_IMAGE_BYTES * 4) / 3 + 4) {
      throw new LibraryFileError(`${where}: the image is larger than ${MAX_IMAGE_BYTES / (1024 * 1024)} MB.`);
    }
    let png: Uint8Array;
    try {
      png = base64ToBytes(base64);
    } catch (cause) {
      throw new LibraryFileError(`${where}: the image data is not valid base64.`, { cause });
    }
    if (!isPng(png)) throw new LibraryFileError(`${where}: the image is not a PNG file.`);
    return {
      name: typeof name === 'string' && name.trim() !== '' ? name : `example ${index + 1}.png`,
      text,
      png,
      addedAt: typeof addedAt === 'number' && Number.isFinite(addedAt) ? addedAt : 0,
    };
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
