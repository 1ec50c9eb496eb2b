import type { ReactNode } from 'react';
import { pastTrainedContext, type DoneEvent } from '../engine/types';
import type { ScoreResult } from '../worker/client';
import type { DecodingSettings } from './decoding';
import { DecodingSettingsForm } from './DecodingSettingsForm';

export type RunState =
  | { status: 'idle' }
  | { status: 'running'; text: string; startedAt: number; tokens: number; firstTokenMs?: number; beams?: number }
  | { status: 'scoring' }
  | { status: 'done'; done: DoneEvent }
  | { status: 'failed'; text: string };

const STOP_REASONS: Record<DoneEvent['stopReason'], string> = {
  end_of_chunk: 'end of chunk',
  newline: 'newline',
  max_tokens: 'token limit',
  interrupted: 'stopped',
};

interface Props {
  run: RunState;
  scores: ScoreResult[] | undefined;
  canRun: boolean;
  /** Why Generate is not available yet, if it is not. */
  waitingFor: string | undefined;
  decoding: DecodingSettings;
  onDecoding: (settings: DecodingSettings) => void;
  onGenerate: () => void;
  onStop: () => void;
  /** Close-ended: the options (comma-separated, as typed), prompt ensembling, whether the section is open. */
  options: string;
  onOptions: (options: string) => void;
  permutations: number;
  onPermutations: (permutations: number) => void;
  rankOpen: boolean;
  onRankOpen: (open: boolean) => void;
  onRank: (options: string[]) => void;
  /** The attention pictures for the answer (item 5 of issue 17), rendered under it. */
  pictures?: ReactNode;
}

export function AnswerPanel(props: Props) {
  const { run, scores, canRun, waitingFor, options } = props;
  const running = run.status === 'running';
  const text = run.status === 'done' ? run.done.text : run.status === 'running' || run.status === 'failed' ? run.text : '';
  const optionList = options
    .split(',')
    .map((option) => option.trim())
    .filter((option) => option !== '');

  return (
    <section className="panel answer" aria-labelledby="answer-heading" data-testid="answer-panel" data-state={run.status}>
      <h2 id="answer-heading">Answer</h2>
      <div className="row">
        <button type="button" className="primary" data-testid="generate" disabled={!canRun} onClick={props.onGenerate}>
          Generate
        </button>
        <button type="button" data-testid="stop" disabled={!running} onClick={props.onStop}>
          Stop
        </button>
        {waitingFor && <span className="muted">Waiting for {waitingFor}…</span>}
        {!waitingFor && <span className="muted">Ctrl+Enter generates.</span>}
      </div>
      <DecodingSettingsForm settings={props.decoding} onChange={props.onDecoding} disabled={running} />
      <output className="answer-text" data-testid="answer" aria-live="polite" aria-busy={running} aria-label="Answer">
        {text}
        {running && <span className="cursor" aria-hidden="true" />}
      </output>
      {run.status === 'running' && (
        <p className="stats muted" data-testid="live-stats">
          {run.beams !== undefined
            ? `Searching with ${run.beams} beams: the answer appears at the end…`
            : run.firstTokenMs === undefined
            ? 'Reading the prompt…'
            : `First token after ${Math.round(run.firstTokenMs)} ms · ${run.tokens} tokens`}
        </p>
      )}
      {run.status === 'done' && <Stats done={run.done} />}
      {props.pictures}
      <details className="rank" open={props.rankOpen} onToggle={(event) => props.onRankOpen(event.currentTarget.open)}>
        <summary>Rank options instead (close-ended)</summary>
        <div className="row">
          <label>
            Options, comma-separated{' '}
            <input
              type="text"
              value={options}
              data-testid="options"
              placeholder="dog face, cat face"
              onChange={(event) => props.onOptions(event.target.value)}
            />
          </label>
          <label title="Prompt ensembling: the scores are averaged over this many orders of the support examples">
            Support orders{' '}
            <input
              type="number"
              min={1}
              max={24}
              value={props.permutations}
              data-testid="permutations"
              onChange={(event) => props.onPermutations(Math.max(1, Math.min(24, Math.round(Number(event.target.value)) || 1)))}
            />
          </label>
          <button
            type="button"
            data-testid="rank"
            disabled={!canRun || optionList.length === 0}
            onClick={() => props.onRank(optionList)}
          >
            Rank
          </button>
        </div>
        {run.status === 'scoring' && <p className="muted">Ranking the options…</p>}
        {scores && (
          <ol className="scores" data-testid="scores" aria-live="polite" aria-label="Ranked options">
            {scores.map((score) => (
              <li key={score.option}>
                <strong>{score.option}</strong>{' '}
                <span className="muted">
                  log-likelihood {score.logLikelihood.toFixed(3)} (mean per token {score.meanLogLikelihood.toFixed(3)})
                </span>
              </li>
            ))}
          </ol>
        )}
      </details>
    </section>
  );
}

function Stats({ done }: { done: DoneEvent }) {
  return (
    <dl className="stats" data-testid="stats">
      <div>
        <dt>Time to first token</dt>
        <dd data-testid="ttft">{Math.round(done.ttftMs)} ms</dd>
      </div>
      <div>
        <dt>Speed</dt>
        <dd data-testid="tokens-per-second">{done.tokensPerSecond.toFixed(1)} tokens/s</dd>
      </div>
      <div>
        <dt>Tokens</dt>
        <dd data-testid="tokens" data-tokens={done.tokens}>
          {done.tokens} generated, {done.promptTokens} in the prompt
          {pastTrainedContext(done) && (
            <span className="context-warning" data-testid="context-warning">
              {' '}
              — longer than the {done.contextLength} tokens the model was trained on, so answers get worse: try fewer
              examples
            </span>
          )}
        </dd>
      </div>
      {done.media > 0 && (
        <div>
          <dt>Images and clips</dt>
          <dd data-testid="media" data-media={done.media} data-encoded={done.encodedMedia}>
            {done.media} ({done.encodedMedia} encoded, {done.media - done.encodedMedia} from the cache)
          </dd>
        </div>
      )}
      <div>
        <dt>Stopped at</dt>
        <dd data-testid="stop-reason">{STOP_REASONS[done.stopReason]}</dd>
      </div>
      <div>
        <dt>Backend</dt>
        <dd data-testid="answer-backend">{done.backend}</dd>
      </div>
    </dl>
  );
}
