"""EmojiWorld data generator: splits, determinism, no held-out leak, consistent facts, episode files."""
import collections
import json
import re

import numpy as np
import pytest

from emojiworld import images, restyle, samples, text
from emojiworld.concepts import (GROUPS, LOCALES, coined_word, load_world, novel_names, pseudo_word, vocabulary_words,
                                 words)
from emojiworld.episodes import write_episodes, write_two_shot_fixture


@pytest.fixture(scope='module')
def world():
    return load_world(0)


@pytest.fixture(scope='module')
def small_world(world):
    """~10 concepts per group and split, rendered at 24 px: quick to render even on a cold cache."""
    keys = []
    for g in GROUPS.values():
        for split in ('train', 'heldout'):
            keys += [c.key for c in world.concepts if c.group == g and c.split == split][:10]
    w = world.subset(keys)
    w.sprite_size = 24
    return w


def segment_bytes(segments):
    out = []
    for s in segments:
        if 'image' in s:
            out.append(s['image'].tobytes())
        elif 'video' in s:
            out += [f.tobytes() for f in s['video']]
        else:
            out.append(s['text'].encode())
    return b'|'.join(out)


def draw_everything(w, seed):
    rng = np.random.default_rng(seed)
    parts = []
    for kind in samples.PAGE_KINDS:
        parts.append(segment_bytes(samples.interleaved_page(w, rng, kind=kind)))
    parts.append(segment_bytes(samples.caption_pair(w, rng)))
    parts.append(segment_bytes(samples.scene_pair(w, rng)))
    parts.append(segment_bytes(samples.clip_pair(w, rng)))
    parts += [samples.text_episode(w, rng).encode() for _ in range(20)]
    return b'#'.join(parts)


# -----------------------------------------------------------------------------
# concepts and splits

def test_splits_disjoint_and_about_15_percent(world, tmp_path):
    train, held = set(world.split('train')), set(world.split('heldout'))
    assert not train & held and len(train | held) == len(world.concepts) > 500
    assert 0.12 <= len(held) / len(world.concepts) <= 0.18
    for g in GROUPS.values():  # stratified: every group gives some
        members = [c for c in world.concepts if c.group == g]
        frac = sum(c.split == 'heldout' for c in members) / len(members)
        assert 0.10 <= frac <= 0.20, g
    world.save_splits(tmp_path / 'splits.json')
    saved = json.loads((tmp_path / 'splits.json').read_text())
    assert saved['heldout_style'] == 'openmoji' and 'openmoji' not in saved['train_styles']
    assert len(saved['train']) == len(train) and len(saved['heldout']) == len(held)


def test_split_depends_on_seed_only(world):
    same = load_world(0)
    other = load_world(1)
    held = lambda w: [c.key for c in w.concepts if c.split == 'heldout']
    assert held(same) == held(world)
    assert held(other) != held(world)


def test_concepts_have_names_and_keys(world):
    c = world.concepts[world.index['dog-face']]
    assert c.name == 'dog face' and c.names['fr'] == 'tête de chien'
    for c in world.concepts:
        assert c.names['en'] == c.name == c.name.lower()
        assert set(c.names) <= set(LOCALES)
        assert c.group in GROUPS.values()


def test_pseudo_words_are_nonsense(world):
    rng = np.random.default_rng(0)
    vocab = vocabulary_words()
    names = {n for c in world.concepts for n in c.names.values()}
    ws = [pseudo_word(rng) for _ in range(2000)]
    for w in ws:
        assert re.fullmatch(r'[a-z]{4,9}', w), w
        assert w not in vocab and w not in names
    assert len(set(ws)) > 1000
    rng2 = np.random.default_rng(0)
    assert [pseudo_word(rng2) for _ in range(2000)] == ws


# -----------------------------------------------------------------------------
# determinism

def test_same_seed_same_bytes_different_seed_different(small_world):
    a = draw_everything(small_world, 7)
    assert a == draw_everything(small_world, 7)
    assert a != draw_everything(small_world, 8)


