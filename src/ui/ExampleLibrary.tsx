// The example library: labelled images kept in the browser (src/store/exampleLibrary.ts). The
// prompt's examples go in; "Pick examples for me" puts the k nearest to the query (RICES, by the
// frozen vision encoder's embedding) into the prompt before it, the most similar last.
import { useCallback, useEffect, useRef, useState } from 'react';
import { nearestByEmbedding } from '../engine/rices';
import { FlamingoError } from '../engine/types';
import {
  addExamples,
  deleteExample,
  exportLibrary,
  importLibrary,
  listExamples,
  type LibraryExample,
  type NewExample,
} from '../store/exampleLibrary';
import type { FlamingoClient } from '../worker/client';
import { decodeImage, toPngBytes, transferableCopy } from './images';
import type { PromptEditorState } from './usePrompt';

interface Props {
  prompt: PromptEditorState;
  client: FlamingoClient;
  /** Identifies the loaded vision encoder (embeddings are per encoder); undefined while none is ready. */
  encoderKey: string | undefined;
  /** Whether the model is free to embed images. */
  canRun: boolean;
  onError: (error: unknown) => void;
  onInfo: (message: string) => void;
}

/** Image segments followed by text, except the query (the last visual segment): the prompt's labelled examples. */
function labelledExamples(prompt: PromptEditorState): { id: string; name: string; text: string; blob: Blob }[] {
  const list = prompt.segments;
  const lastVisual = list.findLastIndex((segment) => segment.kind !== 'text');
  const out: { id: string; name: string; text: string; blob: Blob }[] = [];
  list.forEach((segment, index) => {
    if (segment.kind !== 'image' || index >= lastVisual) return;
    const next = list[index + 1];
    const blob = prompt.blobs.get(segment.id)?.[0];
    if (next?.kind === 'text' && next.text.trim() !== '' && blob) out.push({ id: segment.id, name: segment.name, text: next.text.trim(), blob });
  });
  return out;
}

