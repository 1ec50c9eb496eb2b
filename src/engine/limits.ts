// One set of input limits, checked before any work starts, by the studio, the embed and the CLI
// alike: image files by their header (before decoding a single pixel), prompts by their counts
// (before tokenizing or encoding). Every refusal is a FlamingoError naming the input and the limit.
import type { Manifest, Prompt, RgbaImage } from './types';
import { FlamingoError } from './types';

export const LIMITS = {
  /** Image files larger than this are refused before decoding (10000×10000 is 100 MP). */
  maxImageMegapixels: 40,
  /** Decoded images are scaled down to at most this many pixels a side (the model sees 64). */
  decodeMaxSide: 1024,
  maxImageBytes: 50 * 1024 * 1024,
  /** Images and clips in one prompt: each is one more set of latents every token may attend to. */
  maxImages: 64,
  maxFramesPerClip: 64,
  /** Characters of text in one prompt, checked before tokenizing. */
  maxTextChars: 20_000,
  /** Prompt tokens: a few times the trained context (answers degrade past it; the app warns). */
  maxPromptTokensPerContext: 4,
} as const;

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'bmp';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** The file ends where its format says it does (PNG IEND, JPEG EOI, ...). */
  complete: boolean;
  animated: boolean;
  /**
   * The EXIF orientation (1-8; 1: as stored). 5-8 turn the image a quarter: shown upright it is
   * `height` wide and `width` tall. Browsers apply it when decoding; the CLI turns PNG pixels itself.
   */
  orientation: number;
  /** JPEG with 4 components (CMYK/YCCK), PNG with 16 bits per channel, and such: decodable, worth knowing. */
  notes: string[];
}

const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
const u16be = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];
const u16le = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
const ascii = (b: Uint8Array, i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n));

/**
 * The Orientation tag (0x0112) of IFD0 in EXIF data: a TIFF header at `start` (byte order `II` or
 * `MM`). 1 when there is none or it is out of range.
 */
function exifOrientation(b: Uint8Array, start: number, end: number): number {
  if (start + 8 > end) return 1;
  const little = b[start] === 0x49 && b[start + 1] === 0x49;
  if (!little && !(b[start] === 0x4d && b[start + 1] === 0x4d)) return 1;
  const u16 = (i: number) => (little ? u16le(b, i) : u16be(b, i));
  const u32 = (i: number) => (little ? (u16le(b, i) | (u16le(b, i + 2) << 16)) >>> 0 : u32be(b, i));
  const ifd = start + u32(start + 4);
  if (ifd + 2 > end) return 1;
  const count = u16(ifd);
  for (let k = 0; k < count; k++) {
    const entry = ifd + 2 + k * 12;
    if (entry + 12 > end) break;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

/** Reads an image file's format and size from its header; undefined when it is no image we know. */
export function readImageHeader(b: Uint8Array): ImageHeader | undefined {
  if (b.length >= 24 && u32be(b, 0) === 0x89504e47 && u32be(b, 4) === 0x0d0a1a0a && ascii(b, 12, 4) === 'IHDR') {
    let animated = false;
    let complete = false;
    let orientation = 1;
    for (let i = 8; i + 8 <= b.length; ) {
      const length = u32be(b, i);
      const type = ascii(b, i + 4, 4);
      if (type === 'acTL') animated = true;
      if (type === 'eXIf') orientation = exifOrientation(b, i + 8, Math.min(b.length, i + 8 + length));
      if (type === 'IEND') {
        complete = i + 12 <= b.length;
        break;
      }
      i += 12 + length;
    }
    const notes = b[24] === 16 ? ['16 bits per channel'] : [];
    return { format: 'png', width: u32be(b, 16), height: u32be(b, 20), complete, animated, orientation, notes };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let size: { width: number; height: number } | undefined;
    let orientation = 1;
    const notes: string[] = [];
    for (let i = 2; i + 4 <= b.length && !size; ) {
      if (b[i] !== 0xff) break;
      const marker = b[i + 1];
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01 || marker === 0xff) {
        i += marker === 0xff ? 1 : 2;
        continue;
      }
      const length = u16be(b, i + 2);
      if (marker === 0xe1 && ascii(b, i + 4, 6) === 'Exif\0\0') orientation = exifOrientation(b, i + 10, Math.min(b.length, i + 2 + length));
      const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isFrame && i + 10 <= b.length) {
        size = { height: u16be(b, i + 5), width: u16be(b, i + 7) };
        if (b[i + 9] === 4) notes.push('CMYK');
      }
      i += 2 + length;
    }
    if (!size) return { format: 'jpeg', width: 0, height: 0, complete: false, animated: false, orientation, notes };
    let end = b.length;
    while (end > 2 && b[end - 1] === 0) end--; // some writers pad after EOI
    const complete = b[end - 2] === 0xff && b[end - 1] === 0xd9;
    return { format: 'jpeg', ...size, complete, animated: false, orientation, notes };
  }
  if (b.length >= 10 && ascii(b, 0, 4) === 'GIF8') {
    const complete = b[b.length - 1] === 0x3b;
    let frames = 0;
    for (let i = 13; i < b.length - 1; i++) if (b[i] === 0x21 && b[i + 1] === 0xf9) frames++; // graphic control extensions
    return { format: 'gif', width: u16le(b, 6), height: u16le(b, 8), complete, animated: frames > 1, orientation: 1, notes: [] };
  }
  if (b.length >= 30 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') {
    const complete = b.length >= 8 + (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24));
    const chunk = ascii(b, 12, 4);
    let width = 0;
    let height = 0;
    let animated = false;
    if (chunk === 'VP8X') {
      animated = (b[20] & 0x02) !== 0;
      width = 1 + (b[24] | (b[25] << 8) | (b[26] << 16));
      height = 1 + (b[27] | (b[28] << 8) | (b[29] << 16));
    } else if (chunk === 'VP8L') {
      const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
      width = 1 + (bits & 0x3fff);
      height = 1 + ((bits >> 14) & 0x3fff);
    } else if (chunk === 'VP8 ') {
      width = u16le(b, 26) & 0x3fff;
      height = u16le(b, 28) & 0x3fff;
    }
    return { format: 'webp', width, height, complete, animated, orientation: 1, notes: [] };
  }
  if (b.length >= 26 && ascii(b, 0, 2) === 'BM') {
    const width = b[18] | (b[19] << 8) | (b[20] << 16) | (b[21] << 24);
    const height = Math.abs(b[22] | (b[23] << 8) | (b[24] << 16) | (b[25] << 24));
    const complete = b.length >= (b[2] | (b[3] << 8) | (b[4] << 16) | (b[5] << 24));
    return { format: 'bmp', width, height, complete, animated: false, orientation: 1, notes: [] };
  }
  return undefined;
}

