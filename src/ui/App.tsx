import { useCallback, useEffect, useMemo, useState } from 'react';
import type { DoneEvent, Prompt } from '../engine/types';
import { BUNDLED_MODEL_PATH, bundledManifest } from '../store/bundledModel';
import { isLocalModelUrl } from '../store/modelCatalog';
import { clearModelCache } from '../store/modelStore';
import { backendChoice, type BackendChoice, type FlamingoClient, type ScoreResult } from '../worker/client';
import { AnswerPanel, type RunState } from './AnswerPanel';
import { clipFromFiles, isVideoFile } from './clips';
import { ConfirmDialog } from './ConfirmDialog';
import { DEFAULT_DECODING, toGenerateOptions, type DecodingSettings } from './decoding';
import { loadExample } from './example';
import { ExampleLibrary } from './ExampleLibrary';
import { Gallery } from './Gallery';
import { galleryPrompt, type GalleryExample } from './gallery';
import { ModelManager } from './ModelManager';
import { AboutModel, ModelStatus } from './ModelStatus';
import { Pictures } from './Pictures';
import { applyTask, taskById, unfilledFields, type PlanSegment, type TaskId } from './presets';
import { filesToImages, PromptEditor } from './PromptEditor';
import { TaskPresets } from './TaskPresets';
import { StorageWarning, usePrompt } from './usePrompt';
import { useModel } from './useModel';

interface Notice {
  id: number;
  kind: 'error' | 'warning' | 'info';
  message: string;
}


