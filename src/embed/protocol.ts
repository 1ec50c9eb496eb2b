// The embed's postMessage protocol (README, "Embedding"): a host page drives /embed.html.
//   host → embed: flamingo:generate {id, segments, options?}; flamingo:interrupt {id}
//   embed → host: flamingo:ready, flamingo:token, flamingo:done, flamingo:error
// parseRequest is strict: anything else that claims to be a request gets an error naming the
// problem, so a host sees its mistake instead of silence.
import { LIMITS, tooManyImages } from '../engine/limits';
import { optionsProblem } from '../engine/options';
import type { Backend, DoneEvent, GenerateOptions } from '../engine/types';

export type RequestId = string | number;

/** An image as the host may send it; data URLs must be `data:image/…`. */
export type ImageInput = Blob | ImageBitmap | string;
export type SegmentInput = { image: ImageInput } | { text: string };

export interface GenerateRequest {
  type: 'flamingo:generate';
  id: RequestId;
  segments: SegmentInput[];
  options: GenerateOptions;
}
export interface InterruptRequest {
  type: 'flamingo:interrupt';
  id: RequestId;
}
export type EmbedRequest = GenerateRequest | InterruptRequest;

export interface ReadyMessage {
  type: 'flamingo:ready';
  backend: Backend;
  crossOriginIsolated: boolean;
  model: { name: string; version: string };
}
export interface TokenMessage {
  type: 'flamingo:token';
  id: RequestId;
  text: string;
}
export interface DoneMessage {
  type: 'flamingo:done';
  id: RequestId;
  text: string;
  stats: Omit<DoneEvent, 'type' | 'text'>;
}
/** `id` is null when the request had no usable id, or for a failure that is no request's (the model). */
export interface ErrorMessage {
  type: 'flamingo:error';
  id: RequestId | null;
  message: string;
}
export type EmbedReply = ReadyMessage | TokenMessage | DoneMessage | ErrorMessage;

export type ParseResult = { ok: true; request: EmbedRequest } | { ok: false; id: RequestId | null; message: string };

/** Entries in "segments": room for every image the limits allow, each with text around it. */
const MAX_SEGMENTS = 4 * LIMITS.maxImages;
const MAX_ID_LENGTH = 200;

/** Whether `data` is meant for us at all: an object whose type starts with "flamingo:". */
export function isProtocolMessage(data: unknown): boolean {
  return typeof data === 'object' && data !== null && typeof (data as { type?: unknown }).type === 'string'
    ? (data as { type: string }).type.startsWith('flamingo:')
    : false;
}

export function parseRequest(data: unknown): ParseResult {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return fail(null, 'A request must be an object such as {type: "flamingo:generate", id, segments}.');
  }
  const message = data as Record<string, unknown>;
  const id = message.id;
  const validId =
    (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) || (typeof id === 'number' && Number.isFinite(id));
  const replyId = validId ? (id as RequestId) : null;
  const type = message.type;
  if (type !== 'flamingo:generate' && type !== 'flamingo:interrupt') {
    return fail(replyId, `Unknown request type ${JSON.stringify(type)}: use "flamingo:generate" or "flamingo:interrupt".`);
  }
  if (!validId) return fail(null, `${type}: "id" must be a non-empty string (at most ${MAX_ID_LENGTH} characters) or a finite number.`);
  const allowedKeys = type === 'flamingo:generate' ? ['type', 'id', 'segments', 'options'] : ['type', 'id'];
  const extra = Object.keys(message).filter((key) => !allowedKeys.includes(key));
  if (extra.length > 0) return fail(replyId, `${type}: unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')}.`);
  if (type === 'flamingo:interrupt') return { ok: true, request: { type, id: replyId! } };

  const segments = parseSegments(message.segments);
  if (typeof segments === 'string') return fail(replyId, `flamingo:generate: ${segments}`);
  const options = parseOptions(message.options);
  if (typeof options === 'string') return fail(replyId, `flamingo:generate: ${options}`);
  return { ok: true, request: { type, id: replyId!, segments, options } };
}

function parseSegments(value: unknown): SegmentInput[] | string {
  if (!Array.isArray(value) || value.length === 0) return '"segments" must be a non-empty array of {image} and {text} objects.';
  if (value.length > MAX_SEGMENTS) return `"segments" has ${value.length} entries; at most ${MAX_SEGMENTS}.`;
  const segments: SegmentInput[] = [];
  for (const [index, segment] of value.entries()) {
    const where = `segments[${index}]`;
    if (typeof segment !== 'object' || segment === null || Array.isArray(segment)) {
      return `${where} must be an object, {image} or {text}.`;
    }
    const keys = Object.keys(segment);
    if (keys.length !== 1 || (keys[0] !== 'image' && keys[0] !== 'text')) {
      return `${where} must have exactly one field, "image" or "text" (it has ${keys.length === 0 ? 'none' : keys.join(', ')}).`;
    }
    if ('text' in segment) {
      if (typeof segment.text !== 'string') return `${where}.text must be a string.`;
      segments.push({ text: segment.text });
      continue;
    }
    const image: unknown = (segment as { image: unknown }).image;
    if (typeof image === 'string') {
      if (!/^data:image\/[a-z0-9.+-]+(;[^,]*)?,/i.test(image)) {
        return `${where}.image is a string but not a data: URL of an image ("data:image/png;base64,…"); URLs to fetch are not accepted.`;
      }
    } else if (!(image instanceof Blob) && !isImageBitmap(image)) {
      return `${where}.image must be a Blob, an ImageBitmap or a data: URL of an image.`;
    }
    segments.push({ image: image as ImageInput });
  }
  // the engine's own limit, checked here before a single image is decoded
  const images = segments.filter((segment) => 'image' in segment).length;
  if (images > LIMITS.maxImages) return tooManyImages(images);
  return segments;
}

function parseOptions(value: unknown): GenerateOptions | string {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return '"options" must be an object.';
  // anything the engine does not know is refused by name
  return optionsProblem(value as Record<string, unknown>) ?? { ...(value as GenerateOptions) };
}

function isImageBitmap(value: unknown): value is ImageBitmap {
  return typeof ImageBitmap !== 'undefined' && value instanceof ImageBitmap;
}

function fail(id: RequestId | null, message: string): ParseResult {
  return { ok: false, id, message };
}
