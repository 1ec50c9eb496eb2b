"""
EmojiWorld concepts: which emoji exist in every art style, their names in several languages,
and the fixed train / held-out split.

Text comes from emojibase-data (labels, tags, groups); artwork from iconify sets whose icon names
are (mostly) the kebab-case of the English label. The concepts are those drawn in all four CORE_STYLES;
the styles added for model v2 (V2_STYLES) draw what they have, and World.icon stands in a core training
style for the rest, so that the concept set and the split stay those of model v1.

A held-out concept's name, in any locale, must never appear in training text, so held-out concepts
are drawn only among those whose names are not a phrase inside some other concept's name, and
training tags that mention one are dropped.
"""

import json
import os
import pickle
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .paths import NODE_MODULES

LOCALES = ('en', 'fr', 'de', 'es', 'it', 'pt', 'nl')  # Latin script, so one tokenizer covers all
CORE_STYLES = ('twemoji', 'noto', 'fluent-emoji-flat', 'openmoji')  # every concept is drawn in each of these
TRAIN_STYLES = ('twemoji', 'noto', 'fluent-emoji-flat')  # model v1's training styles
# the training styles added for model v2 (../shared/design/EMOJIWORLD.md); each covers part of the concepts
V2_STYLES = ('fluent-emoji', 'fluent-emoji-high-contrast', 'fxemoji', 'streamline-emojis')
WORLD_STYLES = {'v1': TRAIN_STYLES, 'v2': TRAIN_STYLES + V2_STYLES}  # load_world(styles=...)
HELDOUT_STYLE = 'openmoji'
STYLES = CORE_STYLES + V2_STYLES
# emojibase group ids -> short names; smileys, people, components, symbols and flags are dropped
GROUPS = {3: 'animals-nature', 4: 'food-drink', 5: 'travel-places', 6: 'activities', 7: 'objects'}
HELDOUT_FRACTION = 0.15

# Every word the text templates use (see text.py). A held-out name may not be one of these phrases.
TEMPLATE_WORDS = (
    'output question short answer how many emoji which is on the left right top bottom what '
    'colour color of background is there a yes no moved move moves appeared appears disappeared '
    'disappears did turn turns turned into way up down it white yellow blue green pink grey orange '
    'purple image endofchunk the at zero one two three four'
)


@dataclass
class Concept:
    key: str                 # kebab-case English label: also the icon name in every style
    name: str                # English label, lower-case
    names: dict              # locale -> lower-case label
    tags: list               # English keywords (for training concepts: none naming a held-out one)
    group: str
    subgroup: str
    split: str = 'train'     # 'train' or 'heldout'
    hexcode: str = ''


@dataclass
class World:
    seed: int
    concepts: list
    icons: dict = field(repr=False, default_factory=dict)  # style -> {key: svg document}
    train_styles: tuple = TRAIN_STYLES
    heldout_style: str = HELDOUT_STYLE
    sprite_size: int = 48
    _sprites: dict = field(repr=False, default_factory=dict)
    _derived: dict = field(repr=False, compare=False, default_factory=dict)  # caches: concepts._name_words, _letter_model

    def __post_init__(self):
        self.index = {c.key: i for i, c in enumerate(self.concepts)}

    @property
    def styles(self):
        return self.train_styles + (self.heldout_style,)

    def split(self, split):
        """Indices of the concepts in a split ('train', 'heldout' or 'all')."""
        return [i for i, c in enumerate(self.concepts) if split == 'all' or c.split == split]

    def styles_for(self, split):
        # training text and images never use the held-out style
        return self.train_styles if split == 'train' else (self.heldout_style,)

    def icon(self, style, i):
        """The SVG document of concept i in a style; for a V2_STYLES set without it, the same concept in
        a core training style (a fixed one per concept), so that every style can draw every concept."""
        key = self.concepts[i].key
        doc = self.icons[style].get(key)
        return doc if doc is not None else self.icons[self.stand_in_style(i)][key]

    def own_drawings(self, style, pool):
        """The concepts of `pool` that `style` draws itself (no stand-in): what a probe in that style may use."""
        return [i for i in pool if self.concepts[int(i)].key in self.icons[style]]

    def stand_in_style(self, i):
        """The core training style that draws concept i where a style has no drawing of it."""
        return TRAIN_STYLES[i % len(TRAIN_STYLES)]

    def sprite(self, i, style):
        """RGBA uint8 sprite of concept i in a style (rendered, or read from the disk cache)."""
        if style not in self._sprites:
            from .render import sprites  # late import: concepts stay usable without cairosvg
            self._sprites[style] = sprites(self, style, self.sprite_size)
        return self._sprites[style][i]

    def subset(self, keys):
        """A smaller world with the given concepts (splits kept): for fast tests."""
        keep = set(keys)
        concepts = [c for c in self.concepts if c.key in keep]
        icons = {s: {k: v for k, v in d.items() if k in keep} for s, d in self.icons.items()}
        return World(self.seed, concepts, icons, self.train_styles, self.heldout_style,
                     self.sprite_size)

    def save_splits(self, path):
        splits = {
            'seed': self.seed,
            'train': [c.key for c in self.concepts if c.split == 'train'],
            'heldout': [c.key for c in self.concepts if c.split == 'heldout'],
            'train_styles': list(self.train_styles),
            'heldout_style': self.heldout_style,
        }
        Path(path).write_text(json.dumps(splits, indent=1, sort_keys=True) + '\n')