const bundledModelUrl = () => new URL(`${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, window.location.href).href;

/** A model folder on this page's origin (or picked from disk) loads without asking. */
function needsConsent(url: string): boolean {
  return !isLocalModelUrl(url) && new URL(url).origin !== window.location.origin;
}

/**
 * `?backend=wasm|webgpu|auto` picks the backend; `?model=URL` loads another model folder (one on
 * another origin only once the visitor confirms: until then the bundled model).
 */
export function settingsFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const model = params.get('model');
  let requested = bundledModelUrl();
  try {
    if (model) requested = isLocalModelUrl(model) ? model : new URL(model, window.location.href).href;
  } catch {
    console.warn(`?model=${model} is not a URL; using the bundled model`);
  }
  return {
    backend: backendChoice(params.get('backend')),
    variant: params.get('variant') ?? 'auto',
    modelUrl: needsConsent(requested) ? bundledModelUrl() : requested,
    askFor: needsConsent(requested) ? requested : undefined,
  };
}

const BUNDLED = { url: bundledModelUrl(), manifest: bundledManifest };

export function App({ client }: { client: FlamingoClient }) {
  const settings = useMemo(settingsFromUrl, []);
  const [backend, setBackend] = useState<BackendChoice>(settings.backend);
  const [modelUrl, setModelUrl] = useState(settings.modelUrl);
  const [askForOrigin, setAskForOrigin] = useState<string | undefined>(settings.askFor);
  const { model, retry } = useModel(client, modelUrl, backend, settings.variant);
  const [notices, setNotices] = useState<Notice[]>([]);
  const [run, setRun] = useState<RunState>({ status: 'idle' });
  const [decoding, setDecoding] = useState<DecodingSettings>(DEFAULT_DECODING);
  const [scores, setScores] = useState<ScoreResult[]>();
  /** The prompt of the answer on screen, kept in the page for its pictures. */
  const [answeredPrompt, setAnsweredPrompt] = useState<Prompt>();
  const [options, setOptions] = useState('');
  const [permutations, setPermutations] = useState(1);
  const [rankOpen, setRankOpen] = useState(false);
  const [task, setTask] = useState<TaskId>('caption');
  const [question, setQuestion] = useState('');
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

  const changeModel = (url: string) => {
    setModelUrl(url);
    const address = new URL(window.location.href);
    if (url === BUNDLED.url) address.searchParams.delete('model');
    else address.searchParams.set('model', url);
    window.history.replaceState(null, '', address);
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
  const busy = running || run.status === 'scoring';
  const canRun = ready && !busy && !pendingImages && prompt.segments.length > 0;

  const generate = async () => {
    if (!canRun) return;
    setScores(undefined);
    const startedAt = performance.now();
    const generateOptions = toGenerateOptions(decoding);
    setRun({ status: 'running', text: '', startedAt, tokens: 0, beams: generateOptions.beams });
    const kept = prompt.toPrompt(); // generate() transfers its copy's pixels to the worker
    try {
      const done: DoneEvent = await client.generate(prompt.toPrompt(), generateOptions, (event) => {
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
    setScores(undefined);
    setRun({ status: 'scoring' });
    try {
      const results = await client.score(prompt.toPrompt(), options, { permutations });
      setScores([...results].sort((a, b) => b.logLikelihood - a.logLikelihood));
      setRun({ status: 'idle' });
    } catch (error) {
      report(error);
      setRun({ status: 'failed', text: '' });
    }
  };

  const chooseTask = (id: TaskId) => {
    setTask(id);
    setRankOpen(taskById(id).mode === 'rank');
  };

  const planOfPrompt = (): PlanSegment[] =>
    prompt.segments.map((segment) =>
      segment.kind === 'text' ? { kind: 'text', id: segment.id, text: segment.text } : { kind: 'visual', id: segment.id },
    );

  const applyPreset = () => {
    if (model.status !== 'ready') return;
    const { prompt_templates: templates, special_tokens: special } = model.result.manifest;
    try {
      const result = applyTask(planOfPrompt(), taskById(task), templates, special, { question });
      prompt.arrange(result.segments);
      if (taskById(task).mode === 'rank' && result.labels.length > 0) setOptions(result.labels.join(', '));
    } catch (error) {
      report(error);
    }
  };

  const pickGalleryExample = (example: GalleryExample) => {
    if (prompt.segments.length > 0 && !window.confirm(`Replace the current prompt with “${example.title}”?`)) return;
    galleryPrompt(example).then((items) => {
      prompt.replace(items);
      chooseTask(example.task);
      setOptions(example.options?.join(', ') ?? '');
      setScores(undefined);
      setRun({ status: 'idle' });
    }, report);
  };

  const onLoadExample = () => {
    if (prompt.segments.length > 0 && !window.confirm('Replace the current prompt with the example?')) return;
    loadExample().then(prompt.replace, report);
  };

  // a download that was retried and then succeeded is no longer news
  const warnings = model.warnings.filter((w) => !(ready && w.code === 'download-retry')).map((warning) => warning.message);
  const manifest = model.status === 'ready' ? model.result.manifest : undefined;
  const unfilled = unfilledFields(prompt.segments.flatMap((segment) => (segment.kind === 'text' ? [segment.text] : [])));
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
        <Gallery onPick={pickGalleryExample} onError={report} />
        <TaskPresets
          task={task}
          onTask={chooseTask}
          question={question}
          onQuestion={setQuestion}
          templates={manifest?.prompt_templates}
          onApply={applyPreset}
          canApply={manifest !== undefined && prompt.segments.some((segment) => segment.kind !== 'text')}
          unfilled={unfilled}
        />
        <PromptEditor prompt={prompt} onLoadExample={onLoadExample} onError={report} />
        <AnswerPanel
          run={run}
          scores={scores}
          canRun={canRun}
          waitingFor={!ready ? 'the model' : pendingImages ? 'images and clips to decode' : undefined}
          decoding={decoding}
          onDecoding={setDecoding}
          onGenerate={generate}
          onStop={() => void client.interrupt()}
          options={options}
          onOptions={setOptions}
          permutations={permutations}
          onPermutations={setPermutations}
          rankOpen={rankOpen}
          onRankOpen={setRankOpen}
          onRank={rank}
          pictures={
            run.status === 'done' && answeredPrompt ? (
              <Pictures client={client} prompt={answeredPrompt} done={run.done} onError={report} />
            ) : undefined
          }
        />
        <ExampleLibrary
          prompt={prompt}
          client={client}
          encoderKey={manifest?.files.vision_encoder.sha256}
          canRun={canRun}
          onError={report}
          onInfo={(message) => notify('info', message)}
        />
        <ModelManager
          bundled={BUNDLED}
          currentUrl={modelUrl}
          loadedKey={`${model.status} ${modelUrl}`}
          onLoad={changeModel}
          onLoadOtherOrigin={setAskForOrigin}
          onError={report}
          onInfo={(message) => notify('info', message)}
        />
      </main>
      <AboutModel state={model} modelUrl={modelUrl} />
      {askForOrigin && (
        <ConfirmDialog
          title="Load a model from another site?"
          confirmLabel={`Load from ${new URL(askForOrigin).host}`}
          onCancel={() => {
            setAskForOrigin(undefined);
            notify('info', 'The model from another site was not loaded.');
          }}
          onConfirm={() => {
            changeModel(askForOrigin);
            setAskForOrigin(undefined);
          }}
        >
          <p>
            <span data-testid="confirm-url">{askForOrigin}</span> is on another site ({new URL(askForOrigin).origin}).
            Its files will be downloaded into this browser and run here; every file is checked against the manifest’s
            sha256, but only load models from people you trust.
          </p>
        </ConfirmDialog>
      )}
      {dragging && (
        <div className="drop-overlay" aria-hidden="true">
          Drop images or video files to add them to the prompt
        </div>
      )}
    </div>
  );
}
