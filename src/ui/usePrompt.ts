// The prompt being built: an ordered list of image, clip and text segments, with each image
// (each clip's frames) decoded once (to pixels, for the engine) and saved (as files, for the
// next visit).
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Prompt, RgbaImage } from '../engine/types';
import { extractVideoFrames, type ClipSource } from './clips';
import { decodeImage, transferableCopy } from './images';
import type { PlanSegment } from './presets';
import { deleteFiles, loadSavedPrompt, saveClip, saveImage, savePrompt, StorageUnavailable, type EditorSegment } from './promptStorage';

export type { EditorSegment };

export interface NewImage {
  blob: Blob;
  name: string;
}

interface Segments {
  list: EditorSegment[];
  /** Files, by segment id (thumbnails, persistence): an image's one file, a clip's frames in order. */
  blobs: ReadonlyMap<string, readonly Blob[]>;
}

export interface PromptEditorState {
  segments: EditorSegment[];
  blobs: ReadonlyMap<string, readonly Blob[]>;
  /** Images (one frame) and clips (their frames) whose pixels are ready. */
  decoded: ReadonlyMap<string, readonly RgbaImage[]>;
  /** Some image or clip is not decoded yet (a video's frames may still be being taken). */
  pending: boolean;
  /** False until the saved prompt has been read back. */
  restored: boolean;
  addImages(images: NewImage[]): void;
  /** One clip: image files as its frames, or a video file to take frames from. */
  addClip(clip: ClipSource): void;
  /** Returns the new segment's id. */
  addText(text?: string): string;
  setText(id: string, text: string): void;
  move(id: string, delta: -1 | 1): void;
  remove(id: string): void;
  /** Replaces the whole prompt (the example). */
  replace(items: ({ text: string } | NewImage)[]): void;
  /** New images and text, in order, before segment `beforeId` (at the end without one). */
  insertBefore(beforeId: string | undefined, items: ({ text: string } | NewImage)[]): void;
  /**
   * The same visual segments with new text around them (a task preset): text with the id of an
   * existing text segment rewrites it, text without one is new, text segments not named go.
   */
  arrange(plan: readonly PlanSegment[]): void;
  /** The engine's prompt, with copies of the pixels (they are transferred to the worker). */
  toPrompt(): Prompt;
}

const newId = () => crypto.randomUUID();