# -----------------------------------------------------------------------------
# text helpers

def kebab(label):
    s = unicodedata.normalize('NFKD', label).encode('ascii', 'ignore').decode().lower()
    return re.sub(r'[^a-z0-9]+', '-', s).strip('-')


def clean_name(label):
    # typographic quotes would be rare tokens; names compare lower-cased anyway
    s = label.replace('\u2019', "'").replace('\u2018', "'").replace('\u201c', '"').replace('\u201d', '"')
    return ' '.join(s.lower().split())


def words(text):
    return tuple(re.findall(r'\w+', text.lower()))


def ngrams(ws):
    return {ws[i:j] for i in range(len(ws)) for j in range(i + 1, len(ws) + 1)}


def contains_phrase(text, phrase):
    """Whole-word, case-insensitive: does `phrase` occur in `text`?"""
    pw = words(phrase)
    tw = words(text)
    n = len(pw)
    return n > 0 and any(tw[i:i + n] == pw for i in range(len(tw) - n + 1))


@lru_cache(maxsize=None)
def _emojibase(locale):
    return json.loads((NODE_MODULES / 'emojibase-data' / locale / 'data.json').read_text())


@lru_cache(maxsize=None)
def _iconify(style):
    return json.loads((NODE_MODULES / '@iconify-json' / style / 'icons.json').read_text())


def icon_names(style, key, name):
    """The icon names a concept (kebab-case key, English label) may have in a style, most likely first.
    fxemoji names icons by the squashed label ('alarmclock'); streamline-emojis numbers some variants
    ('bird-1', 'bird-2': the first is taken)."""
    if style == 'fxemoji':
        return (re.sub(r'[^a-z0-9]', '', name),)
    if style == 'streamline-emojis':
        return key, key + '-1'
    return (key,)


def svg_document(style, key):
    """The standalone SVG for an icon (resolving aliases, which may flip), or None if missing."""
    data = _iconify(style)
    hflip = vflip = False
    name = key
    for _ in range(5):  # aliases may chain
        if name in data['icons']:
            break
        alias = data.get('aliases', {}).get(name)
        if alias is None:
            return None
        hflip ^= bool(alias.get('hFlip'))
        vflip ^= bool(alias.get('vFlip'))
        name = alias['parent']
    else:
        return None
    icon = data['icons'][name]
    w = icon.get('width', data.get('width', 16))
    h = icon.get('height', data.get('height', 16))
    left, top = icon.get('left', 0), icon.get('top', 0)
    body = icon['body']
    if hflip or vflip:
        sx, sy = (-1 if hflip else 1), (-1 if vflip else 1)
        tx = 2 * left + w if hflip else 0
        ty = 2 * top + h if vflip else 0
        body = f'<g transform="translate({tx} {ty}) scale({sx} {sy})">{body}</g>'
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'viewBox="{left} {top} {w} {h}" width="{w}" height="{h}">{body}</svg>')


@lru_cache(maxsize=None)
def vocabulary_words():
    if _snapshot():
        return _snapshot()['vocabulary_words']
    return _vocabulary_words()


def _vocabulary_words():
    """Every word of every emoji label and tag, in every locale we use (and all emoji, not only
    concepts): pseudo-words must never collide with a real word the model could know."""
    vocab = set(words(TEMPLATE_WORDS))
    for loc in LOCALES:
        for e in _emojibase(loc):
            vocab.update(words(e.get('label', '')))
            for t in e.get('tags', []) or []:
                vocab.update(words(t))
    return frozenset(vocab)


# -----------------------------------------------------------------------------
# the world

# A machine without node_modules (the GPU machine) loads the world from a snapshot file instead:
# EMOJIWORLD_SNAPSHOT=path, written by `python -m emojiworld.concepts --snapshot path`.
@lru_cache(maxsize=None)
def _snapshot():
    path = os.environ.get('EMOJIWORLD_SNAPSHOT')
    if not path:
        return None
    with open(path, 'rb') as f:
        return pickle.load(f)


