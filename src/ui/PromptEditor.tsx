import { useEffect, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { clipFromFiles } from './clips';
import type { EditorSegment, NewImage, PromptEditorState } from './usePrompt';

interface Props {
  prompt: PromptEditorState;
  onLoadExample: () => void;
  /** User-facing errors (files that cannot make a clip). */
  onError: (error: unknown) => void;
}

export function PromptEditor({ prompt, onLoadExample, onError }: Props) {
  const list = useRef<HTMLOListElement>(null);
  const [focusText, setFocusText] = useState<string>();

  // Focus a text segment just added (after it is rendered).
  useEffect(() => {
    if (!focusText) return;
    list.current?.querySelector<HTMLTextAreaElement>(`[data-segment-id="${focusText}"] textarea`)?.focus();
    setFocusText(undefined);
  }, [focusText, prompt.segments]);

  const move = (id: string, delta: -1 | 1) => {
    // Reordering moves DOM nodes, which can drop focus: put it back where it was.
    const active = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    prompt.move(id, delta);
    requestAnimationFrame(() => {
      if (active?.isConnected && document.activeElement !== active) active.focus();
    });
  };

  const onSegmentKey = (event: KeyboardEvent, id: string) => {
    if (!event.altKey || (event.key !== 'ArrowUp' && event.key !== 'ArrowDown')) return;
    event.preventDefault();
    move(id, event.key === 'ArrowUp' ? -1 : 1);
  };

  const count = prompt.segments.length;
  return (
    <section className="panel prompt" aria-labelledby="prompt-heading">
      <h2 id="prompt-heading">Prompt</h2>
      <p className="hint">
        Images, video clips and text, in order: a few examples, then the query. Drop or paste images anywhere on
        the page. A clip is several image files (its frames, in file-name order) or one video file (a frame a
        second, at most 8). Alt+↑ / Alt+↓ moves the focused segment.
      </p>
      {count === 0 && prompt.restored && (
        <p className="empty">The prompt is empty. Add images, clips and text, or load the example.</p>
      )}
      <ol className="segments" data-testid="segments" ref={list}>
        {prompt.segments.map((segment, index) => {
          const label = `segment ${index + 1}`;
          return (
            <li
              key={segment.id}
              className={`segment ${segment.kind}`}
              data-testid="segment"
              data-kind={segment.kind}
              data-segment-id={segment.id}
              onKeyDown={(event) => onSegmentKey(event, segment.id)}
            >
              <span className="index" aria-hidden="true">
                {index + 1}
              </span>
              {segment.kind === 'image' ? (
                <figure>
                  <Thumbnail blob={prompt.blobs.get(segment.id)?.[0]} name={segment.name} />
                  <figcaption>
                    <span className="file-name" title={segment.name}>
                      {segment.name}
                    </span>
                    {!prompt.decoded.has(segment.id) && <span className="muted"> (decoding…)</span>}
                  </figcaption>
                </figure>
              ) : segment.kind === 'clip' ? (
                <Clip segment={segment} frames={prompt.blobs.get(segment.id)} decoded={prompt.decoded.has(segment.id)} />
              ) : (
                <textarea
                  aria-label={`Text, ${label}`}
                  data-testid="segment-text"
                  rows={2}
                  value={segment.text}
                  placeholder="Output: …"
                  onChange={(event) => prompt.setText(segment.id, event.target.value)}
                />
              )}
              <div className="controls" role="group" aria-label={`Arrange ${label}`}>
                <button
                  type="button"
                  aria-label={`Move ${label} up`}
                  aria-disabled={index === 0}
                  onClick={() => move(segment.id, -1)}
                >
                  ↑
                </button>
                <button
                  type="button"
                  aria-label={`Move ${label} down`}
                  aria-disabled={index === count - 1}
                  onClick={() => move(segment.id, 1)}
                >
                  ↓
                </button>
                <button
                  type="button"
                  aria-label={`Remove ${label}`}
                  data-testid="remove-segment"
                  onClick={() => prompt.remove(segment.id)}
                >
                  ✕
                </button>
              </div>
            </li>
          );
        })}
      </ol>
      <div className="row">
        <FilePickerButton
          accept="image/*"
          inputTestId="image-input"
          inputLabel="Image files to add"
          buttonTestId="add-image"
          onFiles={(files) => prompt.addImages(filesToImages(files))}
        >
          Add images…
        </FilePickerButton>
        <FilePickerButton
          accept="image/*,video/*"
          inputTestId="clip-input"
          inputLabel="Clip: image files (its frames) or one video file"
          buttonTestId="add-clip"
          title="Several image files (the frames, in file-name order) or one video file"
          onFiles={(files) => {
            try {
              prompt.addClip(clipFromFiles(files));
            } catch (error) {
              onError(error);
            }
          }}
        >
          Add clip…
        </FilePickerButton>
        <button type="button" data-testid="add-text" onClick={() => setFocusText(prompt.addText())}>
          Add text
        </button>
        <button type="button" data-testid="load-example" onClick={onLoadExample}>
          Load example
        </button>
        <button
          type="button"
          data-testid="clear-prompt"
          disabled={count === 0}
          onClick={() => prompt.replace([])}
        >
          Clear prompt
        </button>
      </div>
    </section>
  );
}

/** A clip: a filmstrip of its frames, its name and frame count. */
function Clip({
  segment,
  frames,
  decoded,
}: {
  segment: Extract<EditorSegment, { kind: 'clip' }>;
  frames: readonly Blob[] | undefined;
  decoded: boolean;
}) {
  const count = frames?.length ?? segment.frames;
  return (
    <figure className="clip">
      <div className="filmstrip" data-testid="clip-frames" role="group" aria-label={`Frames of ${segment.name}`}>
        {frames ? (
          frames.map((frame, index) => (
            // Frames never change order within a clip: the index is a stable key.
            <Thumbnail key={index} blob={frame} name={`${segment.name}, frame ${index + 1}`} testId="clip-frame" />
          ))
        ) : (
          <span className="thumb-placeholder" />
        )}
      </div>
      <figcaption>
        <span className="clip-badge" aria-hidden="true">
          ▶
        </span>{' '}
        {segment.name}{' '}
        {frames ? (
          <span className="muted" data-testid="clip-frame-count" data-frames={count}>
            · {count} {count === 1 ? 'frame' : 'frames'}
          </span>
        ) : (
          <span className="muted"> (taking frames…)</span>
        )}
        {frames && !decoded && <span className="muted"> (decoding…)</span>}
      </figcaption>
    </figure>
  );
}

function Thumbnail({ blob, name, testId }: { blob: Blob | undefined; name: string; testId?: string }) {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    if (!blob) return;
    const objectUrl = URL.createObjectURL(blob);
    setUrl(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [blob]);
  return url ? <img src={url} alt={name} data-testid={testId} /> : <span className="thumb-placeholder" data-testid={testId} />;
}

export function filesToImages(files: FileList | Iterable<File> | null): NewImage[] {
  return files ? Array.from(files, (file) => ({ blob: file, name: file.name || 'pasted image' })) : [];
}

interface FilePickerProps {
  accept: string;
  inputTestId: string;
  inputLabel: string;
  buttonTestId: string;
  title?: string;
  /** Called with the picked files (never an empty list). */
  onFiles: (files: File[]) => void;
  children: ReactNode;
}

/** A button that opens the browser's file picker (a hidden multi-file input). */
function FilePickerButton({ accept, inputTestId, inputLabel, buttonTestId, title, onFiles, children }: FilePickerProps) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <input
        ref={input}
        type="file"
        accept={accept}
        multiple
        hidden
        data-testid={inputTestId}
        aria-label={inputLabel}
        onChange={(event) => {
          const files = Array.from(event.target.files ?? []);
          event.target.value = ''; // the same files can be picked again
          if (files.length > 0) onFiles(files);
        }}
      />
      <button type="button" data-testid={buttonTestId} title={title} onClick={() => input.current?.click()}>
        {children}
      </button>
    </>
  );
}
