// Video clips for the prompt: either several image files (the frames, in file-name order) or one
// video file, from which frames are taken in the page with a <video> element and a canvas.
// Frames become PNG files: they are decoded by decodeImage (images.ts) like any image, shown as
// thumbnails and saved for the next visit. The engine samples frames evenly beyond the model's
// `vision.max_frames` and resizes them; here frames keep their natural size.
import { FlamingoError } from '../engine/types';

/** Flamingo samples video at one frame per second… */
export const FRAMES_PER_SECOND = 1;
/** …and takes at most this many frames from a video file. */
export const MAX_VIDEO_FRAMES = 8;
/** A video shorter than this many seconds gives this many frames, evenly spaced. */
export const MIN_VIDEO_FRAMES = 4;

/** Gives up on a video that shows nothing for this long (a stalled or unreadable file). */
const VIDEO_TIMEOUT_MS = 20_000;

/** What the "Add clip…" picker was given: frames as image files, or one video file. */
export type ClipSource = { kind: 'frames'; name: string; frames: File[] } | { kind: 'video'; name: string; video: File };

export function isVideoFile(file: { type: string; name: string }): boolean {
  return file.type.startsWith('video/') || (!file.type && /\.(mp4|m4v|webm|ogv|mov|mkv)$/i.test(file.name));
}

/** Sorts file names the way people number frames: frame2 before frame10. */
export function byFileName<T extends { name: string }>(files: readonly T[]): T[] {
  return [...files].sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }));
}

/** A short name for a clip made of image files: the first and last file names. */
export function framesClipName(files: readonly { name: string }[]): string {
  if (files.length === 0) return 'clip';
  if (files.length === 1) return files[0].name;
  return `${files[0].name} … ${files[files.length - 1].name}`;
}

/** The picker's files → one clip; a user-facing error when they cannot make one. */
export function clipFromFiles(files: readonly File[]): ClipSource {
  if (files.length === 0) throw new FlamingoError('No files were chosen for the clip.');
  const videos = files.filter(isVideoFile);
  if (videos.length > 0) {
    if (files.length > 1) {
      throw new FlamingoError(
        `A clip is either one video file or several image files, not both: choose “${videos[0].name}” on its own, or only images.`,
      );
    }
    return { kind: 'video', name: videos[0].name, video: videos[0] };
  }
  const frames = byFileName(files);
  return { kind: 'frames', name: framesClipName(frames), frames };
}

/**
 * When to take frames from a video of `duration` seconds: at 1 frame per second from the start,
 * at most MAX_VIDEO_FRAMES of them (evenly spread over the whole video when it is longer);
 * a video shorter than MIN_VIDEO_FRAMES seconds gives MIN_VIDEO_FRAMES frames evenly spaced
 * (at the middles of equal parts, so that no frame falls on the very end).
 */
export function videoFrameTimes(duration: number): number[] {
  if (!Number.isFinite(duration) || duration <= 0) return [];
  if (duration < MIN_VIDEO_FRAMES / FRAMES_PER_SECOND) {
    return Array.from({ length: MIN_VIDEO_FRAMES }, (_, i) => ((i + 0.5) * duration) / MIN_VIDEO_FRAMES);
  }
  const step = 1 / FRAMES_PER_SECOND;
  const count = Math.ceil(duration / step - 1e-9); // t = 0, 1, … while t < duration
  const all = Array.from({ length: count }, (_, i) => i * step);
  if (all.length <= MAX_VIDEO_FRAMES) return all;
  // Evenly spaced picks from the 1 fps samples, first and last included.
  return Array.from({ length: MAX_VIDEO_FRAMES }, (_, i) => all[Math.round((i * (all.length - 1)) / (MAX_VIDEO_FRAMES - 1))]);
}