def write_snapshot(path, seed=0):
    concepts, icons = _load_world_cached(seed)
    with open(path, 'wb') as f:
        pickle.dump({'seed': seed, 'concepts': [dict(c.__dict__) for c in concepts], 'icons': icons,
                     'vocabulary_words': _vocabulary_words()}, f)


@lru_cache(maxsize=4)
def _load_world_cached(seed):
    snap = _snapshot()
    if snap is not None:
        if snap['seed'] != seed:
            raise ValueError(f'the EmojiWorld snapshot was made with seed {snap["seed"]}, not {seed}')
        return [Concept(**c) for c in snap['concepts']], snap['icons']
    by_locale = {loc: {e['hexcode']: e for e in _emojibase(loc)} for loc in LOCALES}
    groups = json.loads((NODE_MODULES / 'emojibase-data' / 'meta' / 'groups.json').read_text())
    subgroups = {int(k): v for k, v in groups['subgroups'].items()}

    concepts, icons = [], {s: {} for s in STYLES}
    for e in _emojibase('en'):  # emojibase order groups similar emoji; skin tones live in 'skins'
        if e.get('group') not in GROUPS:
            continue
        key = kebab(e['label'])
        docs = {s: svg_document(s, key) for s in CORE_STYLES}
        if any(d is None for d in docs.values()):
            continue
        for s in V2_STYLES:  # optional: a concept missing here is drawn by World.icon in a core style
            docs[s] = next(filter(None, (svg_document(s, n) for n in icon_names(s, key, clean_name(e['label'])))),
                           None)
        names = {}
        for loc in LOCALES:
            label = by_locale[loc].get(e['hexcode'], {}).get('label')
            if label:
                names[loc] = clean_name(label)
        concepts.append(Concept(
            key=key, name=clean_name(e['label']), names=names,
            tags=[clean_name(t) for t in e.get('tags', []) or []],
            group=GROUPS[e['group']], subgroup=subgroups[e['subgroup']], hexcode=e['hexcode']))
        for s in STYLES:
            if docs[s] is not None:
                icons[s][key] = docs[s]

    # Eligible for held-out: no name (any locale) is a phrase of another concept's name or of the
    # templates, so withholding it from training text never forces us to drop other concepts.
    owners = {}
    for i, c in enumerate(concepts):
        for n in c.names.values():
            for g in ngrams(words(n)):
                owners.setdefault(g, set()).add(i)
    template = ngrams(words(TEMPLATE_WORDS))
    eligible = [i for i, c in enumerate(concepts)
                if all(words(n) not in template and owners.get(words(n), set()) <= {i}
                       for n in c.names.values())]

    # stratified by group: ~15% of each group, drawn among its eligible concepts
    rng = np.random.default_rng(seed)
    for g in GROUPS.values():
        members = [i for i, c in enumerate(concepts) if c.group == g]
        pool = [i for i in eligible if concepts[i].group == g]
        n = min(len(pool), int(round(HELDOUT_FRACTION * len(members))))
        for i in rng.permutation(pool)[:n]:
            concepts[int(i)].split = 'heldout'

    heldout_names = {words(n) for c in concepts if c.split == 'heldout' for n in c.names.values()}
    for c in concepts:
        if c.split == 'train':
            c.tags = [t for t in c.tags if not ngrams(words(t)) & heldout_names]
    return concepts, icons


def load_world(seed: int = 0, styles: str = 'v1') -> World:
    """The EmojiWorld concepts and split of `seed`; `styles` ('v1' or 'v2', WORLD_STYLES) names the training
    styles that training images are drawn in."""
    if styles not in WORLD_STYLES:
        raise ValueError(f'styles must be one of {", ".join(WORLD_STYLES)}, not {styles!r}')
    concepts, icons = _load_world_cached(seed)
    # fresh Concept objects so that callers may not corrupt the cache
    concepts = [Concept(**{**c.__dict__, 'names': dict(c.names), 'tags': list(c.tags)})
                for c in concepts]
    return World(seed, concepts, {s: dict(d) for s, d in icons.items()}, WORLD_STYLES[styles])


# -----------------------------------------------------------------------------
# pseudo-words: pronounceable nonsense for novel-word binding

CONSONANTS = ('b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z')
CLUSTERS = ('br', 'dr', 'gr', 'kl', 'pl', 'tr', 'st', 'sk')
VOWELS = ('a', 'e', 'i', 'o', 'u')
CODAS = ('n', 'l', 'r', 's')


def pseudo_word(rng: np.random.Generator) -> str:
    """'toma', 'kelo', 'brisu': 2-3 open syllables, never a word of any emoji name or tag."""
    vocab = vocabulary_words()
    while True:
        n = 2 if rng.random() < 0.7 else 3
        w = ''
        for k in range(n):
            # mostly consonant + vowel: short, easy to say, and made of common subword pieces
            onset = CLUSTERS[rng.integers(len(CLUSTERS))] if rng.random() < 0.15 else \
                CONSONANTS[rng.integers(len(CONSONANTS))]
            w += onset + VOWELS[rng.integers(len(VOWELS))]
        if rng.random() < 0.15:
            w += CODAS[rng.integers(len(CODAS))]
        if w not in vocab:
            return w