/** `onError` gets user-facing errors (FlamingoError) and storage failures. */
export function usePrompt(onError: (error: unknown) => void): PromptEditorState {
  const [segments, setSegments] = useState<Segments>({ list: [], blobs: new Map() });
  const [decoded, setDecoded] = useState<ReadonlyMap<string, readonly RgbaImage[]>>(new Map());
  const [restored, setRestored] = useState(false);
  const onErrorRef = useRef(onError);
  useEffect(() => {
    onErrorRef.current = onError;
  }, [onError]);
  /** Set once the user was told that there is no IndexedDB here: each save failing again is no news. */
  const storageGone = useRef(false);
  const warnStorage = useCallback((message: string, error: unknown) => {
    if (storageGone.current) return;
    if (error instanceof StorageUnavailable) {
      storageGone.current = true;
      message = "The browser's storage (IndexedDB) is not available here, so the prompt is not saved: it will be lost on reload.";
    }
    onErrorRef.current(new StorageWarning(message, error));
  }, []);
  // The current list, for work that finishes later (a video's frames) and must not revive a removed segment.
  const listRef = useRef(segments.list);
  useEffect(() => {
    listRef.current = segments.list;
  }, [segments.list]);

  /** A segment that cannot be used leaves the prompt; everything else stays. */
  const drop = useCallback((id: string, error: unknown) => {
    setSegments((current) => withoutSegment(current, id));
    void deleteFiles(id).catch(() => undefined);
    onErrorRef.current(error);
  }, []);

  /** An image's file, or a clip's frame files (each named in errors by its file name when it has one). */
  const decode = useCallback(
    (id: string, blobs: readonly Blob[], name: string) => {
      const frameName = (blob: Blob, index: number) =>
        blobs.length === 1 ? name : blob instanceof File && blob.name ? blob.name : `${name}, frame ${index + 1}`;
      Promise.all(blobs.map((blob, index) => decodeImage(blob, frameName(blob, index)))).then(
        (frames) => setDecoded((map) => new Map(map).set(id, frames)),
        (error: unknown) => drop(id, error),
      );
    },
    [drop],
  );

  useEffect(() => {
    let cancelled = false;
    loadSavedPrompt()
      .then(({ segments: list, blobs }) => {
        if (cancelled) return;
        setSegments((current) => ({
          // Anything added before the saved prompt came back goes after it.
          list: [...list, ...current.list],
          blobs: new Map([...blobs, ...current.blobs]),
        }));
        for (const segment of list) {
          const files = blobs.get(segment.id);
          if (segment.kind !== 'text' && files) decode(segment.id, files, segment.name);
        }
      })
      .catch((error: unknown) => {
        if (!cancelled) warnStorage('Could not read the prompt saved by your last visit.', error);
      })
      .finally(() => {
        if (!cancelled) setRestored(true);
      });
    return () => {
      cancelled = true;
    };
  }, [decode, warnStorage]);

  const orphansDropped = useRef(false);
  useEffect(() => {
    if (!restored) return;
    savePrompt(segments.list, !orphansDropped.current).catch((error: unknown) =>
      warnStorage('Could not save the prompt in the browser; it will be lost on reload.', error),
    );
    orphansDropped.current = true;
  }, [segments.list, restored, warnStorage]);

  const addImages = useCallback(
    (images: NewImage[]) => {
      const added = images.map((image) => ({ id: newId(), ...image }));
      setSegments((current) => ({
        list: [...current.list, ...added.map(({ id, name }) => ({ id, kind: 'image' as const, name }))],
        blobs: new Map([...current.blobs, ...added.map(({ id, blob }) => [id, [blob]] as const)]),
      }));
      for (const { id, blob, name } of added) {
        saveImage(id, blob).catch((error: unknown) =>
          warnStorage(`Could not save “${name}” in the browser; it will be lost on reload.`, error),
        );
        decode(id, [blob], name);
      }
    },
    [decode, warnStorage],
  );

  const addClip = useCallback(
    (clip: ClipSource) => {
      const id = newId();
      const { name } = clip;
      /** The clip's frames are known: show them, save them, decode them. */
      const withFrames = (frames: Blob[]) => {
        setSegments((current) => ({
          list: current.list.map((segment) =>
            segment.id === id && segment.kind === 'clip' ? { ...segment, frames: frames.length } : segment,
          ),
          blobs: new Map(current.blobs).set(id, frames),
        }));
        saveClip(id, frames).catch((error: unknown) =>
          warnStorage(`Could not save the clip “${name}” in the browser; it will be lost on reload.`, error),
        );
        decode(id, frames, name);
      };
      const frames = clip.kind === 'frames' ? clip.frames : [];
      setSegments((current) => ({ ...current, list: [...current.list, { id, kind: 'clip', name, frames: frames.length }] }));
      if (clip.kind === 'frames') {
        withFrames(frames);
        return;
      }
      // A video: its segment shows "taking frames…" until they are there.
      extractVideoFrames(clip.video, name).then(
        (videoFrames) => {
          if (listRef.current.some((segment) => segment.id === id)) withFrames(videoFrames);
        },
        (error: unknown) => drop(id, error),
      );
    },
    [decode, drop, warnStorage],
  );

  const addText = useCallback((text = '') => {
    const id = newId();
    setSegments((current) => ({ ...current, list: [...current.list, { id, kind: 'text', text }] }));
    return id;
  }, []);

  const setText = useCallback((id: string, text: string) => {
    setSegments((current) => ({
      ...current,
      list: current.list.map((segment) => (segment.id === id && segment.kind === 'text' ? { ...segment, text } : segment)),
    }));
  }, []);

  const move = useCallback((id: string, delta: -1 | 1) => {
    setSegments((current) => {
      const from = current.list.findIndex((segment) => segment.id === id);
      const to = from + delta;
      if (from < 0 || to < 0 || to >= current.list.length) return current;
      const list = [...current.list];
      [list[from], list[to]] = [list[to], list[from]];
      return { ...current, list };
    });
  }, []);

  const remove = useCallback((id: string) => {
    setSegments((current) => withoutSegment(current, id));
    setDecoded((map) => {
      const next = new Map(map);
      next.delete(id);
      return next;
    });
    void deleteFiles(id).catch(() => undefined);
  }, []);

  const replace = useCallback(
    (items: ({ text: string } | NewImage)[]) => {
      setSegments((current) => {
        for (const segment of current.list) void deleteFiles(segment.id).catch(() => undefined);
        return { list: [], blobs: new Map() };
      });
      setDecoded(new Map());
      for (const item of items) {
        if ('text' in item) addText(item.text);
        else addImages([item]);
      }
    },
    [addImages, addText],
  );

  const insertBefore = useCallback(
    (beforeId: string | undefined, items: ({ text: string } | NewImage)[]) => {
      const added = items.map((item) => ({ id: newId(), item }));
      const newSegments: EditorSegment[] = added.map(({ id, item }) =>
        'text' in item ? { id, kind: 'text', text: item.text } : { id, kind: 'image', name: item.name },
      );
      setSegments((current) => {
        const at = beforeId === undefined ? -1 : current.list.findIndex((segment) => segment.id === beforeId);
        const list = at < 0 ? [...current.list, ...newSegments] : [...current.list.slice(0, at), ...newSegments, ...current.list.slice(at)];
        const blobs = new Map(current.blobs);
        for (const { id, item } of added) if (!('text' in item)) blobs.set(id, [item.blob]);
        return { list, blobs };
      });
      for (const { id, item } of added) {
        if ('text' in item) continue;
        saveImage(id, item.blob).catch((error: unknown) =>
          warnStorage(`Could not save “${item.name}” in the browser; it will be lost on reload.`, error),
        );
        decode(id, [item.blob], item.name);
      }
    },
    [decode, warnStorage],
  );

  const arrange = useCallback((plan: readonly PlanSegment[]) => {
    setSegments((current) => {
      const byId = new Map(current.list.map((segment) => [segment.id, segment]));
      const list: EditorSegment[] = [];
      for (const step of plan) {
        if (step.kind === 'visual') {
          const segment = byId.get(step.id);
          if (segment && segment.kind !== 'text') list.push(segment);
          continue;
        }
        const existing = step.id === undefined ? undefined : byId.get(step.id);
        list.push(existing?.kind === 'text' ? { ...existing, text: step.text } : { id: newId(), kind: 'text', text: step.text });
      }
      // A visual segment the plan left out stays, at the end: a preset never drops an image.
      for (const segment of current.list) if (segment.kind !== 'text' && !list.includes(segment)) list.push(segment);
      return { ...current, list };
    });
  }, []);

  const toPrompt = useCallback((): Prompt => {
    const prompt: Prompt = [];
    for (const segment of segments.list) {
      if (segment.kind === 'text') {
        if (segment.text !== '') prompt.push({ text: segment.text });
        continue;
      }
      const frames = decoded.get(segment.id);
      if (!frames) throw new Error(`${segment.kind} ${segment.name} is not decoded yet`);
      if (segment.kind === 'image') prompt.push({ image: transferableCopy(frames[0]) });
      else prompt.push({ video: frames.map(transferableCopy) });
    }
    return prompt;
  }, [segments.list, decoded]);

  const pending = segments.list.some((segment) => segment.kind !== 'text' && !decoded.has(segment.id));

  return {
    segments: segments.list,
    blobs: segments.blobs,
    decoded,
    pending,
    restored,
    addImages,
    addClip,
    addText,
    setText,
    move,
    remove,
    replace,
    insertBefore,
    arrange,
    toPrompt,
  };
}

function withoutSegment(current: Segments, id: string): Segments {
  if (!current.list.some((segment) => segment.id === id)) return current;
  const blobs = new Map(current.blobs);
  blobs.delete(id);
  return { list: current.list.filter((segment) => segment.id !== id), blobs };
}

/** A storage failure: the app keeps working, the user is told what will not survive a reload. */
export class StorageWarning extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'StorageWarning';
  }
}