def test_sprites_subset(small_world):
    s = small_world.sprite(0, 'openmoji')
    assert s.shape == (24, 24, 4) and s.dtype == np.uint8 and s[..., 3].max() == 255


# -----------------------------------------------------------------------------
# held-out concepts never reach training text or pixels

def test_no_heldout_name_in_training_corpus(world):
    used = set()
    world_sprite = world.sprite
    world.sprite = lambda i, style: used.add((i, style)) or world_sprite(i, style)
    try:
        corpus = samples.training_corpus_sample(world, 5000, seed=0)
        rng = np.random.default_rng(1)  # and binding pages labelled with made-up names (real and coined words)
        corpus += [samples.sample_text(samples.interleaved_page(world, rng, kind='binding', novel_name_share=1.0,
                                                                coined_word_share=share))
                   for share in (0.0, 0.5) for _ in range(500)]
        corpus += [samples.sample_text(samples.interleaved_page(world, rng, kind='binding', other_name_share=1.0))
                   for _ in range(500)]  # and labelled with other training concepts' names
    finally:
        del world.sprite
    assert all(world.concepts[i].split == 'train' and s in world.train_styles for i, s in used)

    held = {n for c in world.concepts if c.split == 'heldout' for n in c.names.values()}
    pattern = re.compile(r'(?<!\w)(' + '|'.join(sorted(map(re.escape, held), key=len, reverse=True))
                         + r')(?!\w)', re.IGNORECASE)
    leaks = [(m.group(0), t) for t in corpus for m in [pattern.search(t)] if m]
    assert not leaks, leaks[:5]
    # the corpus mixes every kind of text
    assert any('Short answer:' in t for t in corpus) and any('Output:' in t for t in corpus)
    assert all(t.count(text.IMAGE) == t.count(text.EOC) for t in corpus)


def test_text_templates(world):
    rng = np.random.default_rng(0)
    for _ in range(50):
        cap = samples.caption_pair(world, rng)[1]['text']
        assert re.fullmatch(r'Output: [^.]+\.', cap), cap
        qa = samples.scene_pair(world, rng)[1]['text']
        assert re.fullmatch(r'Question: [^?]+\? Short answer: [\w ]+', qa), qa
    assert text.to_text([{'image': 0}, {'text': 'Output: a.'}, {'image': 0}, {'text': 'Output:'}],
                        close_last=False) == '<image>Output: a.<|endofchunk|><image>Output:'


# -----------------------------------------------------------------------------
# images, scenes and clips

def test_single_image(small_world):
    rng = np.random.default_rng(0)
    img = images.single(small_world.sprite(0, 'twemoji'), rng)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 5


def test_scene_facts_are_consistent(small_world):
    rng = np.random.default_rng(0)
    pool = small_world.split('train')
    name_of = lambda i: samples.name_in(small_world, i)
    for _ in range(200):
        img, facts = samples.draw_scene(small_world, pool, 'noto', rng)
        assert img.shape == (64, 64, 3)
        assert facts['count'] == len(facts['objects']) and 1 <= facts['count'] <= 4
        assert facts['background'] in images.PALETTE
        for q, a in text.scene_qas(facts, name_of):
            if q == 'how many emoji?':
                assert a == str(len(facts['objects']))
            if q == 'which is on the left?':
                left = min(facts['objects'], key=lambda o: o['x'])
                assert a == name_of(left['concept'])
            if q == 'which is on the top?':
                assert a == name_of(min(facts['objects'], key=lambda o: o['y'])['concept'])


