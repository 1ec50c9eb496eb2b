"""
Training samples: lists of segments ({'image': HxWx3 uint8}, {'video': [frames]}, {'text': str})
in the OpenFlamingo format, and text-only episodes (plain strings with <image> and <|endofchunk|>)
for pretraining the language model.

Every function takes (world, rng, split) and uses only that split's concepts and styles: with
split='train', only training concepts (so no held-out name, in any locale, ever appears in the
text) and only the training styles.
"""

import numpy as np

from . import images, text
from .concepts import LOCALES, novel_names, pseudo_words
from .restyle import COLOUR_KINDS, random_restyle

OTHER_LOCALES = tuple(l for l in LOCALES if l != 'en')
CANVAS = 64


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _distinct(rng, pool, n):
    return [int(i) for i in rng.choice(pool, size=n, replace=False)]


def look_alikes(world, rng, pool, n, first=None, neighbours=None):
    """n distinct concepts of the pool, as many as it has from one random concept's subgroup (e.g.
    mammals, fruit), the rest at random: distractors that look alike. `first`: that concept's
    subgroup instead of a random one's (it comes first). `neighbours` (concept -> concepts, nearest
    first, e.g. train.vision.concept_neighbours): instead of the subgroup, n - 1 drawn from the first's
    2(n - 1) nearest, as RICES supports are its nearest by the frozen encoder."""
    first = int(rng.choice(pool)) if first is None else int(first)
    if neighbours is not None:
        allowed = {int(i) for i in pool}
        near = [i for i in neighbours[first] if i in allowed][:2 * (n - 1)]
        picked = [first] + [int(i) for i in rng.permutation(near)[:n - 1]]
    else:
        kin = [i for i in pool if i != first and world.concepts[i].subgroup == world.concepts[first].subgroup]
        picked = [first] + [int(i) for i in rng.permutation(kin)[:n - 1]]
    rest = [i for i in pool if i not in picked]
    return picked + [int(i) for i in rng.choice(rest, size=n - len(picked), replace=False)]


def name_in(world, i, locale='en'):
    c = world.concepts[i]
    return c.names.get(locale, c.name)


# -----------------------------------------------------------------------------
# drawing: concept indices in, pixels and facts (with concept indices) out

def _sprite(world, i, style, restyle):
    sprite = world.sprite(i, style)
    return restyle(sprite) if restyle else sprite


def draw_single(world, i, style, rng, size=CANVAS, restyle=None):
    """`restyle`: an optional sprite -> sprite perturbation (emojiworld/restyle.py)."""
    return images.single(_sprite(world, i, style, restyle), rng, size)


def draw_scene(world, pool, style, rng, size=CANVAS, n=None, restyle=None):
    n = n or int(rng.integers(1, 5))
    if n > 1 and rng.random() < 0.3:  # repeats, so that 'how many X?' is not always 1
        ids = [int(i) for i in rng.choice(_distinct(rng, pool, 2), size=n)]
    else:
        ids = _distinct(rng, pool, n)
    return images.scene([_sprite(world, i, style, restyle) for i in ids], rng, size, labels=ids)


def draw_clip(world, pool, style, rng, size=CANVAS, event=None):
    a, b = _distinct(rng, pool, 2)
    return images.clip(rng, [world.sprite(a, style), world.sprite(b, style)], labels=[a, b],
                       size=size, event=event)


def absent_concept(rng, pool, facts):
    present = {o['concept'] for o in facts['objects']}
    while True:
        i = int(_pick(rng, pool))
        if i not in present:
            return i


QUESTION_FAMILIES = ('how many', 'what colour', 'is there', 'which is')


def scene_qa(world, pool, style, rng, size=CANVAS, family=None):
    """(image, question, answer, facts) for one scene; the question family drawn first (uniform,
    or the one asked for when this scene has it), so rare questions are as frequent as others."""
    img, facts = draw_scene(world, pool, style, rng, size)
    name_of = lambda i: name_in(world, i)
    qas = text.scene_qas(facts, name_of, absent=name_of(absent_concept(rng, pool, facts)))
    families = [f for f in QUESTION_FAMILIES if any(q.startswith(f) for q, _ in qas)]
    if family not in families:
        family = _pick(rng, families)
    q, a = _pick(rng, [qa for qa in qas if qa[0].startswith(family)])
    return img, q, a, facts


# -----------------------------------------------------------------------------
# image-text and clip-text pairs

def caption_pair(world, rng, split='train', locale=None):
    """One image and its name: Output: {name}. (English, or now and then another locale)."""
    pool, styles = world.split(split), world.styles_for(split)
    i = int(_pick(rng, pool))
    if locale is None:
        locale = 'en' if rng.random() < 0.85 else _pick(rng, OTHER_LOCALES)
    img = draw_single(world, i, _pick(rng, styles), rng)
    return [{'image': img}, {'text': text.caption(name_in(world, i, locale))}]


def scene_pair(world, rng, split='train'):
    """One scene and a question about it."""
    img, q, a, _ = scene_qa(world, world.split(split), _pick(rng, world.styles_for(split)), rng)
    return [{'image': img}, {'text': text.qa(q, a)}]


