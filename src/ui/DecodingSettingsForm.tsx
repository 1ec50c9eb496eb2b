import { clampSetting, LIMITS, type DecodingMode, type DecodingSettings } from './decoding';

interface Props {
  settings: DecodingSettings;
  onChange: (settings: DecodingSettings) => void;
  disabled: boolean;
}

const MODES: { mode: DecodingMode; label: string }[] = [
  { mode: 'greedy', label: 'Greedy' },
  { mode: 'beam', label: 'Beam search' },
  { mode: 'sample', label: 'Sampling' },
];

/** Greedy, beam search or sampling, and the token limit. */
export function DecodingSettingsForm({ settings, onChange, disabled }: Props) {
  const number = (key: keyof typeof LIMITS, label: string, step = 1, testId = key) => (
    <label>
      {label}{' '}
      <input
        type="number"
        min={LIMITS[key][0]}
        max={LIMITS[key][1]}
        step={step}
        value={settings[key]}
        data-testid={testId === 'maxNewTokens' ? 'max-new-tokens' : `decoding-${testId}`}
        disabled={disabled}
        onChange={(event) => onChange({ ...settings, [key]: clampSetting(key, Number(event.target.value)) })}
      />
    </label>
  );
  return (
    <fieldset className="decoding" disabled={disabled}>
      <legend>Decoding</legend>
      <div className="row" role="radiogroup" aria-label="Decoding method">
        {MODES.map(({ mode, label }) => (
          <label key={mode}>
            <input
              type="radio"
              name="decoding-mode"
              value={mode}
              data-testid={`decoding-${mode}`}
              checked={settings.mode === mode}
              onChange={() => onChange({ ...settings, mode })}
            />{' '}
            {label}
          </label>
        ))}
        {number('maxNewTokens', 'Max new tokens')}
      </div>
      {settings.mode === 'beam' && (
        <div className="row">
          {number('beams', 'Beams')}
          <span className="muted">3 is the paper’s setting. The answer appears when the search ends.</span>
        </div>
      )}
      {settings.mode === 'sample' && (
        <div className="row">
          {number('temperature', 'Temperature', 0.05)}
          {number('topK', 'Top-k (0: off)')}
          {number('topP', 'Top-p (1: off)', 0.05)}
          {number('seed', 'Seed')}
        </div>
      )}
    </fieldset>
  );
}
