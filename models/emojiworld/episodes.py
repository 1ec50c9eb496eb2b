"""
Evaluation episodes in the DESIGN.md format: JSON lines, one few-shot episode per line, images as
PNG files next to them (paths relative to the episode file). Every query is drawn in the held-out
style (openmoji), and so is every support but those of the cross-style task; tasks whose answer is a name the model must already know (naming, scenes,
clips, language) use training concepts, the rest use held-out concepts.

    cd models && /usr/bin/python3 -m emojiworld.episodes --out ../e2e/fixtures --smoke
    cd models && /usr/bin/python3 -m emojiworld.episodes --out /tmp/episodes --task binding --n 100

Tasks (answers match after lower-casing, trimming and dropping a final full stop):
    naming-{k}shot           name a training concept drawn in the held-out style (COCO-like)
    naming-rices-{k}shot     as naming, supports chosen at evaluation time by RICES from a pool of
                             every training concept drawn once in the held-out style
    scene-qa-rices-, clip-qa-rices-{k}shot   the same, supports chosen by RICES from a pool of
                             question-answer examples (training concepts, held-out style)
    naming-novel-{k}shot     name a held-out concept; it appears once among the supports
    binding-{N}way-{K}shot   nonsense words bound to held-out concepts in the prompt (+ options)
    binding-5way-crossstyle-{K}shot   the same with the supports drawn in a training style (one of
                             model v1's three, per episode) and only the query in the held-out style
    scene-qa-{k}shot         how many / which side / background colour / is there (VQA-like)
    clip-qa-{k}shot          what moved / appeared / disappeared / turned into (MSVD-QA-like)
    classify-5way-{k}shot    close-ended: rank 5 held-out names by log-likelihood
    language-fr-{k}shot      supports labelled in French, so the answer comes in French
Zero-shot means two text-only examples before the query, as in Flamingo.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from . import samples, text
from .concepts import TRAIN_STYLES, load_world, pseudo_words, stable_seed

TASKS = (
    [f'naming-{k}shot' for k in (0, 1, 2, 4, 8, 16, 32)]
    + [f'naming-rices-{k}shot' for k in (1, 2, 4, 8, 16, 32)]
    + [f'naming-novel-{k}shot' for k in (0, 1, 2, 4, 8)]
    + [f'binding-{n}way-{k}shot' for n in (2, 5) for k in (1, 3)]
    + [f'binding-5way-crossstyle-{k}shot' for k in (1, 3)]
    + [f'scene-qa-{k}shot' for k in (0, 4, 8)]
    + [f'scene-qa-rices-{k}shot' for k in (4, 8, 16, 32)]
    + [f'clip-qa-{k}shot' for k in (0, 4, 8)]
    + [f'clip-qa-rices-{k}shot' for k in (4, 8, 16, 32)]
    + [f'classify-5way-{k}shot' for k in (0, 1)]
    + [f'language-fr-{k}shot' for k in (1, 2, 4, 8)]
)


def _shots(task):
    return int(task.rsplit('-', 1)[1].removesuffix('shot'))


class EpisodeWriter:
    """Collects the segments of one episode and writes its images as PNG files."""

    def __init__(self, out_dir, task, index):
        self.out_dir, self.prefix = Path(out_dir), f'img/{task}/{index:03d}'
        self.segments, self.n = [], 0

    def image(self, img):
        path = f'{self.prefix}-{self.n:02d}.png'
        self._save(img, path)
        self.segments.append({'image': path})
        self.n += 1

    def video(self, frames):
        paths = [f'{self.prefix}-{self.n:02d}-{f}.png' for f in range(len(frames))]
        for img, path in zip(frames, paths):
            self._save(img, path)
        self.segments.append({'video': paths})
        self.n += 1

    def text(self, t):
        self.segments.append({'text': t})

    def _save(self, img, path):
        full = self.out_dir / path
        full.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(full, format='PNG')  # PIL's PNG writer is deterministic


# -----------------------------------------------------------------------------
# one episode per task family; each returns (answer, options or None)

RICES_POOLS = {  # family -> pool file, relative to the episode files
    'naming': 'pools/naming-openmoji.jsonl',
    'scene-qa': 'pools/scene-qa-openmoji.jsonl',
    'clip-qa': 'pools/clip-qa-openmoji.jsonl',
}
POOL_SIZES = {'scene-qa': 300, 'clip-qa': 200}


def rices_family(task):
    """'naming-rices-4shot' -> 'naming'; None for tasks with fixed supports."""
    return task.split('-rices-')[0] if '-rices-' in task else None


def write_rices_pool(world, out_dir, seed, family):
    """The labelled examples RICES picks supports from (as Flamingo's RICES picks from a
    benchmark's training set), all drawn in the held-out style with training concepts:
    naming: every training concept once; scene-qa / clip-qa: question-answer examples."""
    # (the naming pool's seed predates the other pools: kept so its images stay the same)
    rng = np.random.default_rng([seed, stable_seed('rices-pool') if family == 'naming' else
                                 stable_seed('rices-pool', family)])
    ep = EpisodeWriter(out_dir, f'pool-{family}', 0)
    lines = []
    items = world.split('train') if family == 'naming' else range(POOL_SIZES[family])
    for i in items:
        ep.segments = []
        if family == 'naming':
            ep.image(samples.draw_single(world, i, world.heldout_style, rng))
            ep.text(text.caption(samples.name_in(world, i)))
        elif family == 'scene-qa':
            img, q, a, _ = samples.scene_qa(world, world.split('train'), world.heldout_style, rng)
            ep.image(img)
            ep.text(text.qa(q, a))
        else:
            frames, (q, a) = _clip_example(world, rng)
            ep.video(frames)
            ep.text(text.qa(q, a))
        # pool paths are relative to the pool file, one folder down
        segs = [{'image': '../' + s['image']} if 'image' in s else
                {'video': ['../' + f for f in s['video']]} if 'video' in s else s for s in ep.segments]
        lines.append(dumps({'segments': segs}))
    path = Path(out_dir) / RICES_POOLS[family]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(l + '\n' for l in lines))
    return path


def naming(world, rng, ep, shots, novel, text_only_examples=True):
    style = world.heldout_style
    train = world.split('train')
    pool = world.split('heldout') if novel else train
    query = int(samples._pick(rng, pool))
    if shots == 0 and not text_only_examples:
        pass
    elif shots == 0:  # Flamingo's zero-shot: two text-only examples (known training names)
        for i in samples._distinct(rng, train, 2):
            ep.text(text.caption(samples.name_in(world, i)))
    else:
        if novel:  # the query concept appears once, the other supports are other held-out ones
            others = [i for i in pool if i != query]
            support = samples._distinct(rng, others, shots - 1) + [query]
            support = [support[k] for k in rng.permutation(shots)]
        else:
            support = [int(i) for i in rng.choice(pool, size=shots, replace=shots > len(pool))]
        for i in support:
            ep.image(samples.draw_single(world, i, style, rng))
            ep.text(text.caption(samples.name_in(world, i)))
    ep.image(samples.draw_single(world, query, style, rng))
    ep.text(text.CAPTION_QUERY)
    return samples.name_in(world, query), None


def binding(world, rng, ep, n_way, shots, cross_style=False):
    style = world.heldout_style
    concepts = samples._distinct(rng, world.split('heldout'), n_way)
    labels = pseudo_words(rng, n_way)
    # cross-style: supports in a training style that model v1 and v2 both trained on, the query in openmoji
    support_style = samples._pick(rng, TRAIN_STYLES) if cross_style else style
    for k in rng.permutation(np.repeat(np.arange(n_way), shots)):
        ep.image(samples.draw_single(world, concepts[k], support_style, rng))
        ep.text(text.caption(labels[k]))
    q = int(rng.integers(n_way))
    ep.image(samples.draw_single(world, concepts[q], style, rng))
    ep.text(text.CAPTION_QUERY)
    return labels[q], sorted(labels)


def classify(world, rng, ep, shots):
    style = world.heldout_style
    concepts = samples._distinct(rng, world.split('heldout'), 5)
    names = [samples.name_in(world, i) for i in concepts]
    if shots == 0:
        for i in samples._distinct(rng, world.split('train'), 2):
            ep.text(text.caption(samples.name_in(world, i)))
    for k in rng.permutation(np.repeat(np.arange(5), shots)):
        ep.image(samples.draw_single(world, concepts[k], style, rng))
        ep.text(text.caption(names[k]))
    q = int(rng.integers(5))
    ep.image(samples.draw_single(world, concepts[q], style, rng))
    ep.text(text.CAPTION_QUERY)
    return names[q], sorted(names)


def scene_qa(world, rng, ep, shots, text_only_examples=True):
    pool, style = world.split('train'), world.heldout_style
    if shots == 0 and text_only_examples:
        for _ in range(2):  # text-only examples: only questions that need no image to be sensible
            ep.text(text.qa('how many emoji?', str(int(rng.integers(1, 5)))))
    for _ in range(shots):
        img, q, a, _ = samples.scene_qa(world, pool, style, rng)
        ep.image(img)
        ep.text(text.qa(q, a))
    img, q, a, _ = samples.scene_qa(world, pool, style, rng)
    ep.image(img)
    ep.text(text.question_query(q))
    return a, None


def _clip_example(world, rng):
    """A clip of training concepts in the held-out style and one (question, answer) about it."""
    frames, facts = samples.draw_clip(world, world.split('train'), world.heldout_style, rng)
    return frames, samples._pick(rng, text.clip_qas(facts, lambda i: samples.name_in(world, i)))


def clip_qa(world, rng, ep, shots, text_only_examples=True):
    pool = world.split('train')
    if shots == 0 and text_only_examples:
        for i in samples._distinct(rng, pool, 2):
            ep.text(text.qa('what appeared?', samples.name_in(world, i)))
    for _ in range(shots):
        frames, (q, a) = _clip_example(world, rng)
        ep.video(frames)
        ep.text(text.qa(q, a))
    frames, (q, a) = _clip_example(world, rng)
    ep.video(frames)
    ep.text(text.question_query(q))
    return a, None


def language(world, rng, ep, shots, locale='fr'):
    style, pool = world.heldout_style, world.split('train')
    concepts = samples._distinct(rng, pool, shots + 1)
    for i in concepts[:-1]:
        ep.image(samples.draw_single(world, i, style, rng))
        ep.text(text.caption(samples.name_in(world, i, locale)))
    ep.image(samples.draw_single(world, concepts[-1], style, rng))
    ep.text(text.CAPTION_QUERY)
    return samples.name_in(world, concepts[-1], locale), None


def make_episode(world, task, index, out_dir, seed):
    rng = np.random.default_rng([seed, stable_seed(task, index)])
    ep = EpisodeWriter(out_dir, task, index)
    shots = _shots(task)
    family = rices_family(task)
    if family:  # the query alone; its supports are picked from the pool when evaluated
        query = {'naming': lambda: naming(world, rng, ep, 0, novel=False, text_only_examples=False),
                 'scene-qa': lambda: scene_qa(world, rng, ep, 0, text_only_examples=False),
                 'clip-qa': lambda: clip_qa(world, rng, ep, 0, text_only_examples=False)}[family]
        answer, options = query()
    elif task.startswith('naming-'):
        answer, options = naming(world, rng, ep, shots, novel=task.startswith('naming-novel'))
    elif task.startswith('binding-'):
        answer, options = binding(world, rng, ep, int(task.split('-')[1].removesuffix('way')), shots,
                                  cross_style='-crossstyle-' in task)
    elif task.startswith('classify-'):
        answer, options = classify(world, rng, ep, shots)
    elif task.startswith('scene-qa'):
        answer, options = scene_qa(world, rng, ep, shots)
    elif task.startswith('clip-qa'):
        answer, options = clip_qa(world, rng, ep, shots)
    elif task.startswith('language-'):
        answer, options = language(world, rng, ep, shots, locale=task.split('-')[1])
    else:
        raise ValueError(f'unknown task {task}')
    episode = {'id': f'{task}-{index:03d}', 'task': task, 'segments': ep.segments, 'answer': answer}
    if family:
        episode['rices'] = {'shots': shots, 'pool': RICES_POOLS[family]}
    if options is not None:
        episode['options'] = options
    return episode


def dumps(obj):
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def write_episodes(out_dir, tasks=TASKS, n=50, seed=0, world=None):
    """Writes <task>.jsonl per task (plus all.jsonl) and images under img/. Returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = world or load_world(seed)
    paths, lines = [], []
    for family in sorted({rices_family(t) for t in tasks} - {None}):
        write_rices_pool(world, out_dir, seed, family)
    for task in tasks:
        episodes = [dumps(make_episode(world, task, i, out_dir, seed)) for i in range(n)]
        path = out_dir / f'{task}.jsonl'
        path.write_text(''.join(e + '\n' for e in episodes))
        paths.append(path)
        lines += episodes
    (out_dir / 'all.jsonl').write_text(''.join(e + '\n' for e in lines))
    world.save_splits(out_dir / 'splits.json')
    return paths


# -----------------------------------------------------------------------------

def write_two_shot_fixture(out_dir, seed=0, world=None):
    """two-shot.json + 3 PNGs for the browser end-to-end test: two training concepts in a training
    style, then the first again (another placement); the answer is its name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = world or load_world(seed)
    train = set(world.split('train'))
    # visually distinct and common; fall back to the first training concepts of two groups
    preferred = [world.index[k] for k in ('dog-face', 'pizza', 'cat-face', 'red-apple',
                                          'automobile', 'soccer-ball')
                 if k in world.index and world.index[k] in train]
    if len(preferred) < 2:
        first = {}
        for i in sorted(train):
            first.setdefault(world.concepts[i].group, i)
        preferred = list(first.values())
    a, b = preferred[:2]
    style = world.train_styles[0]
    rng = np.random.default_rng([seed, stable_seed('two-shot')])
    segments = []
    for k, i in enumerate((a, b, a), start=1):
        path = f'two-shot-{k}.png'
        Image.fromarray(samples.draw_single(world, i, style, rng)).save(out_dir / path, format='PNG')
        segments.append({'image': path})
        segments.append({'text': text.caption(samples.name_in(world, i)) if k < 3
                         else text.CAPTION_QUERY})
    fixture = {'segments': segments, 'answer': samples.name_in(world, a)}
    (out_dir / 'two-shot.json').write_text(json.dumps(fixture, indent=1, sort_keys=True) + '\n')
    return out_dir / 'two-shot.json'


def main():
    ap = argparse.ArgumentParser(description='write EmojiWorld evaluation episodes')
    ap.add_argument('--out', required=True)
    ap.add_argument('--task', default='all', help="'all', a task name or a prefix (binding)")
    ap.add_argument('--n', type=int, default=50, help='episodes per task')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--smoke', action='store_true', help='3 episodes per task, for tests')
    ap.add_argument('--two-shot', action='store_true', help='also write the two-shot e2e fixture')
    args = ap.parse_args()
    tasks = [t for t in TASKS if args.task == 'all' or t == args.task or t.startswith(args.task)]
    if not tasks:
        ap.error(f'no task matches {args.task!r}; tasks: {", ".join(TASKS)}')
    n = 3 if args.smoke else args.n
    world = load_world(args.seed)
    for path in write_episodes(args.out, tasks, n, args.seed, world):
        print(path)
    if args.two_shot:
        print(write_two_shot_fixture(args.out, args.seed, world))


if __name__ == '__main__':
    main()
