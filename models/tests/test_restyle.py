"""Style perturbations (emojiworld/restyle.py) and the style-invariance distillation of the vision
encoder (train.vision --teacher): what a new art style changes, and what must not change."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from emojiworld import restyle, samples
from emojiworld.concepts import load_world

MODELS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def world():
    return load_world(0)


def restyle_of_kind(kind, seed=0):
    return restyle.random_restyle(np.random.default_rng(seed), (kind,))


@pytest.mark.parametrize('kind', restyle.KINDS + restyle.INK_KINDS + restyle.INK_VARIANT_KINDS)
def test_every_kind_keeps_the_sprite_shape_and_is_deterministic(world, kind):
    sprite = world.sprite(0, 'noto')
    before = sprite.copy()
    out = restyle_of_kind(kind)(sprite)
    assert out.shape == sprite.shape and out.dtype == np.uint8
    assert np.array_equal(sprite, before), 'the cached sprite must not be modified in place'
    assert np.array_equal(out, restyle_of_kind(kind)(sprite))
    assert not np.array_equal(out, sprite), f'{kind} changed nothing'


@pytest.mark.parametrize('kind', ('grey', 'hue', 'posterise', 'tint'))
def test_colour_kinds_keep_the_silhouette(world, kind):
    sprite = world.sprite(3, 'twemoji')
    out = restyle_of_kind(kind)(sprite)
    assert np.array_equal(out[..., 3], sprite[..., 3])
    if kind == 'grey':
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_outline_draws_dark_lines_on_the_silhouette_border(world):
    sprite = world.sprite(7, 'fluent-emoji-flat')
    out = restyle_of_kind('outline')(sprite)
    border = restyle.edges(sprite, 0.45)  # strong edges: the silhouette's border at least
    assert border.any()
    ink = (out[..., 3] > 0) & (out[..., :3].max(-1) <= 60)
    assert ink[border].mean() > 0.9, 'the outline covers the strong edges'
    assert (out[..., 3] > 0).sum() < (sprite[..., 3] > 0).sum(), 'no fill: only lines remain opaque'


def test_ink_keeps_the_colours_and_silhouette_and_inks_the_strong_edges(world):
    sprite = world.sprite(7, 'fluent-emoji-flat')
    out = restyle_of_kind('ink')(sprite)
    border = restyle.edges(sprite, 0.45)
    dark = out[..., :3].max(-1) <= 60
    assert dark[border].mean() > 0.9, 'the strong edges are inked'
    off_line = (sprite[..., 3] == 255) & ~restyle._dilate(restyle.edges(sprite, 0.2), 1)
    assert off_line.any() and np.array_equal(out[off_line], sprite[off_line]), 'away from lines the drawing is as drawn'
    assert ((out[..., 3] > 0) | (sprite[..., 3] == 0)).all(), 'the whole silhouette stays opaque'


def test_ink_bold_draws_wider_lines_and_ink_recolour_recolours_before_inking(world):
    sprite = world.sprite(7, 'fluent-emoji-flat')
    dark = lambda out: ((out[..., :3].max(-1) <= 60) & (out[..., 3] > 0)).sum()
    for seed in range(4):  # the same draws but one more pixel of line on each side
        assert dark(restyle_of_kind('ink-bold', seed)(sprite)) > dark(restyle_of_kind('ink', seed)(sprite))
    rng = np.random.default_rng(5)
    recolour, inked = restyle.random_restyle(rng, restyle.COLOUR_KINDS), restyle.random_restyle(rng, restyle.INK_KINDS)
    assert np.array_equal(restyle_of_kind('ink-recolour', 5)(sprite), inked(recolour(sprite)))


def test_the_default_kinds_are_unchanged_so_earlier_runs_draw_the_same():
    assert restyle.KINDS == ('grey', 'hue', 'posterise', 'tint', 'outline', 'outline-fill')


def test_distillation_starts_from_the_teacher_and_only_restyled_images_cost(world):
    from flamingo.model import FlamingoConfig
    from train.vision import Student
    ckpt = torch.load(MODELS / 'checkpoints' / 'vision.pt', map_location='cpu')
    student = Student(FlamingoConfig.from_dict(ckpt['config']), ckpt['vision'])
    assert not student.training and not student.vision.training, 'BatchNorm keeps the teacher statistics'
    student.train()
    assert not student.vision.training
    from flamingo.preprocess import normalize
    conf = FlamingoConfig.from_dict(ckpt['config'])
    clean = [samples.draw_single(world, c, 'noto', np.random.default_rng(c)) for c in range(4)]
    outline = restyle_of_kind('outline')
    restyled = [samples.draw_single(world, c, 'noto', np.random.default_rng(c), restyle=outline) for c in range(4)]
    px = lambda imgs: torch.from_numpy(normalize(np.stack(imgs), conf.mean, conf.std))
    with torch.no_grad():
        assert student.loss(px(clean), px(clean)).item() == 0.0
        assert student.loss(px(clean), px(restyled)).item() > 1e-3


def test_an_ibn_student_starts_from_a_plain_teacher_and_keeps_its_batch_normalised_half(world):
    from dataclasses import replace
    from flamingo.model import IBN, FlamingoConfig
    from train.vision import Student
    ckpt = torch.load(MODELS / 'checkpoints' / 'vision.pt', map_location='cpu')
    plain = FlamingoConfig.from_dict(ckpt['config'])
    assert not plain.vision_ibn
    student = Student(replace(plain, vision_ibn=2), ckpt['vision'], plain)  # strict loads: every key carried over
    assert sum(isinstance(m, IBN) for m in student.vision.modules()) == 2
    assert not any(isinstance(m, IBN) for m in student.teacher.modules()), 'the teacher stays as trained'
    from flamingo.preprocess import normalize
    clean = [samples.draw_single(world, c, 'noto', np.random.default_rng(c)) for c in range(4)]
    x = torch.from_numpy(normalize(np.stack(clean), plain.mean, plain.std))
    with torch.no_grad():
        s, t = student.vision.convs[:2](x), student.teacher.convs[:2](x)
        half = s.shape[1] // 2
        assert torch.allclose(s[:, half:], t[:, half:], atol=1e-6), 'the batch-normalised half is the teacher\'s'
        assert not torch.allclose(s[:, :half], t[:, :half], atol=1e-3), 'the other half is normalised per image'
        assert student.loss(x, x).item() > 0, 'so a clean image costs too, until the student has learnt'


def test_distillation_run_writes_a_vision_checkpoint_stage3_can_load(tmp_path):
    out = tmp_path / 'vision'
    subprocess.run([sys.executable, '-m', 'train.vision', '--tokenizer=../public/models/emojiworld/tokenizer.json',
                    f'--out={out}', '--teacher=checkpoints/vision.pt', '--restyle=0.75', '--steps=2', '--batch=8',
                    '--eval_every=2', '--styles=twemoji,noto', '--validation_style=fluent-emoji-flat'],
                   cwd=MODELS, check=True, env={'TORCH_THREADS': '1', 'PATH': '/usr/bin:/bin'})
    ckpt = torch.load(out / 'last.pt', map_location='cpu')
    teacher = torch.load(MODELS / 'checkpoints' / 'vision.pt', map_location='cpu')
    from flamingo.model import FlamingoConfig
    assert FlamingoConfig.from_dict(ckpt['config']) == FlamingoConfig.from_dict(teacher['config'])
    assert set(ckpt['vision']) == set(teacher['vision'])
    evals = (out / 'eval.jsonl').read_text().splitlines()
    assert 'twemoji_to_fluent-emoji-flat' in evals[-1] and 'naming_' in evals[-1]


def test_anchored_batches_pair_each_restyled_image_with_its_clean_drawing(world):
    from flamingo.model import FlamingoConfig
    from flamingo.tokenizer import Tokenizer
    from train.vision import Batches, Settings
    tok = Tokenizer.load(str(MODELS.parent / 'public/models/emojiworld/tokenizer.json'))
    cfg = FlamingoConfig(vocab_size=len(tok.vocab))
    plain = Batches(Settings(batch=8, steps=1, styles='twemoji,noto'), world, tok, cfg, 0)[0]
    anchored = Batches(Settings(batch=8, steps=1, styles='twemoji,noto', anchor=1.0), world, tok, cfg, 0)[0]
    assert len(anchored) == 6 and torch.equal(anchored[0], anchored[5]), 'no restyle: the clean drawing itself'
    assert torch.equal(anchored[0], plain[0]) and torch.equal(anchored[1], plain[1]), 'the same batch as without'
    inked = Batches(Settings(batch=8, steps=1, styles='twemoji,noto', anchor=1.0, restyle=1.0, restyle_kinds='ink'),
                    world, tok, cfg, 0)[0]
    assert all(not torch.equal(a, b) for a, b in zip(inked[0], inked[5])), 'every image inked, its target clean'


def test_anchored_run_logs_the_anchor_and_keeps_batchnorm_at_the_start(tmp_path):
    out = tmp_path / 'vision'
    subprocess.run([sys.executable, '-m', 'train.vision', '--tokenizer=../public/models/emojiworld/tokenizer.json',
                    f'--out={out}', '--init=checkpoints/vision.pt', '--anchor=10', '--restyle=0.5', '--restyle_kinds=ink',
                    '--steps=20', '--batch=8', '--eval_every=20', '--styles=twemoji,noto',
                    '--validation_style=fluent-emoji-flat'],
                   cwd=MODELS, check=True, env={'TORCH_THREADS': '1', 'PATH': '/usr/bin:/bin'})
    import json
    logged = json.loads((out / 'log.jsonl').read_text().splitlines()[-1])
    assert 0.0 < logged['anchor_mse'] < 1.0
    ckpt = torch.load(out / 'last.pt', map_location='cpu')
    start = torch.load(MODELS / 'checkpoints' / 'vision.pt', map_location='cpu')['vision']
    for k, v in start.items():
        if 'running_' in k:
            assert torch.equal(ckpt['vision'][k], v), f'{k}: BatchNorm statistics stay the start\'s'
    assert any(not torch.equal(ckpt['vision'][k], v) for k, v in start.items() if v.is_floating_point())


def test_random_convolution_changes_some_images_and_is_seeded():
    from train.vision import random_convolution
    x = torch.randn(16, 3, 64, 64)
    assert torch.equal(random_convolution(x, np.random.default_rng(0), 0.0), x)
    y = random_convolution(x, np.random.default_rng(0), 0.5)
    changed = [not torch.equal(a, b) for a, b in zip(x, y)]
    assert 0 < sum(changed) < 16 and y.shape == x.shape
    assert torch.equal(y, random_convolution(x, np.random.default_rng(0), 0.5))  # a batch depends on its seed only
