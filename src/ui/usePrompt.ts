// The prompt being built: an ordered list of image and text segments, with each image decoded
// once (to pixels, for the engine) and saved (as its file, for the next visit).
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Prompt, RgbaImage } from '../engine/types';
import { decodeImage, transferableCopy } from './images';
import { deleteImage, loadSavedPrompt, saveImage, savePrompt, type EditorSegment } from './promptStorage';

export type { EditorSegment };

export interface NewImage {
  blob: Blob;
  name: string;
}

interface Segments {
  list: EditorSegment[];
  /** Original files, by segment id (thumbnails, persistence). */
  blobs: ReadonlyMap<string, Blob>;
}

export interface PromptEditorState {
  segments: EditorSegment[];
  blobs: ReadonlyMap<string, Blob>;
  /** Images whose pixels are ready. */
  decoded: ReadonlyMap<string, RgbaImage>;
  /** False until the saved prompt has been read back. */
  restored: boolean;
  addImages(images: NewImage[]): void;
  /** Returns the new segment's id. */
  addText(text?: string): string;
  setText(id: string, text: string): void;
  move(id: string, delta: -1 | 1): void;
  remove(id: string): void;
  /** Replaces the whole prompt (the example). */
  replace(items: ({ text: string } | NewImage)[]): void;
  /** The engine's prompt, with copies of the pixels (they are transferred to the worker). */
  toPrompt(): Prompt;
}

const newId = () => crypto.randomUUID();

/** `onError` gets user-facing errors (FlamingoError) and storage failures. */
export function usePrompt(onError: (error: unknown) => void): PromptEditorState {
  const [segments, setSegments] = useState<Segments>({ list: [], blobs: new Map() });
  const [decoded, setDecoded] = useState<ReadonlyMap<string, RgbaImage>>(new Map());
  const [restored, setRestored] = useState(false);
  const onErrorRef = useRef(onError);
  useEffect(() => {
    onErrorRef.current = onError;
  }, [onError]);

  const decode = useCallback((id: string, blob: Blob, name: string) => {
    decodeImage(blob, name).then(
      (image) => setDecoded((map) => new Map(map).set(id, image)),
      (error: unknown) => {
        // An image that cannot be decoded leaves the prompt; everything else stays.
        setSegments((current) => withoutSegment(current, id));
        void deleteImage(id).catch(() => undefined);
        onErrorRef.current(error);
      },
    );
  }, []);

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
          const blob = blobs.get(segment.id);
          if (segment.kind === 'image' && blob) decode(segment.id, blob, segment.name);
        }
      })
      .catch((error: unknown) => {
        if (!cancelled) onErrorRef.current(new StorageWarning('Could not read the prompt saved by your last visit.', error));
      })
      .finally(() => {
        if (!cancelled) setRestored(true);
      });
    return () => {
      cancelled = true;
    };
  }, [decode]);

  const orphansDropped = useRef(false);
  useEffect(() => {
    if (!restored) return;
    savePrompt(segments.list, !orphansDropped.current).catch((error: unknown) =>
      onErrorRef.current(new StorageWarning('Could not save the prompt in the browser; it will be lost on reload.', error)),
    );
    orphansDropped.current = true;
  }, [segments.list, restored]);

  const addImages = useCallback(
    (images: NewImage[]) => {
      const added = images.map((image) => ({ id: newId(), ...image }));
      setSegments((current) => ({
        list: [...current.list, ...added.map(({ id, name }) => ({ id, kind: 'image' as const, name }))],
        blobs: new Map([...current.blobs, ...added.map(({ id, blob }) => [id, blob] as const)]),
      }));
      for (const { id, blob, name } of added) {
        saveImage(id, blob).catch((error: unknown) =>
          onErrorRef.current(new StorageWarning(`Could not save “${name}” in the browser; it will be lost on reload.`, error)),
        );
        decode(id, blob, name);
      }
    },
    [decode],
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
    void deleteImage(id).catch(() => undefined);
  }, []);

  const replace = useCallback(
    (items: ({ text: string } | NewImage)[]) => {
      setSegments((current) => {
        for (const id of current.blobs.keys()) void deleteImage(id).catch(() => undefined);
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

  const toPrompt = useCallback((): Prompt => {
    const prompt: Prompt = [];
    for (const segment of segments.list) {
      if (segment.kind === 'text') {
        if (segment.text !== '') prompt.push({ text: segment.text });
        continue;
      }
      const image = decoded.get(segment.id);
      if (!image) throw new Error(`image ${segment.name} is not decoded yet`);
      prompt.push({ image: transferableCopy(image) });
    }
    return prompt;
  }, [segments.list, decoded]);

  return {
    segments: segments.list,
    blobs: segments.blobs,
    decoded,
    restored,
    addImages,
    addText,
    setText,
    move,
    remove,
    replace,
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
