// Image files → RgbaImage at natural size. The engine resizes and normalises; the UI only
// decodes, without premultiplying alpha or converting colour spaces.
import { checkImageFile, decodeSize, LIMITS, uprightSize } from '../engine/limits';
import { FlamingoError, type RgbaImage } from '../engine/types';

/**
 * The file's header is checked first (limits.ts: empty, not an image, truncated, too many pixels),
 * so nothing is decoded that would fail or exhaust memory; then it is decoded at most
 * LIMITS.decodeMaxSide a side (the model sees 64×64 anyway).
 */
export async function decodeImage(blob: Blob, name: string): Promise<RgbaImage> {
  if (blob.type && !blob.type.startsWith('image/')) {
    throw new FlamingoError(`“${name}” is not an image (its type is ${blob.type}).`);
  }
  if (blob.size > LIMITS.maxImageBytes) {
    throw new FlamingoError(`“${name}” is ${(blob.size / 2 ** 20).toFixed(0)} MB; image files up to ${LIMITS.maxImageBytes / 2 ** 20} MB are read.`);
  }
  const header = checkImageFile(new Uint8Array(await blob.arrayBuffer()), name);
  // EXIF orientation is applied before the resize: a phone's portrait photo (stored landscape,
  // orientation 6) is scaled to its upright size, not squeezed into the stored one.
  const upright = uprightSize(header);
  const { width, height } = decodeSize(upright.width, upright.height);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      imageOrientation: 'from-image', // the default; said here because the sizes above depend on it
      premultiplyAlpha: 'none',
      colorSpaceConversion: 'none',
      ...(width !== upright.width ? { resizeWidth: width, resizeHeight: height, resizeQuality: 'high' as const } : {}),
    });
  } catch (cause) {
    throw new FlamingoError(`Could not decode the image “${name}”: the file is damaged or not in a format this browser reads.`, {
      cause,
    });
  }
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    if (!context) throw new FlamingoError(`Could not decode the image “${name}”: no 2D canvas available.`);
    context.drawImage(bitmap, 0, 0);
    const { data } = context.getImageData(0, 0, bitmap.width, bitmap.height);
    return { width: bitmap.width, height: bitmap.height, data };
  } finally {
    bitmap.close();
  }
}

/** A copy whose buffer can be transferred to the worker while the original stays here. */
export function transferableCopy(image: RgbaImage): RgbaImage {
  return { width: image.width, height: image.height, data: new Uint8ClampedArray(image.data) };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The image as PNG bytes (a PNG file as it is; any other format drawn and re-encoded). */
export async function toPngBytes(blob: Blob, name: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) return bytes;
  const image = await decodeImage(blob, name);
  const canvas = new OffscreenCanvas(image.width, image.height);
  const context = canvas.getContext('2d');
  if (!context) throw new FlamingoError(`Could not convert “${name}” to PNG: no 2D canvas available.`);
  context.putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
  return new Uint8Array(await (await canvas.convertToBlob({ type: 'image/png' })).arrayBuffer());
}