/** Frames of a video file as PNG files (natural size), taken at videoFrameTimes. */
export async function extractVideoFrames(video: Blob, name: string): Promise<Blob[]> {
  const element = document.createElement('video');
  element.muted = true;
  element.playsInline = true;
  element.preload = 'auto';
  const url = URL.createObjectURL(video);
  const unreadable = (cause?: unknown) =>
    new FlamingoError(`Could not decode the video “${name}”: the file is damaged or not in a format this browser plays.`, {
      cause,
    });
  try {
    element.src = url;
    await waitFor(element, 'loadeddata', () => element.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA, unreadable);
    const { videoWidth: width, videoHeight: height } = element;
    if (!width || !height) throw new FlamingoError(`The file “${name}” has no video track to take frames from.`);
    const duration = await knownDuration(element, unreadable);
    const times = videoFrameTimes(duration);
    if (times.length === 0) throw unreadable(new Error(`duration ${duration}`));

    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d');
    if (!context) throw new FlamingoError(`Could not decode the video “${name}”: no 2D canvas available.`);
    const frames: Blob[] = [];
    for (const time of times) {
      await seek(element, time, unreadable);
      context.clearRect(0, 0, width, height);
      context.drawImage(element, 0, 0, width, height);
      frames.push(await canvasToPng(canvas, name));
    }
    return frames;
  } finally {
    element.removeAttribute('src');
    element.load(); // lets the browser drop the decoder now
    URL.revokeObjectURL(url);
  }
}

/** Resolves once `ready()` holds (checked now and on `event`); rejects on a media error or a timeout. */
function waitFor(
  element: HTMLVideoElement,
  event: string,
  ready: () => boolean,
  unreadable: (cause?: unknown) => Error,
): Promise<void> {
  if (element.error) return Promise.reject(unreadable(mediaErrorText(element)));
  if (ready()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      element.removeEventListener(event, onEvent);
      element.removeEventListener('error', onError);
    };
    const onEvent = () => {
      if (!ready()) return;
      done();
      resolve();
    };
    const onError = () => {
      done();
      reject(unreadable(mediaErrorText(element)));
    };
    const timer = setTimeout(() => {
      done();
      reject(unreadable(new Error(`no "${event}" within ${VIDEO_TIMEOUT_MS} ms`)));
    }, VIDEO_TIMEOUT_MS);
    element.addEventListener(event, onEvent);
    element.addEventListener('error', onError);
  });
}

/** The duration in seconds. Files recorded by MediaRecorder say Infinity until one seeks to the end. */
async function knownDuration(element: HTMLVideoElement, unreadable: (cause?: unknown) => Error): Promise<number> {
  if (Number.isFinite(element.duration)) return element.duration;
  const known = waitFor(element, 'durationchange', () => Number.isFinite(element.duration), unreadable);
  element.currentTime = Number.MAX_SAFE_INTEGER;
  await known;
  // Let that seek finish, so that its "seeked" is not taken for the next one's.
  await waitFor(element, 'seeked', () => !element.seeking, unreadable);
  return element.duration;
}

/** Seeks to `time` and resolves once the frame there can be drawn. */
async function seek(element: HTMLVideoElement, time: number, unreadable: (cause?: unknown) => Error): Promise<void> {
  const there = () => !element.seeking && Math.abs(element.currentTime - time) < 1e-3;
  if (there() && element.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA) return;
  let seeked = false;
  const onSeeked = () => {
    seeked = true;
  };
  element.addEventListener('seeked', onSeeked);
  try {
    element.currentTime = time;
    // A late "seeked" of an earlier seek does not count: the position must be the one asked for.
    await waitFor(element, 'seeked', () => seeked && there(), unreadable);
  } finally {
    element.removeEventListener('seeked', onSeeked);
  }
}

function canvasToPng(canvas: HTMLCanvasElement, name: string): Promise<Blob> {
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => {
      if (blob) resolve(blob);
      else reject(new FlamingoError(`Could not take a frame from the video “${name}”: the frame could not be encoded.`));
    }, 'image/png'),
  );
}

function mediaErrorText(element: HTMLVideoElement): Error {
  const error = element.error;
  return new Error(error ? `MediaError ${error.code}: ${error.message || 'no message'}` : 'media error');
}