def test_clips(small_world):
    rng = np.random.default_rng(0)
    pool = small_world.split('train')
    seen = set()
    for _ in range(60):
        frames, facts = samples.draw_clip(small_world, pool, 'fluent-emoji-flat', rng)
        seen.add(facts['event'])
        assert 4 <= len(frames) <= 8 and len(frames) == facts['n_frames']
        assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
        if facts['event'] == 'move':
            assert facts['direction'] in images.DIRECTIONS
            assert not np.array_equal(frames[0], frames[-1])
        else:  # nothing changes except at the change frame
            k = facts['change_frame']
            assert np.array_equal(frames[0], frames[k - 1]) and np.array_equal(frames[k], frames[-1])
            assert not np.array_equal(frames[k - 1], frames[k])
    assert seen == set(images.EVENTS)


def test_binding_pages_bind_up_to_max_way_words(small_world):
    """A binding page binds at most max_way words (a two-image page shows one concept twice)."""
    rng = np.random.default_rng(0)
    ways = set()
    for _ in range(40):
        page = samples.interleaved_page(small_world, rng, kind='binding', max_images=12, max_way=8)
        labels = [s['text'] for s in page if 'text' in s]
        assert 2 <= len(labels) <= 12
        ways.add(len(set(labels)))
    assert max(ways) == 8


def test_other_name_pages_label_each_concept_with_another_training_name(small_world):
    shown = []
    sprite = small_world.sprite
    small_world.sprite = lambda i, style: shown.append(i) or sprite(i, style)
    try:
        rng = np.random.default_rng(0)
        for _ in range(30):
            shown.clear()
            page = samples.interleaved_page(small_world, rng, kind='binding', max_images=8, other_name_share=1.0)
            labels = [s['text'].removeprefix('Output: ').removesuffix('.') for s in page if 'text' in s]
            train_names = {small_world.concepts[i].name for i in small_world.split('train')}
            assert len(shown) == len(labels) and all(label in train_names for label in labels)
            pairs = set(zip(shown, labels))
            assert all(small_world.concepts[i].name != label for i, label in pairs)
            assert len({i for i, _ in pairs}) == len(pairs) == len({label for _, label in pairs})  # one word per concept
    finally:
        del small_world.sprite


@pytest.mark.parametrize('kind', ['binding', 'names', 'locale'])
def test_similar_pages_label_look_alike_concepts_of_one_subgroup(small_world, kind):
    shown = []
    sprite = small_world.sprite
    small_world.sprite = lambda i, style: shown.append(i) or sprite(i, style)
    try:
        rng, pool = np.random.default_rng(0), small_world.split('train')
        in_pool = collections.Counter(small_world.concepts[i].subgroup for i in pool)
        alike = 0
        for _ in range(30):
            shown.clear()
            samples.interleaved_page(small_world, rng, kind=kind, max_images=12, max_way=6, similar_share=1.0)
            per_group = collections.Counter(small_world.concepts[i].subgroup for i in set(shown))
            # one subgroup as full as the page allows: all its concepts, or every concept on the page
            assert any(k == min(len(set(shown)), in_pool[g]) for g, k in per_group.items())
            alike += max(per_group.values()) > 1
        assert alike >= 10
    finally:
        del small_world.sprite


def test_one_style_pages_draw_every_image_in_one_training_style(small_world):
    styles_of_pages = {0.0: [], 1.0: []}
    sprite = small_world.sprite
    shown = []
    small_world.sprite = lambda i, style: shown.append(style) or sprite(i, style)
    try:
        for share in styles_of_pages:
            rng = np.random.default_rng(0)
            for _ in range(30):
                shown.clear()
                samples.interleaved_page(small_world, rng, kind='binding', max_images=8, one_style_share=share)
                styles_of_pages[share].append(set(shown))
    finally:
        del small_world.sprite
    assert all(len(s) == 1 and s <= set(small_world.train_styles) for s in styles_of_pages[1.0])
    assert sum(len(s) > 1 for s in styles_of_pages[0.0]) >= 15  # otherwise each image's style is its own


