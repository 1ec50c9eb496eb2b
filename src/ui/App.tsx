import { useCallback, useEffect, useMemo, useState } from 'react';
import type { DoneEvent, Prompt } from '../engine/types';
import { BUNDLED_MODEL_PATH } from '../store/bundledModel';
import { clearModelCache } from '../store/modelStore';
import type { BackendChoice, FlamingoClient, ScoreResult } from '../worker/client';
import { AnswerPanel, type RunState } from './AnswerPanel';
import { clipFromFiles, isVideoFile } from './clips';
import { loadExample } from './example';
import { AboutModel, ModelStatus } from './ModelStatus';
import { Pictures } from './Pictures';
import { filesToImages, PromptEditor } from './PromptEditor';
import { StorageWarning, usePrompt } from './usePrompt';
import { useModel } from './useModel';

interface Notice {
  id: number;
  kind: 'error' | 'warning' | 'info';
  message: string;
}

const BACKENDS: readonly BackendChoice[] = ['auto', 'webgpu', 'wasm'];

/**
 * `?backend=wasm|webgpu|auto` picks the backend; `?model=URL` loads another model folder;
 * `?variant=auto|float32|NAME` a model variant (auto: the manifest's first that fits the backend).
 */
function settingsFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const backend = params.get('backend') as BackendChoice | null;
  const model = params.get('model');
  return {
    backend: backend && BACKENDS.includes(backend) ? backend : 'auto',
    variant: params.get('variant') ?? 'auto',
    modelUrl: new URL(model ?? `${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, window.location.href).href,
  };
}

export function App({ client }: { client: FlamingoClient }) {
  const settings = useMemo(settingsFromUrl, []);
  const [backend, setBackend] = useState<BackendChoice>(settings.backend);
  const { model, retry } = useModel(client, settings.modelUrl, backend, settings.variant);
  const [notices, setNotices] = useState<Notice[]>([]);
  const [run, setRun] = useState<RunState>({ status: 'idle' });
  const [maxNewTokens, setMaxNewTokens] = useState(20);
  const [scores, setScores] = useState<ScoreResult[]>();
  /** The prompt of the answer on screen, kept in the page for its pictures. */
  const [answeredPrompt, setAnsweredPrompt] = useState<Prompt>();
  const [dragging, setDragging] = useState(false);

  const notify = useCallback((kind: Notice['kind'], message: string) => {
    setNotices((list) => [...list.filter((notice) => notice.message !== message), { id: Date.now() + Math.random(), kind, message }]);
  }, []);

  /** The user sees the message; the console gets the cause. */
  const report = useCallback(
    (error: unknown) => {
      const cause = error instanceof Error ? error.cause : undefined;
      console.error(error, cause ?? '');
      const message = error instanceof Error ? error.message : String(error);
      notify(error instanceof StorageWarning ? 'warning' : 'error', message);
    },
    [notify],
  );

  const prompt = usePrompt(report);
  const { addImages, addClip } = prompt;

  // Images dropped or pasted anywhere on the page join the prompt; a dropped video file becomes a clip.
  useEffect(() => {
    const hasFiles = (event: DragEvent) => event.dataTransfer?.types.includes('Files') ?? false;
    const onDragOver = (event: DragEvent) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      setDragging(true);
    };
    const onDragLeave = (event: DragEvent) => {
      if (event.relatedTarget === null) setDragging(false);
    };
    const onDrop = (event: DragEvent) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      setDragging(false);
      const files = Array.from(event.dataTransfer?.files ?? []);
      addImages(filesToImages(files.filter((file) => !isVideoFile(file))));
      for (const video of files.filter(isVideoFile)) addClip(clipFromFiles([video]));
    };
    const onPaste = (event: ClipboardEvent) => {
      const images = Array.from(event.clipboardData?.files ?? []).filter((file) => file.type.startsWith('image/'));
      if (images.length === 0) return; // plain text pastes into the focused field as usual
      event.preventDefault();
      addImages(filesToImages(images));
    };
    window.addEventListener('dragover', onDragOver);
    window.addEventListener('dragleave', onDragLeave);
    window.addEventListener('drop', onDrop);
    window.addEventListener('paste', onPaste);
    return () => {
      window.removeEventListener('dragover', onDragOver);
      window.removeEventListener('dragleave', onDragLeave);
      window.removeEventListener('drop', onDrop);
      window.removeEventListener('paste', onPaste);
    };
  }, [addImages, addClip]);

  const changeBackend = (choice: BackendChoice) => {
    setBackend(choice);
    const url = new URL(window.location.href);
    url.searchParams.set('backend', choice);
    window.history.replaceState(null, '', url);
  };

  const clearCache = () => {
    clearModelCache().then(
      () => notify('info', 'Cached model files deleted: the next visit downloads the model again.'),
      report,
    );
  };

  const ready = model.status === 'ready';
  const running = run.status === 'running';
  const pendingImages = prompt.pending;
  const canRun = ready && !running && !pendingImages && prompt.segments.length > 0;

  const generate = async () => {
    if (!canRun) return;
    setScores(undefined);
    const startedAt = performance.now();
    setRun({ status: 'running', text: '', startedAt, tokens: 0 });
    const kept = prompt.toPrompt(); // generate() transfers its copy's pixels to the worker
    try {
      const done: DoneEvent = await client.generate(prompt.toPrompt(), { maxNewTokens }, (event) => {
        if (event.type !== 'token') return;
        setRun((current) =>
          current.status === 'running'
            ? {
                ...current,
                text: current.text + event.text,
                tokens: current.tokens + 1,
                firstTokenMs: current.firstTokenMs ?? performance.now() - current.startedAt,
              }
            : current,
        );
      });
      setRun({ status: 'done', done });
      setAnsweredPrompt(kept);
    } catch (error) {
      report(error);
      setRun((current) => ({ status: 'failed', text: current.status === 'running' ? current.text : '' }));
    }
  };

  const rank = async (options: string[]) => {
    if (!canRun || options.length === 0) return;
    setRun({ status: 'scoring' });
    try {
      const results = await client.score(prompt.toPrompt(), options);
      setScores([...results].sort((a, b) => b.logLikelihood - a.logLikelihood));
      setRun({ status: 'idle' });
    } catch (error) {
      report(error);
      setRun({ status: 'failed', text: '' });
    }
  };

  const onLoadExample = () => {
    if (prompt.segments.length > 0 && !window.confirm('Replace the current prompt with the example?')) return;
    loadExample().then(prompt.replace, report);
  };

  const warnings = model.warnings.map((warning) => warning.message);
  return (
    <div className={`app${dragging ? ' dragging' : ''}`}>
      <header>
        <h1>flamingo-web</h1>
        <p className="tagline">A few-shot visual language model, running in your browser. Nothing leaves this page.</p>
      </header>
      <main
        onKeyDown={(event) => {
          if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
            event.preventDefault();
            void generate();
          }
        }}
      >
        <ModelStatus
          state={model}
          backend={backend}
          onBackendChange={changeBackend}
          onClearCache={clearCache}
          onRetry={retry}
        />
        {(warnings.length > 0 || notices.length > 0) && (
          <div className="notices">
            {warnings.map((message) => (
              <p key={message} className="notice warning" role="status" data-testid="warning">
                {message}
              </p>
            ))}
            {notices.map((notice) => (
              <p
                key={notice.id}
                className={`notice ${notice.kind}`}
                role={notice.kind === 'error' ? 'alert' : 'status'}
                data-testid={notice.kind === 'error' ? 'error' : notice.kind}
              >
                {notice.message}{' '}
                <button
                  type="button"
                  aria-label="Dismiss"
                  onClick={() => setNotices((list) => list.filter((other) => other.id !== notice.id))}
                >
                  ✕
                </button>
              </p>
            ))}
          </div>
        )}
        <PromptEditor prompt={prompt} onLoadExample={onLoadExample} onError={report} />
        <AnswerPanel
          run={run}
          scores={scores}
          canRun={canRun}
          waitingFor={!ready ? 'the model' : pendingImages ? 'images and clips to decode' : undefined}
          maxNewTokens={maxNewTokens}
          onMaxNewTokens={setMaxNewTokens}
          onGenerate={generate}
          onStop={() => void client.interrupt()}
          onRank={rank}
        />
        {run.status === 'done' && answeredPrompt && (
          <Pictures client={client} prompt={answeredPrompt} done={run.done} onError={report} />
        )}
      </main>
      <AboutModel state={model} modelUrl={settings.modelUrl} />
      {dragging && (
        <div className="drop-overlay" aria-hidden="true">
          Drop images or video files to add them to the prompt
        </div>
      )}
    </div>
  );
}
