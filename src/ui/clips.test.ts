import { describe, expect, it } from 'vitest';
import { FlamingoError } from '../engine/types';
import { byFileName, clipFromFiles, MAX_VIDEO_FRAMES, MIN_VIDEO_FRAMES, videoFrameTimes } from './clips';

const file = (name: string, type: string) => new File([new Uint8Array(1)], name, { type });

describe('videoFrameTimes', () => {
  it('takes one frame a second from the start', () => {
    expect(videoFrameTimes(5)).toEqual([0, 1, 2, 3, 4]);
    expect(videoFrameTimes(6.5)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(videoFrameTimes(4)).toEqual([0, 1, 2, 3]);
  });

  it('takes at most 8 frames, spread evenly over a long video', () => {
    const times = videoFrameTimes(60);
    expect(times).toHaveLength(MAX_VIDEO_FRAMES);
    expect(times[0]).toBe(0);
    expect(times[times.length - 1]).toBe(59);
    expect(times.every((t, i) => i === 0 || t > times[i - 1])).toBe(true);
    expect(times.every((t) => Number.isInteger(t))).toBe(true); // still on the 1 fps grid
    expect(videoFrameTimes(8)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('takes 4 evenly spaced frames from a video shorter than 4 s', () => {
    expect(videoFrameTimes(2)).toEqual([0.25, 0.75, 1.25, 1.75]);
    const times = videoFrameTimes(3.9);
    expect(times).toHaveLength(MIN_VIDEO_FRAMES);
    expect(times.every((t) => t > 0 && t < 3.9)).toBe(true);
  });

  it('gives nothing for a duration that is not usable', () => {
    for (const duration of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(videoFrameTimes(duration)).toEqual([]);
  });
});

describe('clipFromFiles', () => {
  it('makes the frames of one clip from image files, in file-name order', () => {
    const clip = clipFromFiles([file('frame10.png', 'image/png'), file('frame2.png', 'image/png'), file('frame1.png', 'image/png')]);
    expect(clip.kind).toBe('frames');
    if (clip.kind !== 'frames') return;
    expect(clip.frames.map((f) => f.name)).toEqual(['frame1.png', 'frame2.png', 'frame10.png']);
    expect(clip.name).toBe('frame1.png … frame10.png');
  });

  it('takes one video file as a video', () => {
    const clip = clipFromFiles([file('walk.webm', 'video/webm')]);
    expect(clip).toMatchObject({ kind: 'video', name: 'walk.webm' });
    expect(clipFromFiles([file('walk.mp4', '')]).kind).toBe('video'); // no MIME type: by extension
  });

  it('refuses a video mixed with other files, naming it', () => {
    expect(() => clipFromFiles([file('walk.webm', 'video/webm'), file('a.png', 'image/png')])).toThrow(FlamingoError);
    expect(() => clipFromFiles([file('walk.webm', 'video/webm'), file('b.webm', 'video/webm')])).toThrow(/walk\.webm/);
    expect(() => clipFromFiles([])).toThrow(FlamingoError);
  });

  it('sorts numbered names numerically', () => {
    expect(byFileName([{ name: 'b' }, { name: 'a10' }, { name: 'a9' }]).map((f) => f.name)).toEqual(['a9', 'a10', 'b']);
  });
});
