// Writes public/examples/gallery/: a few ready prompts for the studio's gallery, copied from
// committed held-out evaluation episodes (models/eval/episodes/: OpenMoji artwork, the style the
// model never trained on; binding, novel naming and classification use held-out concepts). Each
// was checked to be answered correctly by the bundled model (`flamingo-web eval`).
//   node scripts/make-gallery.mjs
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const episodesDir = join(root, 'models/eval/episodes');
const out = join(root, 'public/examples/gallery');

/** [episode id, task preset, title, what it shows] */
const PICKS = [
  ['binding-2way-1shot-000', 'teach', 'Teach two new words', 'Two made-up words, one picture each; which word fits the third picture?'],
  ['binding-5way-1shot-000', 'teach', 'Teach five new words', 'Five made-up words for five held-out things, then a new drawing of one of them.'],
  ['naming-novel-1shot-003', 'caption', 'Name a thing it never learnt', 'One labelled drawing of a held-out concept, then another drawing of it.'],
  ['classify-5way-1shot-002', 'classify', 'Classify among options', 'One example per option; the options are ranked by likelihood.'],
  ['scene-qa-4shot-003', 'question_answering', 'Answer a question', 'Four scenes with questions and short answers, then a new scene.'],
];

const episodes = new Map(
  readFileSync(join(episodesDir, 'all.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .map((episode) => [episode.id, episode]),
);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const examples = PICKS.map(([id, task, title, description]) => {
  const episode = episodes.get(id);
  if (!episode) throw new Error(`no episode ${id}`);
  const segments = episode.segments.map((segment) => {
    if (!('image' in segment)) return segment;
    const name = `${id}-${basename(segment.image)}`;
    copyFileSync(join(episodesDir, segment.image), join(out, name));
    return { image: name };
  });
  return { id, task, title, description, segments, answer: episode.answer, ...(episode.options ? { options: episode.options } : {}) };
});
writeFileSync(join(out, 'gallery.json'), `${JSON.stringify({ version: 1, examples }, null, 1)}\n`);
console.log(`${examples.length} examples written to ${out}`);
