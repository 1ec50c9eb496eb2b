// A host's image (Blob, ImageBitmap or data: URL) → the pixels the engine takes, plus a URL the
// embed's view shows it with. Blobs and data URLs decode as the studio's files do (src/ui/images.ts).
import { FlamingoError, type RgbaImage } from '../engine/types';
import { decodeImage } from '../ui/images';
import type { ImageInput } from './protocol';

export interface DecodedImage {
  image: RgbaImage;
  /** An object URL: revoke it when the view no longer shows the image. */
  displayUrl: string;
}

export async function decodeImageInput(input: ImageInput, name: string): Promise<DecodedImage> {
  if (typeof input === 'string') {
    let blob: Blob;
    try {
      blob = await (await fetch(input)).blob();
    } catch (cause) {
      throw new FlamingoError(`${name} is not a readable data: URL.`, { cause });
    }
    return decodeBlob(blob, name);
  }
  if (input instanceof Blob) return decodeBlob(input, name);
  return decodeBitmap(input, name);
}

async function decodeBlob(blob: Blob, name: string): Promise<DecodedImage> {
  const image = await decodeImage(blob, name);
  return { image, displayUrl: URL.createObjectURL(blob) };
}

async function decodeBitmap(bitmap: ImageBitmap, name: string): Promise<DecodedImage> {
  const { width, height } = bitmap;
  if (width === 0 || height === 0) throw new FlamingoError(`${name} is an empty ImageBitmap (closed or 0×0).`);
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new FlamingoError(`Could not read ${name}: no 2D canvas available.`);
  context.drawImage(bitmap, 0, 0);
  const { data } = context.getImageData(0, 0, width, height);
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  return { image: { width, height, data }, displayUrl: URL.createObjectURL(blob) };
}