CLIP_QUESTION_FAMILIES = {'what moved': 'move', 'which way': 'move', 'what appeared': 'appear',
                          'what disappeared': 'disappear', 'what did': 'turn'}  # family -> event


def clip_pair(world, rng, split='train', questions='event'):
    """One clip and its caption (what happens) or a question about it. questions: 'event' (the
    event drawn first, then one of its questions), 'balanced' (the question family drawn first,
    uniformly, as scene_qa does) or one family of CLIP_QUESTION_FAMILIES (only that one)."""
    style = _pick(rng, world.styles_for(split))
    name_of = lambda i: name_in(world, i)
    if questions == 'event':
        frames, facts = draw_clip(world, world.split(split), style, rng)
        if rng.random() < 0.4:
            return [{'video': frames}, {'text': text.caption(text.clip_caption(facts, name_of))}]
        return [{'video': frames}, {'text': text.qa(*_pick(rng, text.clip_qas(facts, name_of)))}]
    if questions == 'balanced':
        if rng.random() < 0.4:
            frames, facts = draw_clip(world, world.split(split), style, rng)
            return [{'video': frames}, {'text': text.caption(text.clip_caption(facts, name_of))}]
        questions = _pick(rng, list(CLIP_QUESTION_FAMILIES))
    if questions not in CLIP_QUESTION_FAMILIES:
        raise ValueError(f'clip questions {questions!r}: use event, balanced or one of {list(CLIP_QUESTION_FAMILIES)}')
    frames, facts = draw_clip(world, world.split(split), style, rng, event=CLIP_QUESTION_FAMILIES[questions])
    q, a = next(qa for qa in text.clip_qas(facts, name_of) if qa[0].startswith(questions))
    return [{'video': frames}, {'text': text.qa(q, a)}]


# -----------------------------------------------------------------------------
# interleaved pages (M3W-like): structure inside a page rewards in-context learning

PAGE_KINDS = ('binding', 'names', 'locale', 'scene', 'mixed')


def _repeat_plan(rng, n_images, max_way=4):
    """Which concept slot each image shows: the first n_way images introduce distinct slots,
    later ones repeat a slot already seen (to be labelled as before)."""
    if n_images == 1:
        return [0], 1
    n_way = int(rng.integers(min(2, n_images - 1), min(max_way, n_images - 1) + 1))
    return list(range(n_way)) + [int(rng.integers(n_way)) for _ in range(n_images - n_way)], n_way


def interleaved_page(world, rng, split='train', max_images=5, kind=None, novel_name_share=0.0, coined_word_share=0.0,
                     max_way=4, other_name_share=0.0, restyle_share=0.0, similar_share=0.0,
                     neighbours=None, one_style_share=0.0):
    """1..max_images visual segments, each followed by its text. Kinds:
    binding: nonsense words bound to 2..max_way concepts on the page (Output: toma.), later images of the same
             concepts (other style and placement) labelled with the same word; with probability
             novel_name_share the words are made-up names of real words instead (concepts.novel_names),
             each word of them a coined word with probability coined_word_share; with probability
             other_name_share (drawn first) the names of other concepts of the split, so that a label is
             copied from the prompt even when it is a name the model knows for another picture;
             binding / names / locale pages: with probability restyle_share, every image on the page recoloured
             the same way (restyle.COLOUR_KINDS), like a new artist's palette: labels must be bound (or
             names recognised) on features of a style the vision encoder never saw;
             binding / names / locale pages: with probability similar_share, concepts of one subgroup
             (look_alikes), so that a label is told from look-alikes (as RICES supports are); with
             `neighbours`, concepts near one another by the frozen encoder instead (look_alikes);
             binding / names / locale pages: with probability one_style_share, every image of the page in one
             training style (otherwise each image's style is drawn apart), as one artist's pictures are, so that
             a repeat is the same drawing as its first picture;
    names / locale: names in English / in one other locale for the whole page, with repeats;
    scene: scene questions, one template family per page; mixed: captions, questions and clips."""
    pool, styles = world.split(split), world.styles_for(split)
    kind = kind or _pick(rng, PAGE_KINDS)
    n_images = int(rng.integers(2 if kind in ('binding', 'locale') else 1, max_images + 1))
    segments = []
    if kind in ('binding', 'names', 'locale'):
        plan, n_way = _repeat_plan(rng, n_images, max_way)
        similar = similar_share > 0 and rng.random() < similar_share
        concepts = (look_alikes(world, rng, pool, n_way, neighbours=neighbours) if similar
                    else _distinct(rng, pool, n_way))
        if kind == 'binding':
            # the extra draws only when asked for, so that shares of 0 keep the original pages
            other = other_name_share > 0 and rng.random() < other_name_share
            novel = not other and novel_name_share > 0 and rng.random() < novel_name_share
            if other:
                others = [i for i in _distinct(rng, pool, 2 * n_way) if i not in concepts][:n_way]
                labels = [name_in(world, i) for i in others]
            else:
                labels = novel_names(world, rng, n_way, coined_word_share) if novel else pseudo_words(rng, n_way)
        else:
            locale = 'en' if kind == 'names' else _pick(rng, OTHER_LOCALES)
            labels = [name_in(world, i, locale) for i in concepts]
        restyle = random_restyle(rng, COLOUR_KINDS) if restyle_share > 0 and rng.random() < restyle_share else None
        one_style = _pick(rng, styles) if one_style_share > 0 and rng.random() < one_style_share else None
        for slot in plan:
            img = draw_single(world, concepts[slot], one_style or _pick(rng, styles), rng, restyle=restyle)
            segments += [{'image': img}, {'text': text.caption(labels[slot])}]
    elif kind == 'scene':
        style, family = _pick(rng, styles), _pick(rng, QUESTION_FAMILIES)
        for _ in range(n_images):
            img, q, a, _ = scene_qa(world, pool, style, rng, family=family)
            segments += [{'image': img}, {'text': text.qa(q, a)}]
    else:
        for _ in range(n_images):
            make = _pick(rng, (caption_pair, scene_pair, clip_pair))
            segments += make(world, rng, split)
    return segments


