// The embed's compact view: the model's state, the prompt a host sent, the streamed answer
// (aria-live) and Stop (Escape stops too). Everything else is the host's.
import { useEffect, useSyncExternalStore } from 'react';
import { UpdatePrompt } from '../pwa/UpdatePrompt';
import type { EmbedController, EmbedState } from './controller';

const STOP_REASONS = { end_of_chunk: 'end of chunk', newline: 'newline', max_tokens: 'token limit', interrupted: 'stopped' };

export function EmbedView({ controller }: { controller: EmbedController }) {
  const state = useSyncExternalStore(controller.subscribe, controller.getState);
  const { shown } = state;
  const running = shown?.status === 'running' || shown?.status === 'preparing';

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') controller.stop();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [controller]);

  let imageNumber = 0;
  return (
    <main className="embed" data-testid="embed" data-state={shown?.status ?? 'idle'}>
      <h1 className="embed-title">
        flamingo-web <ModelLine model={state.model} />
      </h1>
      {state.configError && (
        <p className="embed-error" role="alert" data-testid="config-error">
          {state.configError}
        </p>
      )}
      {state.model.status === 'error' && (
        <p className="embed-error" role="alert" data-testid="model-error">
          {state.model.message}
        </p>
      )}
      <section aria-labelledby="embed-prompt-heading">
        <h2 id="embed-prompt-heading">Prompt</h2>
        {shown ? (
          <ol className="embed-prompt" data-testid="embed-prompt">
            {shown.segments.map((segment, index) =>
              'imageUrl' in segment ? (
                <li key={index}>
                  <img src={segment.imageUrl} alt={`Image ${++imageNumber} of the prompt`} width={48} height={48} />
                </li>
              ) : (
                <li key={index} className="embed-text">
                  {segment.text}
                </li>
              ),
            )}
          </ol>
        ) : (
          <p className="muted" data-testid="embed-waiting-for-host">
            {window.parent === window ? (
              <>
                This is flamingo-web’s embed view: another site shows it in a frame and sends it prompts. To try the
                model yourself, <a href="./">open the studio</a>.
              </>
            ) : (
              'Waiting for the page that embeds this to send a prompt.'
            )}
          </p>
        )}
        {shown && (
          <p className="muted embed-origin">
            From {shown.origin}
            {state.waiting > 0 && <span data-testid="embed-waiting"> · {state.waiting} more waiting</span>}
          </p>
        )}
      </section>
      <section aria-labelledby="embed-answer-heading">
        <h2 id="embed-answer-heading">Answer</h2>
        <output className="embed-answer" data-testid="embed-answer" aria-live="polite" aria-busy={running}>
          {shown?.status === 'preparing' ? '' : (shown?.text ?? '')}
        </output>
        {shown?.status === 'failed' && (
          <p className="embed-error" role="alert">
            {shown.error}
          </p>
        )}
        {shown?.done && (
          <p className="muted" data-testid="embed-stats">
            {Math.round(shown.done.ttftMs)} ms to the first token · {shown.done.tokensPerSecond.toFixed(1)} tokens/s ·
            stopped at {STOP_REASONS[shown.done.stopReason]}
          </p>
        )}
        <button type="button" data-testid="embed-stop" disabled={!running} onClick={() => controller.stop()}>
          Stop
        </button>{' '}
        <span className="muted">(or press Escape)</span>
      </section>
      <UpdatePrompt compact />
    </main>
  );
}

function ModelLine({ model }: { model: EmbedState['model'] }) {
  if (model.status === 'loading') {
    const percent = model.totalBytes > 0 ? Math.floor((100 * model.loadedBytes) / model.totalBytes) : 0;
    return (
      <span className="muted" data-testid="embed-loading">
        · loading the model, {percent} %
      </span>
    );
  }
  if (model.status === 'error') return <span className="muted">· the model failed to load</span>;
  const threads = self.crossOriginIsolated ? '' : ' (one thread: the host page is not cross-origin isolated)';
  return (
    <span className="muted" data-testid="embed-backend" data-backend={model.result.backend}>
      · {model.result.backend === 'webgpu' ? 'WebGPU' : `WASM${threads}`}
    </span>
  );
}
