import type { BackendChoice } from '../worker/client';
import { formatBytes } from '../store/modelStore';
import { loadingSummary, type ModelState } from './useModel';

const PHASE_TEXT = {
  manifest: 'Reading the manifest',
  download: 'Downloading',
  verify: 'Checking integrity (sha256)',
  cache: 'Saving to browser storage',
  session: 'Starting the model',
  ready: 'Starting the model',
} as const;

interface Props {
  state: ModelState;
  backend: BackendChoice;
  onBackendChange: (backend: BackendChoice) => void;
  onClearCache: () => void;
  onRetry: () => void;
}

export function ModelStatus({ state, backend, onBackendChange, onClearCache, onRetry }: Props) {
  return (
    <section className="panel model" aria-labelledby="model-heading">
      <h2 id="model-heading">Model</h2>
      {state.status === 'loading' && <LoadingProgress state={state} />}
      {state.status === 'ready' && (
        <p data-testid="model-ready">
          <strong>{state.result.manifest.name}</strong> {state.result.manifest.version} on{' '}
          <strong data-testid="backend" data-backend={state.result.backend}>
            {state.result.backend}
          </strong>{' '}
          (<span data-testid="variant" data-variant={state.result.variant}>
            {state.result.variant}
          </span>
          ), ready in {(state.result.loadMs / 1000).toFixed(1)} s
          {state.result.fromCache ? ' (from browser storage)' : ''}.
        </p>
      )}
      {state.status === 'error' && (
        <p className="error" role="alert" data-testid="model-error">
          {state.message}{' '}
          <button
            type="button"
            data-testid="retry-load"
            onClick={onRetry}
          >
            Try again
          </button>
        </p>
      )}
      <div className="row">
        <label htmlFor="backend-select">Backend</label>
        <select
          id="backend-select"
          data-testid="backend-select"
          value={backend}
          onChange={(event) => onBackendChange(event.target.value as BackendChoice)}
        >
          <option value="auto">Auto (WebGPU if available)</option>
          <option value="webgpu">WebGPU</option>
          <option value="wasm">WASM</option>
        </select>
        <button type="button" data-testid="clear-cache" onClick={onClearCache}>
          Delete cached model files
        </button>
      </div>
    </section>
  );
}

function LoadingProgress({ state }: { state: Extract<ModelState, { status: 'loading' }> }) {
  const { loadedBytes, totalBytes, phase } = loadingSummary(state.files);
  const starting = phase === 'session' || phase === 'ready';
  return (
    <div className="progress" data-testid="model-loading">
      <label htmlFor="model-progress">Model download</label>
      <progress
        id="model-progress"
        data-testid="model-progress"
        max={totalBytes || 1}
        value={starting ? totalBytes || 1 : loadedBytes}
      />
      <p data-testid="model-progress-text" aria-live="polite">
        {PHASE_TEXT[phase]}
        {totalBytes > 0 && `: ${formatBytes(loadedBytes)} of ${formatBytes(totalBytes)}`}
        …
      </p>
    </div>
  );
}

/** What the model is, its licence and data (from the manifest), and the example's credits. */
export function AboutModel({ state, modelUrl }: { state: ModelState; modelUrl: string }) {
  const manifest = state.status === 'ready' ? state.result.manifest : undefined;
  // model_card names a file in the model folder (MODEL_CARD.md), when it is a file name at all.
  const card = manifest?.model_card && /^[\w./-]+\.md$/.test(manifest.model_card) ? manifest.model_card : undefined;
  return (
    <footer className="about">
      {manifest && (
        <p>
          Model: <strong>{manifest.name}</strong> {manifest.version}
          {manifest.description ? ` — ${manifest.description}` : ''}. Licence: {manifest.license}. Trained on:{' '}
          {manifest.training_data}.
          {card && (
            <>
              {' '}
              <a href={new URL(card, modelUrl).href}>Model card</a>.
            </>
          )}
        </p>
      )}
      <p>
        The example's images are Twemoji artwork (© Twitter, CC BY 4.0); the gallery's are OpenMoji artwork (©
        OpenMoji contributors, CC BY-SA 4.0):{' '}
        <a href={`${import.meta.env.BASE_URL}examples/CREDITS.md`}>credits</a>. Everything runs in this browser with ONNX
        Runtime Web; the model is kept in this site's browser storage.
      </p>
    </footer>
  );
}