/**
 * The checks every image file passes before it is decoded. Returns its header; animated images
 * are accepted (their first frame is used) and say so in `notes`.
 */
export function checkImageFile(bytes: Uint8Array, name: string): ImageHeader {
  if (bytes.length === 0) throw new FlamingoError(`“${name}” is empty (0 bytes): not an image.`);
  if (bytes.length > LIMITS.maxImageBytes) {
    throw new FlamingoError(`“${name}” is ${(bytes.length / 2 ** 20).toFixed(0)} MB; image files up to ${LIMITS.maxImageBytes / 2 ** 20} MB are read.`);
  }
  const header = readImageHeader(bytes);
  if (!header) throw new FlamingoError(`“${name}” is not an image: it is not PNG, JPEG, GIF, WebP or BMP.`);
  const kind = header.format.toUpperCase();
  if (!header.width || !header.height) throw new FlamingoError(`“${name}” is a damaged ${kind}: its size cannot be read.`);
  if (!header.complete) throw new FlamingoError(`“${name}” is a truncated or damaged ${kind}: the file ends before the image does.`);
  const megapixels = (header.width * header.height) / 1e6;
  if (megapixels > LIMITS.maxImageMegapixels) {
    throw new FlamingoError(
      `“${name}” is ${header.width}×${header.height} pixels (${megapixels.toFixed(0)} megapixels); images up to ${LIMITS.maxImageMegapixels} megapixels are read (the model sees ${'64×64'}: scale it down first).`,
    );
  }
  if (header.animated) header.notes.push('animated: its first frame is used');
  if (header.orientation !== 1) header.notes.push(`EXIF orientation ${header.orientation}: decoded upright`);
  return header;
}

/** The image's size as shown, EXIF orientation applied (5-8 swap width and height). */
export function uprightSize(header: Pick<ImageHeader, 'width' | 'height' | 'orientation'>): { width: number; height: number } {
  return header.orientation >= 5 ? { width: header.height, height: header.width } : { width: header.width, height: header.height };
}