def test_restyled_pages_recolour_every_image_of_a_page_and_never_as_line_art(small_world, monkeypatch, magenta):
    asked = []
    monkeypatch.setattr(samples, 'random_restyle', lambda rng, kinds: asked.append(kinds) or magenta.paint)
    for kind in ('binding', 'names', 'locale', 'scene'):
        for seed in range(4):
            images_of = lambda page: [s['image'] for s in page if 'image' in s]
            restyled = images_of(samples.interleaved_page(small_world, np.random.default_rng(seed), kind=kind,
                                                          restyle_share=1.0))
            plain = images_of(samples.interleaved_page(small_world, np.random.default_rng(seed), kind=kind))
            assert not any(magenta.shown_in(img) for img in plain)
            # single-emoji pages: every image in the page's one restyle; scenes keep their artwork
            assert [magenta.shown_in(img) for img in restyled] == [kind != 'scene'] * len(restyled)
    assert asked and all(kinds == restyle.COLOUR_KINDS for kinds in asked)  # line art stays the probes' unseen style


def test_clip_pair_question_modes(small_world):
    def question(sample):
        t = sample[1]['text']
        return next((f for f in samples.CLIP_QUESTION_FAMILIES if t.startswith(f'Question: {f}')), 'caption')
    rng = np.random.default_rng(1)
    only = [samples.clip_pair(small_world, rng, questions='which way') for _ in range(20)]
    assert {question(s) for s in only} == {'which way'}
    assert all(s[1]['text'].split('Short answer: ')[1] in images.DIRECTIONS for s in only)
    assert all(not np.array_equal(s[0]['video'][0], s[0]['video'][-1]) for s in only), 'the clips do move'
    counts = collections.Counter(question(samples.clip_pair(small_world, rng, questions='balanced')) for _ in range(500))
    assert set(counts) == {'caption', *samples.CLIP_QUESTION_FAMILIES}
    assert all(40 <= counts[f] <= 80 for f in samples.CLIP_QUESTION_FAMILIES), counts  # 60 expected each
    with pytest.raises(ValueError, match='clip questions'):
        samples.clip_pair(small_world, rng, questions='what colour')


# -----------------------------------------------------------------------------
# episode files

EPISODE_TASKS = ['naming-0shot', 'naming-2shot', 'naming-novel-2shot', 'binding-5way-1shot',
                 'scene-qa-4shot', 'clip-qa-0shot', 'clip-qa-4shot', 'classify-5way-1shot',
                 'language-fr-2shot']


def read_dir(d):
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob('*')) if p.is_file()}


def test_episode_files(world, tmp_path):
    write_episodes(tmp_path / 'a', EPISODE_TASKS, n=2, seed=0, world=world)
    write_episodes(tmp_path / 'b', EPISODE_TASKS, n=2, seed=0, world=world)
    write_episodes(tmp_path / 'c', EPISODE_TASKS, n=2, seed=1, world=world)
    a = read_dir(tmp_path / 'a')
    assert a == read_dir(tmp_path / 'b')  # byte-identical, PNGs included
    assert a != read_dir(tmp_path / 'c')

    held = {c.name for c in world.concepts if c.split == 'heldout'}
    for task in EPISODE_TASKS:
        lines = (tmp_path / 'a' / f'{task}.jsonl').read_text().splitlines()
        assert len(lines) == 2
        for line in lines:
            ep = json.loads(line)
            assert ep['task'] == task and ep['answer']
            segs = ep['segments']
            assert 'image' in segs[-2] or 'video' in segs[-2]
            assert segs[-1]['text'] in ('Output:',) or segs[-1]['text'].endswith('Short answer:')
            for s in segs:
                for path in s.get('video', []) + ([s['image']] if 'image' in s else []):
                    assert path in a, path
            if 'options' in ep:
                assert ep['answer'] in ep['options']
            if task.startswith(('naming-novel', 'classify')):
                assert ep['answer'] in held
            if task == 'naming-0shot':
                assert [list(s) for s in segs] == [['text'], ['text'], ['image'], ['text']]


