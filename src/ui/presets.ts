// Task presets for the prompt studio: each writes the prompt's text in the OpenFlamingo format of
// one of the model's own templates (manifest `prompt_templates`, DESIGN.md "Prompts"). Nothing
// here knows the model: a template the manifest lacks makes its task unavailable. Pure: no DOM.
import type { Manifest, PromptTemplate } from '../engine/types';
import { seededRandom } from '../engine/sampling';

export type TaskId = 'caption' | 'question_answering' | 'classify' | 'teach';

export interface TaskPreset {
  id: TaskId;
  title: string;
  /** What the visitor does with it. */
  hint: string;
  /** The manifest template it writes (DESIGN.md names these two). */
  template: 'naming' | 'question_answering';
  /** Generate an answer, or rank given options by log-likelihood. */
  mode: 'generate' | 'rank';
}

export const TASKS: readonly TaskPreset[] = [
  {
    id: 'caption',
    title: 'Caption',
    hint: 'Label each example image with its name; the model names the last image.',
    template: 'naming',
    mode: 'generate',
  },
  {
    id: 'question_answering',
    title: 'Question answering',
    hint: 'Each example has a question and a short answer; type the question for the last image.',
    template: 'question_answering',
    mode: 'generate',
  },
  {
    id: 'classify',
    title: 'Classify among options',
    hint: 'Label the examples; the options (the labels, or your own) are ranked for the last image.',
    template: 'naming',
    mode: 'rank',
  },
  {
    id: 'teach',
    title: 'Teach new words',
    hint: 'Give each example a made-up word (unlabelled ones get one); the model uses the words for the last image.',
    template: 'naming',
    mode: 'generate',
  },
];

export function taskById(id: TaskId): TaskPreset {
  return TASKS.find((task) => task.id === id) ?? TASKS[0];
}

type Templates = Manifest['prompt_templates'];
type Special = Pick<Manifest['special_tokens'], 'image' | 'end_of_chunk'>;

/** A prompt as the presets see it: visual segments (kept as they are) and text. */
export type PlanSegment = { kind: 'visual'; id: string } | { kind: 'text'; id?: string; text: string };

/** The text segment that follows an image: the template minus its image marker and closing token. */
export interface TemplateText {
  example: string;
  query: string;
  /** The field the example answers (in the example, not in the query): caption, answer. */
  label: string;
}

const FIELD = /\{(\w+)\}/g;

function textAfterImage(template: string, special: Special): string {
  let text = template;
  for (const marker of ['{image}', special.image]) {
    const at = text.lastIndexOf(marker);
    if (at >= 0) text = text.slice(at + marker.length);
  }
  if (text.endsWith(special.end_of_chunk)) text = text.slice(0, -special.end_of_chunk.length);
  return text.trim();
}

function fieldsOf(text: string): string[] {
  return [...text.matchAll(FIELD)].map((match) => match[1]);
}

export function templateText(template: PromptTemplate, special: Special): TemplateText {
  const example = textAfterImage(template.example, special);
  const query = textAfterImage(template.query, special);
  const exampleFields = fieldsOf(example);
  const queryFields = new Set(fieldsOf(query));
  const label = exampleFields.find((field) => !queryFields.has(field)) ?? exampleFields.at(-1) ?? 'label';
  return { example, query, label };
}

/** Why a task cannot be used with this model, or undefined when it can. */
export function unavailableReason(task: TaskPreset, templates: Templates): string | undefined {
  return templates[task.template] ? undefined : `This model has no “${task.template}” prompt template.`;
}

export function fill(text: string, fields: Readonly<Record<string, string>>): string {
  return text.replace(FIELD, (whole, name: string) => fields[name] ?? whole);
}

/** The fields of `text` written with template `part`, or undefined when it does not fit. */
export function extractFields(part: string, text: string): Record<string, string> | undefined {
  const names: string[] = [];
  const pattern = part
    .split(FIELD)
    .map((piece, index) => {
      if (index % 2 === 1) {
        names.push(piece);
        return '(.*?)';
      }
      return piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s*');
    })
    .join('');
  const match = new RegExp(`^\\s*${pattern}\\s*$`, 's').exec(text);
  if (!match) return undefined;
  return Object.fromEntries(names.map((name, i) => [name, match[i + 1].trim()]));
}