export function ExampleLibrary({ prompt, client, encoderKey, canRun, onError, onInfo }: Props) {
  const [examples, setExamples] = useState<LibraryExample[]>();
  const [k, setK] = useState(2);
  const [busy, setBusy] = useState<string>();
  const fileInput = useRef<HTMLInputElement>(null);
  /** Embeddings by encoder and image hash: a library image is embedded once per visit. */
  const embeddings = useRef(new Map<string, Float32Array>());

  const refresh = useCallback(() => listExamples().then(setExamples, onError), [onError]);
  useEffect(() => {
    void refresh();
  }, [refresh]);

  const candidates = labelledExamples(prompt);
  const queryIndex = prompt.segments.findLastIndex((segment) => segment.kind !== 'text');
  const query = queryIndex >= 0 ? prompt.segments[queryIndex] : undefined;
  const queryFrames = query ? prompt.decoded.get(query.id) : undefined;

  const run = async (label: string, task: () => Promise<void>) => {
    setBusy(label);
    try {
      await task();
    } catch (error) {
      onError(error);
    } finally {
      setBusy(undefined);
      void refresh();
    }
  };

  const addFromPrompt = () =>
    run('Adding…', async () => {
      const items: NewExample[] = [];
      for (const example of candidates) items.push({ name: example.name, text: example.text, png: await toPngBytes(example.blob, example.name) });
      const added = await addExamples(items);
      const skipped = items.length - added;
      onInfo(`Added ${added} ${added === 1 ? 'example' : 'examples'} to the library${skipped ? ` (${skipped} already there)` : ''}.`);
    });

  const pick = () =>
    run('Picking…', async () => {
      if (!query || !queryFrames || !encoderKey) return;
      const pool = examples ?? [];
      const missing = pool.filter((example) => !embeddings.current.has(`${encoderKey}:${example.sha256}`));
      const missingFrames = await Promise.all(missing.map((example) => decodeImage(example.image, example.name)));
      const [queryEmbedding, ...computed] = await client.embed([queryFrames.map(transferableCopy), ...missingFrames.map((frame) => [frame])]);
      missing.forEach((example, i) => embeddings.current.set(`${encoderKey}:${example.sha256}`, computed[i]));
      // The query itself, if it is in the library, is not its own example.
      const usable = pool.filter((example) => similarity(queryEmbedding, embeddings.current.get(`${encoderKey}:${example.sha256}`)!) < 0.9999);
      const chosen = nearestByEmbedding(queryEmbedding, usable.map((example) => embeddings.current.get(`${encoderKey}:${example.sha256}`)!), k).map(
        (index) => usable[index],
      );
      if (chosen.length === 0) throw new FlamingoError('The library has no example other than the query: add some first.');
      prompt.insertBefore(
        query.id,
        chosen.flatMap((example) => [{ blob: example.image, name: example.name }, { text: example.text }]),
      );
      onInfo(`Put ${chosen.length} ${chosen.length === 1 ? 'example' : 'examples'} before the query, the most similar last: ${chosen.map((example) => example.text).join(' · ')}`);
    });

  const exportFile = () =>
    run('Exporting…', async () => {
      const text = await exportLibrary(examples ?? []);
      const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
      const link = document.createElement('a');
      link.href = url;
      link.download = 'flamingo-web-examples.json';
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });

  const importFile = (file: File) =>
    run('Importing…', async () => {
      let contents: string;
      try {
        contents = await file.text();
      } catch (cause) {
        throw new FlamingoError(`Could not read ${file.name}.`, { cause });
      }
      try {
        const { added, inFile } = await importLibrary(contents);
        onInfo(`Imported ${added} of the ${inFile} examples in ${file.name}${added < inFile ? ' (the others were already here)' : ''}.`);
      } catch (error) {
        if (error instanceof Error) error.message = `${file.name}: ${error.message} Nothing was imported; your library is unchanged.`;
        throw error;
      }
    });

  const count = examples?.length ?? 0;
  return (
    <section className="panel library" aria-labelledby="library-heading" aria-busy={busy !== undefined}>
      <h2 id="library-heading">Example library</h2>
      <p className="hint">
        Labelled images kept in this browser. Add the prompt’s examples; later, pick the ones that look most like a
        query (by the model’s frozen vision encoder).
      </p>
      <div className="row">
        <button type="button" data-testid="library-add" disabled={candidates.length === 0 || busy !== undefined} onClick={addFromPrompt}>
          Add the prompt’s {candidates.length || ''} labelled {candidates.length === 1 ? 'example' : 'examples'}
        </button>
        <label>
          Examples to pick{' '}
          <input
            type="number"
            min={1}
            max={32}
            value={k}
            data-testid="library-k"
            onChange={(event) => setK(Math.max(1, Math.min(32, Math.round(Number(event.target.value)) || 1)))}
          />
        </label>
        <button
          type="button"
          data-testid="library-pick"
          disabled={!canRun || !queryFrames || count === 0 || busy !== undefined}
          title={!queryFrames ? 'Add a query image to the prompt first' : undefined}
          onClick={pick}
        >
          Pick examples for me
        </button>
        <button type="button" data-testid="library-export" disabled={count === 0 || busy !== undefined} onClick={exportFile}>
          Export…
        </button>
        <input
          ref={fileInput}
          type="file"
          accept="application/json,.json"
          hidden
          aria-label="Example library file to import"
          data-testid="library-import-input"
          onChange={(event) => {
            const file = event.target.files?.[0];
            event.target.value = '';
            if (file) void importFile(file);
          }}
        />
        <button type="button" data-testid="library-import" disabled={busy !== undefined} onClick={() => fileInput.current?.click()}>
          Import…
        </button>
        {busy && <span className="muted" role="status">{busy}</span>}
      </div>
      <p className="muted" data-testid="library-count">
        {examples === undefined ? 'Reading the library…' : `${count} ${count === 1 ? 'example' : 'examples'} in the library.`}
      </p>
      {count > 0 && (
        <ul className="library-list" data-testid="library-list">
          {examples!.map((example) => (
            <LibraryItem key={example.id} example={example} onDelete={() => run('Deleting…', () => deleteExample(example.id))} />
          ))}
        </ul>
      )}
    </section>
  );
}

function LibraryItem({ example, onDelete }: { example: LibraryExample; onDelete: () => void }) {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    const objectUrl = URL.createObjectURL(example.image);
    setUrl(objectUrl);
    return () => URL.revokeObjectURL(objectUrl);
  }, [example.image]);
  return (
    <li data-testid="library-example">
      {url && <img src={url} alt={example.name} width={48} height={48} />}
      <span className="library-text">{example.text}</span>
      <button type="button" aria-label={`Delete ${example.text} (${example.name}) from the library`} data-testid="library-delete" onClick={onDelete}>
        ✕
      </button>
    </li>
  );
}

function similarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot;
}