/**
 * RGBA pixels turned as EXIF orientation `orientation` says (1-8), so that they are upright: what
 * browsers do when decoding, done for the CLI's PNG reader (pngjs ignores eXIf).
 */
export function orientPixels(image: RgbaImage, orientation: number): RgbaImage {
  if (orientation <= 1 || orientation > 8) return image;
  const { width: w, height: h, data } = image;
  const turned = orientation >= 5;
  const W = turned ? h : w;
  const H = turned ? w : h;
  const out = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      // the stored pixel (sx, sy) shown at (x, y), per the EXIF 2.3 orientation table
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: [sx, sy] = [w - 1 - x, y]; break;
        case 3: [sx, sy] = [w - 1 - x, h - 1 - y]; break;
        case 4: [sx, sy] = [x, h - 1 - y]; break;
        case 5: [sx, sy] = [y, x]; break;
        case 6: [sx, sy] = [y, h - 1 - x]; break;
        case 7: [sx, sy] = [w - 1 - y, h - 1 - x]; break;
        default: [sx, sy] = [w - 1 - y, x]; break; // 8
      }
      out.set(data.subarray((sy * w + sx) * 4, (sy * w + sx) * 4 + 4), (y * W + x) * 4);
    }
  }
  return { width: W, height: H, data: out };
}

/** The size an image is decoded at: at most LIMITS.decodeMaxSide a side, aspect kept. */
export function decodeSize(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, LIMITS.decodeMaxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** The refusal of a prompt with more than LIMITS.maxImages images and clips (the embed's parser says it too). */
export function tooManyImages(images: number): string {
  return `The prompt has ${images} images and clips; at most ${LIMITS.maxImages} fit in one prompt.`;
}

/** The checks a prompt passes before any work (tokenizing, encoding) starts. */
export function checkPrompt(prompt: Prompt, manifest: Manifest): void {
  if (!Array.isArray(prompt) || prompt.length === 0) throw new FlamingoError('The prompt is empty: add an image and some text.');
  let images = 0;
  let chars = 0;
  prompt.forEach((segment, i) => {
    if ('text' in segment) {
      if (typeof segment.text !== 'string') throw new FlamingoError(`Segment ${i + 1}: its text is not a string.`);
      chars += segment.text.length;
      return;
    }
    const frames = 'image' in segment ? [segment.image] : 'video' in segment ? segment.video : undefined;
    if (!frames) throw new FlamingoError(`Segment ${i + 1} is neither an image, a clip nor text.`);
    if (frames.length === 0) throw new FlamingoError(`Clip ${i + 1} has no frames.`);
    if (frames.length > LIMITS.maxFramesPerClip) {
      throw new FlamingoError(`Clip ${i + 1} has ${frames.length} frames; at most ${LIMITS.maxFramesPerClip} (the model samples ${manifest.vision.max_frames}).`);
    }
    frames.forEach((frame) => checkRgba(frame, i));
    images++;
  });
  if (images > LIMITS.maxImages) throw new FlamingoError(tooManyImages(images));
  if (chars > LIMITS.maxTextChars) {
    throw new FlamingoError(
      `The prompt has ${chars.toLocaleString('en')} characters of text; at most ${LIMITS.maxTextChars.toLocaleString('en')} (this model was trained on ${manifest.lm.context_length} tokens).`,
    );
  }
}

/** Prompt tokens, once counted: refused past a few times the trained context. */
export function checkPromptTokens(tokens: number, manifest: Manifest): void {
  const max = LIMITS.maxPromptTokensPerContext * manifest.lm.context_length;
  if (tokens > max) {
    throw new FlamingoError(
      `The prompt is ${tokens} tokens; this model was trained on ${manifest.lm.context_length} and runs at most ${max}: use fewer or shorter examples.`,
    );
  }
}

function checkRgba(image: RgbaImage, segment: number): void {
  const ok =
    image &&
    Number.isInteger(image.width) &&
    Number.isInteger(image.height) &&
    image.width > 0 &&
    image.height > 0 &&
    image.data?.length === image.width * image.height * 4;
  if (!ok) throw new FlamingoError(`Segment ${segment + 1}: the image is malformed (its pixels do not match its size).`);
  if ((image.width * image.height) / 1e6 > LIMITS.maxImageMegapixels) {
    throw new FlamingoError(`Segment ${segment + 1}: the image is ${image.width}×${image.height}; images up to ${LIMITS.maxImageMegapixels} megapixels are read.`);
  }
}
