import { describe, expect, it } from 'vitest';
import { withExifOrientation } from '../../e2e/fixtures/exifOrientation';
import { checkImageFile, checkPrompt, checkPromptTokens, decodeSize, LIMITS, orientPixels, readImageHeader, uprightSize } from './limits';
import type { Manifest, Prompt } from './types';

const manifest = { lm: { context_length: 256 }, vision: { max_frames: 8 } } as Manifest;

function png(width: number, height: number, { iend = true, bitDepth = 8, animated = false } = {}): Uint8Array {
  const chunk = (type: string, data: number[]) => {
    const len = [24, 16, 8, 0].map((s) => (data.length >>> s) & 255);
    return [...len, ...Array.from(type, (c) => c.charCodeAt(0)), ...data, 0, 0, 0, 0];
  };
  const be = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255);
  return Uint8Array.from([
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,
    ...chunk('IHDR', [...be(width), ...be(height), bitDepth, 6, 0, 0, 0]),
    ...(animated ? chunk('acTL', [0, 0, 0, 2, 0, 0, 0, 0]) : []),
    ...chunk('IDAT', [1, 2, 3]),
    ...(iend ? chunk('IEND', []) : []),
  ]);
}

function jpeg(width: number, height: number, components = 3, eoi = true): Uint8Array {
  const sof = [0xff, 0xc0, 0, 8 + 3 * components, 8, height >> 8, height & 255, width >> 8, width & 255, components, ...Array(3 * components).fill(1)];
  return Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, ...sof, 0xff, 0xda, 0, 2, 7, 7, ...(eoi ? [0xff, 0xd9] : [])]);
}

