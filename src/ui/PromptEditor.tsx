import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import type { NewImage, PromptEditorState } from './usePrompt';

interface Props {
  prompt: PromptEditorState;
  onLoadExample: () => void;
}

export function PromptEditor({ prompt, onLoadExample }: Props) {
  const fileInput = useRef<HTMLInputElement>(null);
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
        Images and text, in order: a few examples, then the query. Drop or paste images anywhere on the page.
        Alt+↑ / Alt+↓ moves the focused segment.
      </p>
      {count === 0 && prompt.restored && <p className="empty">The prompt is empty. Add images and text, or load the example.</p>}
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
                  <Thumbnail blob={prompt.blobs.get(segment.id)} name={segment.name} />
                  <figcaption>
                    {segment.name}
                    {!prompt.decoded.has(segment.id) && <span className="muted"> (decoding…)</span>}
                  </figcaption>
                </figure>
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
        <input
          ref={fileInput}
          type="file"
          accept="image/*"
          multiple
          hidden
          data-testid="image-input"
          aria-label="Image files to add"
          onChange={(event) => {
            prompt.addImages(filesToImages(event.target.files));
            event.target.value = ''; // the same file can be picked again
          }}
        />
        <button type="button" data-testid="add-image" onClick={() => fileInput.current?.click()}>
          Add images…
        </button>
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

function Thumbnail({ blob, name }: { blob: Blob | undefined; name: string }) {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    if (!blob) return;
    const objectUrl = URL.createObjectURL(blob);
    setUrl(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [blob]);
  return url ? <img src={url} alt={name} /> : <span className="thumb-placeholder" />;
}

export function filesToImages(files: FileList | Iterable<File> | null): NewImage[] {
  return files ? Array.from(files, (file) => ({ blob: file, name: file.name || 'pasted image' })) : [];
}
