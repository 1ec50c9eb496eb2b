import { describe, expect, it } from 'vitest';
import { bundledManifestForTests } from './testManifest';
import { applyTask, extractFields, inventWord, taskById, templateText, unavailableReason, type PlanSegment } from './presets';
import { seededRandom } from '../engine/sampling';

const { prompt_templates: templates, special_tokens: special } = bundledManifestForTests();

const visual = (id: string): PlanSegment => ({ kind: 'visual', id });
const text = (value: string, id?: string): PlanSegment => ({ kind: 'text', text: value, id });
const texts = (segments: PlanSegment[]) => segments.map((segment) => (segment.kind === 'text' ? segment.text : `[${segment.id}]`));

describe('task presets write the manifest’s templates', () => {
  it('reads the text after the image out of each template', () => {
    expect(templateText(templates.naming, special)).toEqual({ example: 'Output: {caption}.', query: 'Output:', label: 'caption' });
    expect(templateText(templates.question_answering, special)).toEqual({
      example: 'Question: {question} Short answer: {answer}',
      query: 'Question: {question} Short answer:',
      label: 'answer',
    });
  });

  it('extracts fields, and refuses text written otherwise', () => {
    expect(extractFields('Output: {caption}.', 'Output: dog face.')).toEqual({ caption: 'dog face' });
    expect(extractFields('Question: {question} Short answer: {answer}', 'Question: how many? Short answer: 2')).toEqual({
      question: 'how many?',
      answer: '2',
    });
    expect(extractFields('Output: {caption}.', 'dog face')).toBeUndefined();
  });

  it('caption: labels become naming text, the last image gets the query; ids and leading text stay', () => {
    const result = applyTask(
      [text('Some context.', 't0'), visual('a'), text('dog face', 't1'), visual('b'), text('Question: what? Short answer: pizza', 't2'), visual('q')],
      taskById('caption'),
      templates,
      special,
    );
    expect(texts(result.segments)).toEqual(['Some context.', '[a]', 'Output: dog face.', '[b]', 'Output: pizza.', '[q]', 'Output:']);
    expect(result.segments.map((segment) => (segment.kind === 'text' ? segment.id : segment.id))).toEqual([
      't0', 'a', 't1', 'b', 't2', 'q', undefined,
    ]);
    expect(result.labels).toEqual(['dog face', 'pizza']);
  });

  it('question answering keeps each support’s question and writes the typed one into the query', () => {
    const result = applyTask(
      [visual('a'), text('Question: how many emoji? Short answer: 2'), visual('b'), text('Output: blue.'), visual('q'), text('Output:')],
      taskById('question_answering'),
      templates,
      special,
      { question: 'what colour is the background?' },
    );
    expect(texts(result.segments)).toEqual([
      '[a]',
      'Question: how many emoji? Short answer: 2',
      '[b]',
      'Question: {question} Short answer: blue',
      '[q]',
      'Question: what colour is the background? Short answer:',
    ]);
  });

  it('teach new words invents distinct words for unlabelled examples', () => {
    const result = applyTask([visual('a'), visual('b'), text(''), visual('c'), text('Output: zifil.'), visual('q')], taskById('teach'), templates, special);
    const labels = result.labels;
    expect(labels).toHaveLength(3);
    expect(new Set(labels).size).toBe(3);
    expect(labels[2]).toBe('zifil');
    for (const word of labels) expect(word).toMatch(/^[a-z]{4,6}$/);
    expect(texts(result.segments).at(-1)).toBe('Output:');
    expect(inventWord(seededRandom(3))).toBe(inventWord(seededRandom(3)));
  });

  it('a task whose template the model lacks is unavailable, and no visual segment means no change', () => {
    expect(unavailableReason(taskById('question_answering'), { naming: templates.naming })).toMatch(/no “question_answering”/);
    expect(() => applyTask([visual('a')], taskById('question_answering'), { naming: templates.naming }, special)).toThrow();
    const only = [text('hello')];
    expect(applyTask(only, taskById('caption'), templates, special).segments).toEqual(only);
  });
});