describe('image files are checked by their header before decoding', () => {
  it('reads PNG, JPEG, GIF, WebP and BMP sizes', () => {
    expect(readImageHeader(png(40, 30))).toMatchObject({ format: 'png', width: 40, height: 30, complete: true, animated: false });
    expect(readImageHeader(jpeg(640, 480))).toMatchObject({ format: 'jpeg', width: 640, height: 480, complete: true });
    const gif = Uint8Array.from([...Array.from('GIF89a', (c) => c.charCodeAt(0)), 10, 0, 20, 0, 0, 0, 0, 0x3b]);
    expect(readImageHeader(gif)).toMatchObject({ format: 'gif', width: 10, height: 20, complete: true });
    const webp = new Uint8Array(30);
    webp.set(Array.from('RIFF', (c) => c.charCodeAt(0)), 0);
    webp.set([22, 0, 0, 0], 4);
    webp.set(Array.from('WEBPVP8X', (c) => c.charCodeAt(0)), 8);
    webp.set([99, 0, 0, 49, 0, 0], 24); // 100 × 50
    expect(readImageHeader(webp)).toMatchObject({ format: 'webp', width: 100, height: 50, complete: true });
    const bmp = new Uint8Array(26);
    bmp.set([0x42, 0x4d, 26, 0, 0, 0], 0);
    bmp.set([7, 0, 0, 0, 9, 0, 0, 0], 18);
    expect(readImageHeader(bmp)).toMatchObject({ format: 'bmp', width: 7, height: 9, complete: true });
  });

  it('refuses empty, foreign, truncated and oversized files with their reason', () => {
    expect(() => checkImageFile(new Uint8Array(0), 'a.png')).toThrow('“a.png” is empty (0 bytes)');
    expect(() => checkImageFile(new TextEncoder().encode('%PDF-1.7'), 'doc.pdf')).toThrow('“doc.pdf” is not an image');
    expect(() => checkImageFile(png(40, 30, { iend: false }), 'cut.png')).toThrow('truncated or damaged PNG');
    expect(() => checkImageFile(jpeg(40, 30, 3, false), 'cut.jpg')).toThrow('truncated or damaged JPEG');
    expect(() => checkImageFile(png(10000, 10000), 'huge.png')).toThrow('10000×10000 pixels (100 megapixels)');
    expect(() => checkImageFile(png(0, 30), 'zero.png')).toThrow('its size cannot be read');
  });

  it('accepts odd but readable images, saying what is odd', () => {
    expect(checkImageFile(png(8, 8, { bitDepth: 16 }), 'deep.png').notes).toContain('16 bits per channel');
    expect(checkImageFile(jpeg(8, 8, 4), 'cmyk.jpg').notes).toContain('CMYK');
    expect(checkImageFile(png(8, 8, { animated: true }), 'anim.png').notes).toContain('animated: its first frame is used');
  });

  it('reads the EXIF orientation of a JPEG (APP1) and a PNG (eXIf); 5-8 are shown a quarter turned', () => {
    const phone = checkImageFile(withExifOrientation(Buffer.from(jpeg(1600, 800)), 6), 'phone.jpg');
    expect(phone).toMatchObject({ format: 'jpeg', width: 1600, height: 800, orientation: 6, complete: true });
    expect(phone.notes).toContain('EXIF orientation 6: decoded upright');
    expect(uprightSize(phone)).toEqual({ width: 800, height: 1600 });
    expect(readImageHeader(withExifOrientation(Buffer.from(png(40, 30)), 8))).toMatchObject({ width: 40, height: 30, orientation: 8 });
    expect(uprightSize(readImageHeader(withExifOrientation(Buffer.from(png(40, 30)), 3))!)).toEqual({ width: 40, height: 30 });
    expect(readImageHeader(png(40, 30))?.orientation).toBe(1);
    expect(readImageHeader(jpeg(40, 30))?.orientation).toBe(1);
  });

  it('turns pixels upright as each EXIF orientation says', () => {
    // 3×2 stored, each pixel's red channel its index: 0 1 2 / 3 4 5
    const stored = { width: 3, height: 2, data: Uint8Array.from({ length: 24 }, (_, i) => i >> 2) };
    const rows = (image: { width: number; height: number; data: Uint8Array | Uint8ClampedArray }) =>
      Array.from({ length: image.height }, (_, y) => Array.from({ length: image.width }, (_, x) => image.data[(y * image.width + x) * 4]));
    expect(rows(orientPixels(stored, 1))).toEqual([[0, 1, 2], [3, 4, 5]]);
    expect(rows(orientPixels(stored, 2))).toEqual([[2, 1, 0], [5, 4, 3]]);
    expect(rows(orientPixels(stored, 3))).toEqual([[5, 4, 3], [2, 1, 0]]);
    expect(rows(orientPixels(stored, 4))).toEqual([[3, 4, 5], [0, 1, 2]]);
    expect(rows(orientPixels(stored, 5))).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(rows(orientPixels(stored, 6))).toEqual([[3, 0], [4, 1], [5, 2]]); // a quarter turn clockwise
    expect(rows(orientPixels(stored, 7))).toEqual([[5, 2], [4, 1], [3, 0]]);
    expect(rows(orientPixels(stored, 8))).toEqual([[2, 5], [1, 4], [0, 3]]); // a quarter turn anticlockwise
  });

  it('decodes large images scaled down, aspect kept', () => {
    expect(decodeSize(4000, 2000)).toEqual({ width: LIMITS.decodeMaxSide, height: LIMITS.decodeMaxSide / 2 });
    expect(decodeSize(64, 48)).toEqual({ width: 64, height: 48 });
  });
});

describe('prompts are checked before any work', () => {
  const image = { width: 2, height: 2, data: new Uint8Array(16) };
  it('refuses an empty prompt, too many images, too much text, a malformed image', () => {
    expect(() => checkPrompt([], manifest)).toThrow('The prompt is empty');
    const many: Prompt = Array.from({ length: 100 }, () => ({ image }));
    expect(() => checkPrompt(many, manifest)).toThrow('100 images and clips; at most 64');
    expect(() => checkPrompt([{ image }, { text: 'x'.repeat(1 << 20) }], manifest)).toThrow('1,048,576 characters of text; at most 20,000');
    expect(() => checkPrompt([{ image: { width: 3, height: 2, data: new Uint8Array(16) } }], manifest)).toThrow('malformed');
    expect(() => checkPrompt([{ video: [] }], manifest)).toThrow('has no frames');
  });

  it('accepts a prompt without images (the answer comes from text) and unusual Unicode', () => {
    expect(() => checkPrompt([{ text: 'Output: e\u0301t\u00e9 \u05e9\u05dc\u05d5\u05dd 🐶\u0000' }], manifest)).not.toThrow();
  });

  it('refuses a prompt past a few times the trained context, naming it', () => {
    expect(() => checkPromptTokens(1024, manifest)).not.toThrow();
    expect(() => checkPromptTokens(1025, manifest)).toThrow('1025 tokens; this model was trained on 256 and runs at most 1024');
  });
});