# -----------------------------------------------------------------------------
# text-only episodes for the language model: images replaced by textual stand-ins

def text_episode(world, rng, split='train', kind=None, max_supports=24):
    """One plain string. 'binding': N-way (2..10) K-shot (1..5) supports '<image>{name}. Output:
    {label}.<|endofchunk|>' then a query of one of them, labels pseudo-words, real names or names
    in another locale; 'caption' / 'scene' / 'clip': plain lines with a stand-in. max_supports above 24
    makes long binding episodes (2..32 ways, up to max_supports supports: 32-shot prompts for the
    model v2 language model, trained on 640-token sequences)."""
    pool = world.split(split)
    kind = kind or _pick(rng, ('binding', 'binding', 'binding', 'caption', 'scene', 'clip'))
    name_of = lambda i: name_in(world, i)
    if kind == 'binding':
        n_way = int(rng.integers(2, 11 if max_supports <= 24 else 33))
        shots = int(rng.integers(1, 6))
        shots = max(1, min(shots, max_supports // n_way))  # 24: within a few hundred tokens
        concepts = _distinct(rng, pool, n_way)
        label_kind = _pick(rng, ('pseudo', 'pseudo', 'name', 'locale'))
        if label_kind == 'pseudo':
            labels = pseudo_words(rng, n_way)
        else:
            locale = 'en' if label_kind == 'name' else _pick(rng, OTHER_LOCALES)
            labels = [name_in(world, i, locale) for i in concepts]
        order = [int(k) for k in rng.permutation(np.repeat(np.arange(n_way), shots))]
        order.append(int(rng.integers(n_way)))  # the query
        return ''.join(f'{text.IMAGE}{name_of(concepts[k])}. {text.caption(labels[k])}{text.EOC}'
                       for k in order)
    if kind == 'caption':
        i = int(_pick(rng, pool))
        locale = 'en' if rng.random() < 0.7 else _pick(rng, OTHER_LOCALES)
        line = f'{text.IMAGE}{text.caption(name_in(world, i, locale))}{text.EOC}'
        c = world.concepts[i]
        if c.tags and rng.random() < 0.5:  # keywords give the LM some meaning for each name
            line = f'{text.IMAGE}{", ".join(c.tags)}. {text.caption(c.name)}{text.EOC}'
        return line
    if kind == 'scene':
        _, facts = draw_scene(world, pool, world.train_styles[0] if split == 'train'
                              else world.heldout_style, rng, size=CANVAS)
        qas = text.scene_qas(facts, name_of, absent=name_of(absent_concept(rng, pool, facts)))
        q, a = _pick(rng, qas)
        return f'{text.IMAGE}{text.scene_stand_in(facts, name_of)} {text.qa(q, a)}{text.EOC}'
    a, b = _distinct(rng, pool, 2)
    facts = {'event': _pick(rng, images.EVENTS), 'concept': a, 'other': b,
             'direction': _pick(rng, images.DIRECTIONS)}
    q, ans = _pick(rng, text.clip_qas(facts, name_of))
    return f'{text.IMAGE}{text.clip_stand_in(facts, name_of)} {text.qa(q, ans)}{text.EOC}'


# -----------------------------------------------------------------------------

def sample_text(segments):
    return text.to_text(segments)


def training_corpus_sample(world, n, seed, split='train'):
    """n texts mixing every kind of training text (text-only episodes, pages, pairs), for the
    tokenizer trainer and the held-out leak test."""
    rng = np.random.default_rng(seed)
    makers = (
        (0.45, lambda: text_episode(world, rng, split)),
        (0.25, lambda: sample_text(interleaved_page(world, rng, split))),
        (0.10, lambda: sample_text(caption_pair(world, rng, split))),
        (0.10, lambda: sample_text(scene_pair(world, rng, split))),
        (0.10, lambda: sample_text(clip_pair(world, rng, split))),
    )
    weights = np.array([w for w, _ in makers])
    kinds = rng.choice(len(makers), size=n, p=weights / weights.sum())
    return [makers[k][1]() for k in kinds]