/** What a support's text says, read with any of the model's templates (else the text itself is the label). */
function readSupport(text: string, templates: Templates, special: Special): { label?: string; fields: Record<string, string> } {
  const trimmed = text.trim();
  if (trimmed === '') return { fields: {} };
  for (const template of Object.values(templates)) {
    const parts = templateText(template, special);
    const fields = extractFields(parts.example, trimmed);
    if (fields && fields[parts.label] !== undefined && fields[parts.label] !== '') return { label: fields[parts.label], fields };
  }
  return { label: trimmed.replace(/\.$/, ''), fields: {} };
}

/** A pronounceable made-up word (consonant-vowel syllables), like EmojiWorld's binding episodes. */
export function inventWord(random: () => number): string {
  const consonants = 'bdfgklmnprstvz';
  const vowels = 'aeiou';
  const syllables = 2 + Math.floor(random() * 2);
  let word = '';
  for (let i = 0; i < syllables; i++) {
    word += consonants[Math.floor(random() * consonants.length)] + vowels[Math.floor(random() * vowels.length)];
  }
  return word;
}

export interface PresetResult {
  segments: PlanSegment[];
  /** The support examples' labels, in order, each once: the options of a classify task. */
  labels: string[];
}

/**
 * Rewrites the text after each visual segment in the task's template: every visual segment but
 * the last is a support example (its label is kept, read from whatever template it was written
 * in), the last is the query. Text before the first visual segment stays as it is.
 */
export function applyTask(
  segments: readonly PlanSegment[],
  task: TaskPreset,
  templates: Templates,
  special: Special,
  options: { question?: string; seed?: number } = {},
): PresetResult {
  const template = templates[task.template];
  if (!template) throw new Error(unavailableReason(task, templates));
  const parts = templateText(template, special);
  const random = seededRandom(options.seed ?? 1);

  // Group: leading text, then each visual segment with the text segments up to the next one.
  const leading: PlanSegment[] = [];
  const groups: { visual: PlanSegment; texts: Extract<PlanSegment, { kind: 'text' }>[] }[] = [];
  for (const segment of segments) {
    if (segment.kind === 'visual') groups.push({ visual: segment, texts: [] });
    else if (groups.length === 0) leading.push(segment);
    else groups[groups.length - 1].texts.push(segment);
  }
  if (groups.length === 0) return { segments: [...segments], labels: [] };

  const used = new Set<string>();
  const labels: string[] = [];
  const out: PlanSegment[] = [...leading];
  groups.forEach((group, index) => {
    out.push(group.visual);
    const text = group.texts.map((segment) => segment.text).join(' ');
    const id = group.texts[0]?.id;
    const read = readSupport(text, templates, special);
    if (index === groups.length - 1) {
      const question = options.question?.trim() || read.fields.question || queryQuestion(text, templates, special);
      out.push({ kind: 'text', id, text: fill(parts.query, question ? { ...read.fields, question } : read.fields) });
      return;
    }
    let label = read.label;
    if (!label && task.id === 'teach') {
      do label = inventWord(random);
      while (used.has(label));
    }
    if (label) {
      used.add(label);
      if (!labels.includes(label)) labels.push(label);
    }
    const fields: Record<string, string> = { ...read.fields };
    if (label) fields[parts.label] = label;
    out.push({ kind: 'text', id, text: fill(parts.example, fields) });
  });
  return { segments: out, labels };
}

/** The question of a query already written as a question (any template's query). */
function queryQuestion(text: string, templates: Templates, special: Special): string | undefined {
  for (const template of Object.values(templates)) {
    const fields = extractFields(templateText(template, special).query, text);
    if (fields?.question) return fields.question;
  }
  return undefined;
}

/** Placeholders ({caption}, {question}) still in the prompt's text: the visitor has to fill them. */
export function unfilledFields(texts: readonly string[]): string[] {
  return [...new Set(texts.flatMap(fieldsOf))];
}
