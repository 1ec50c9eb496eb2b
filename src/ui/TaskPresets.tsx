import type { Manifest } from '../engine/types';
import { TASKS, taskById, unavailableReason, type TaskId } from './presets';

interface Props {
  task: TaskId;
  onTask: (task: TaskId) => void;
  question: string;
  onQuestion: (question: string) => void;
  /** The model's templates; undefined until it is loaded. */
  templates: Manifest['prompt_templates'] | undefined;
  /** Writes the prompt's text in the task's template. */
  onApply: () => void;
  canApply: boolean;
  /** Placeholders such as {caption} left in the prompt. */
  unfilled: string[];
}

export function TaskPresets({ task, onTask, question, onQuestion, templates, onApply, canApply, unfilled }: Props) {
  const current = taskById(task);
  const reason = templates && unavailableReason(current, templates);
  return (
    <section className="panel task" aria-labelledby="task-heading">
      <h2 id="task-heading">Task</h2>
      <fieldset className="row task-options">
        <legend className="visually-hidden">Task preset</legend>
        {TASKS.map((preset) => {
          const disabledReason = templates && unavailableReason(preset, templates);
          return (
            <label key={preset.id} title={disabledReason}>
              <input
                type="radio"
                name="task"
                value={preset.id}
                data-testid={`task-${preset.id}`}
                checked={task === preset.id}
                disabled={disabledReason !== undefined}
                onChange={() => onTask(preset.id)}
              />{' '}
              {preset.title}
            </label>
          );
        })}
      </fieldset>
      <p className="hint" id="task-hint">
        {current.hint} Images before the last are examples; the last is the query.
      </p>
      {current.id === 'question_answering' && (
        <p className="row">
          <label>
            Question for the last image{' '}
            <input
              type="text"
              data-testid="task-question"
              value={question}
              placeholder="what colour is the background?"
              onChange={(event) => onQuestion(event.target.value)}
            />
          </label>
        </p>
      )}
      <div className="row">
        <button type="button" data-testid="apply-task" disabled={!canApply || reason !== undefined} aria-describedby="task-hint" onClick={onApply}>
          Write the prompt’s text for this task
        </button>
        {reason && <span className="muted">{reason}</span>}
        {unfilled.length > 0 && (
          <span className="muted" data-testid="unfilled">
            Fill in {unfilled.map((field) => `{${field}}`).join(', ')} in the prompt.
          </span>
        )}
      </div>
    </section>
  );
}