def test_two_shot_fixture(world, tmp_path):
    path = write_two_shot_fixture(tmp_path, world=world)
    fixture = json.loads(path.read_text())
    segs = fixture['segments']
    assert [s.get('image') for s in segs[::2]] == ['two-shot-1.png', 'two-shot-2.png', 'two-shot-3.png']
    assert segs[1]['text'] == f"Output: {fixture['answer']}." and segs[-1]['text'] == 'Output:'
    assert all((tmp_path / s['image']).exists() for s in segs[::2])
    assert world.concepts[world.index[fixture['answer'].replace(' ', '-')]].split == 'train'


def test_novel_names_are_nobody_s_name(world):
    rng = np.random.default_rng(0)
    names = {c.name for c in world.concepts}
    made_up = [n for _ in range(200) for n in novel_names(world, rng, 5)]
    assert not set(made_up) & names
    assert all(1 <= len(n.split()) <= 3 for n in made_up) and len(set(made_up)) > 900
    train_words = {w for c in world.concepts if c.split == 'train' for w in words(c.name)}
    assert all(set(n.split()) <= train_words for n in made_up)


def test_coined_words_are_no_emoji_word_and_come_from_the_seed(world):
    def coin(seed):
        rng = np.random.default_rng(seed)
        return [coined_word(world, rng) for _ in range(300)]

    coined = coin(0)
    assert coined == coin(0) and coined != coin(1)
    assert not set(coined) & vocabulary_words() and len(set(coined)) > 250
    assert all(4 <= len(w) <= 10 and w.isalpha() for w in coined)
    rng = np.random.default_rng(2)
    mixed = [n for _ in range(100) for n in novel_names(world, rng, 5, coined_share=0.5)]
    names = {c.name for c in world.concepts}
    assert not set(mixed) & names
    assert sum(bool(set(words(n)) - vocabulary_words()) for n in mixed) > 200  # the coined ones


def test_v2_styles_keep_v1s_concepts_and_split_and_draw_every_concept(world):
    """load_world(styles='v2') trains on seven styles over v1's very concepts and split; a set that lacks a
    concept (fxemoji, streamline-emojis) draws it in a core training style, fixed per concept."""
    from emojiworld.concepts import TRAIN_STYLES, V2_STYLES
    v2 = load_world(0, 'v2')
    assert v2.train_styles == TRAIN_STYLES + V2_STYLES and world.train_styles == TRAIN_STYLES
    assert [(c.key, c.split) for c in v2.concepts] == [(c.key, c.split) for c in world.concepts]
    assert v2.heldout_style == 'openmoji' and 'openmoji' not in v2.train_styles
    for style in V2_STYLES:
        own = [i for i, c in enumerate(v2.concepts) if c.key in v2.icons[style]]
        assert len(own) > 200, style  # each set covers a good part of the concepts
        assert v2.own_drawings(style, range(len(v2.concepts))) == own  # what a probe in that style may draw
        missing = [i for i in range(len(v2.concepts)) if c_key(v2, i) not in v2.icons[style]]
        for i in missing[:20]:
            assert v2.icon(style, i) == v2.icons[v2.stand_in_style(i)][c_key(v2, i)]
        for i in own[:20]:
            assert v2.icon(style, i) == v2.icons[style][c_key(v2, i)]
    assert v2.own_drawings('noto', v2.split('heldout')) == v2.split('heldout')
    with pytest.raises(ValueError, match='styles must be one of'):
        load_world(0, 'v3')


def c_key(w, i):
    return w.concepts[i].key


def test_long_binding_episodes_reach_32_supports_and_keep_the_query_among_them(world):
    """text_episode(max_supports=48), stage 2 of model v2: up to 32 ways, the query one of the supports' names."""
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(200):
        t = samples.text_episode(world, rng, 'train', kind='binding', max_supports=48)
        parts = t.split(text.EOC)[:-1]
        *supports, query = parts
        counts.append(len(supports))
        assert query in supports  # the query line repeats a support (its name and label)
    assert max(counts) > 32 and min(counts) >= 2