def pseudo_words(rng: np.random.Generator, n: int) -> list:
    """n distinct pseudo-words."""
    out = []
    while len(out) < n:
        w = pseudo_word(rng)
        if w not in out:
            out.append(w)
    return out


def novel_names(world, rng: np.random.Generator, n: int, coined_share: float = 0.0) -> list:
    """n distinct made-up names of 1-3 words ('moon cactus', 'blue house tool'): words of training
    concepts' English names or, each with probability coined_share, a coined word (coined_word).
    Never a concept's own name, never containing a held-out name: labels that must be copied from
    the prompt, like the pseudo-words, but made of the words real names are made of (stage 3
    binding pages; a bridge trained on pseudo-words alone copies names poorly: train.flamingo's
    'novel-names' probe)."""
    vocab, taken, heldout = _name_words(world)
    out = []
    while len(out) < n:
        ws = tuple(str(w) for w in rng.choice(vocab, size=int(rng.integers(1, 4))))
        if coined_share > 0:  # the extra draws only when asked for, so that share 0 keeps the old names
            ws = tuple(coined_word(world, rng) if rng.random() < coined_share else w for w in ws)
        if ws not in taken and not ngrams(ws) & heldout and ' '.join(ws) not in out:
            out.append(' '.join(ws))
    return out


def coined_word(world, rng: np.random.Generator) -> str:
    """An English-looking word that is no word of any emoji name or tag in any locale ('shamble',
    'plinket'): letters drawn from a letter-trigram model of the training names' English words.
    The tokenizer, trained on training text, cuts such words into short irregular pieces, as it
    cuts held-out names ('chipmunk' -> chi p m un k), while the pseudo-words' open syllables and the
    training words come in familiar pieces; copying those pieces is where held-out names fail
    (probes.bridge --labels)."""
    model, real = _letter_model(world), vocabulary_words()
    while True:
        w, context = '', '^^'
        while len(w) <= 10:
            letters, p = model[context]
            c = letters[int(rng.choice(len(letters), p=p))]
            if c == '$':
                break
            w, context = w + c, context[1] + c
        if 4 <= len(w) <= 10 and w not in real:
            return w


def _letter_model(world):
    """Letter trigrams of the training names' English words: two letters ('^' pads the start) ->
    (next letters, '$' for the end; their probabilities), cached on the world."""
    if 'letter_model' not in world._derived:
        counts = {}
        for w in _name_words(world)[0]:
            padded = '^^' + w + '$'
            for i in range(len(w) + 1):
                nxt = counts.setdefault(padded[i:i + 2], {})
                nxt[padded[i + 2]] = nxt.get(padded[i + 2], 0) + 1
        world._derived['letter_model'] = {
            ctx: (sorted(nxt), np.array([nxt[c] for c in sorted(nxt)], float) / sum(nxt.values()))
            for ctx, nxt in counts.items()}
    return world._derived['letter_model']


def _name_words(world):
    """(sorted words of training names, every concept's English name as words, held-out names in
    every locale as words), cached on the world."""
    if 'name_words' not in world._derived:
        train = [c for c in world.concepts if c.split == 'train']
        vocab = sorted({w for c in train for w in words(c.name)})
        taken = {words(c.name) for c in world.concepts}
        heldout = {words(n) for c in world.concepts if c.split == 'heldout' for n in c.names.values()}
        world._derived['name_words'] = (vocab, taken, heldout)
    return world._derived['name_words']


def stable_seed(*parts) -> int:
    """A seed derived from strings and ints, identical across runs (unlike hash())."""
    return zlib.crc32('/'.join(str(p) for p in parts).encode())


if __name__ == '__main__':
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == '--snapshot':
        write_snapshot(sys.argv[2])
        raise SystemExit(0)
    w = load_world(0)
    tr, ho = w.split('train'), w.split('heldout')
    print(f'{len(w.concepts)} concepts: {len(tr)} train, {len(ho)} held out')
    for g in GROUPS.values():
        n = sum(c.group == g for c in w.concepts)
        h = sum(c.group == g and c.split == 'heldout' for c in w.concepts)
        print(f'  {g:16s} {n:4d} total {h:4d} held out')
    rng = np.random.default_rng(0)
    print('pseudo-words:', ' '.join(pseudo_word(rng) for _ in range(12)))
    print('held out e.g.:', ', '.join(w.concepts[i].name for i in ho[:12]))
