"""
Style perturbations of an emoji sprite, for training a vision encoder whose features do not
depend on the artist: the held-out style must be recognised from three training styles only.

Each perturbation keeps the concept (shape, layout) and changes what differs between artists:
colours (grey, hue rotation, flat posterised fills, washed-out tints) and rendering (an outline
drawing of the sprite's edges with light or no fill). They are generic domain-generalisation
augmentations (sketch / edge and colour transforms, as used on PACS-like benchmarks), picked from
what artists vary, not from any held-out artwork: no held-out image is used to choose or tune
them; their effect is validated by leaving one TRAINING style out (train.vision --styles):
so far they did not help (models/eval/style-transfer/), and the shipped encoder does not use them.
Two other uses, split by kind: line drawings (LINE_KINDS) are the validation stand-in for an unseen
style (probes.bridge --styles), so nothing that is shipped trains on them; recolourings (COLOUR_KINDS)
can recolour whole stage-3 pages (train.flamingo --restyle_share; tried, not shipped). Ink outlines (INK_KINDS)
are for stage 1 (train.vision --restyle_kinds=ink), judged with an outlined training style left out.

    style = random_restyle(rng)        # one perturbation, its parameters drawn once
    sprite2 = style(sprite)            # RGBA uint8 [h, w, 4] -> RGBA uint8, same size
"""

import numpy as np

COLOUR_KINDS = ('grey', 'hue', 'posterise', 'tint')  # recolourings: shape and shading kept
LINE_KINDS = ('outline', 'outline-fill')  # line drawings: what a colour style never shows
INK_KINDS = ('ink',)  # the colours as drawn, dark lines on their edges: an outlined colour style
# ink on a recoloured drawing (another artist's palette, outlined), ink in 3- or 5-pixel lines: tried in stage 1's
# distillation, not shipped (TRAINING_LOG_v2.md, "Stages 1dinkr and 1dinkb")
INK_VARIANT_KINDS = ('ink-recolour', 'ink-bold')
KINDS = COLOUR_KINDS + LINE_KINDS  # random_restyle's default (ink came later: runs before it draw the same)

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _luma(rgb):
    return rgb @ _LUMA


def _hue_matrix(angle):
    """Rotation by `angle` radians about the grey axis of RGB space (Rodrigues' formula)."""
    k = np.ones(3) / np.sqrt(3)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return (np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K).astype(np.float32)


def _dilate(mask, r):
    """Binary dilation by a (2r+1)^2 square, with array shifts (no SciPy needed)."""
    out = mask.copy()
    h, w = mask.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
            xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
            out[yd, xd] |= mask[ys, xs]
    return out


def edges(sprite, threshold):
    """Boolean edge map: the silhouette's border and strong changes of colour inside it."""
    rgb = sprite[..., :3].astype(np.float32) / 255
    a = sprite[..., 3].astype(np.float32) / 255
    # colour changes only count where the sprite is opaque; the silhouette adds its own border
    field = np.concatenate([rgb * a[..., None], a[..., None]], axis=-1)
    gy = np.abs(np.diff(field, axis=0, append=field[-1:])).max(-1)
    gx = np.abs(np.diff(field, axis=1, append=field[:, -1:])).max(-1)
    return np.maximum(gx, gy) > threshold


def random_restyle(rng, kinds=KINDS):
    """One perturbation of one of `kinds`, its parameters drawn from rng; returns sprite -> sprite."""
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == 'grey':
        return lambda s: _with_rgb(s, np.repeat(_luma(s[..., :3].astype(np.float32))[..., None], 3, -1))
    if kind == 'hue':
        m = _hue_matrix(rng.uniform(0.5, 2 * np.pi - 0.5))
        return lambda s: _with_rgb(s, s[..., :3].astype(np.float32) @ m.T)
    if kind == 'posterise':
        levels = int(rng.integers(2, 4))
        step = 255 / levels
        return lambda s: _with_rgb(s, np.round(s[..., :3] / step) * step)
    if kind == 'tint':
        mix, colour = rng.uniform(0.35, 0.7), rng.uniform(150, 255, 3)
        return lambda s: _with_rgb(s, (1 - mix) * s[..., :3] + mix * colour)
    if kind == 'ink-recolour':
        recolour, inked = random_restyle(rng, COLOUR_KINDS), random_restyle(rng, INK_KINDS)
        return lambda s: inked(recolour(s))
    # outline drawings: dark lines on the edges; inside, no fill, white, a pale copy of the colours, or (ink) the
    # colours themselves
    threshold = rng.uniform(0.2, 0.45)
    width = int(rng.random() < 0.3) + (kind == 'ink-bold')  # 1- or 3-pixel lines (ink-bold: 3 or 5)
    ink = rng.uniform(0, 60, 3)
    fill = {'outline': 'none', 'ink': 'colour', 'ink-bold': 'colour'}.get(kind)
    fill = fill or ('white', 'pale')[int(rng.integers(2))]
    pale = rng.uniform(0.4, 0.75)

    def outline(s):
        line = _dilate(edges(s, threshold), width)
        opaque = s[..., 3] > 127
        rgb = s[..., :3].astype(np.float32)
        if fill == 'white':
            rgb = np.full_like(rgb, 255.0)
        elif fill == 'pale':
            rgb = (1 - pale) * rgb + pale * 255
        out = np.zeros_like(s)
        out[..., :3] = np.clip(np.where(line[..., None], ink, rgb), 0, 255).astype(np.uint8)
        inside = opaque if fill != 'none' else np.zeros_like(opaque)
        out[..., 3] = np.where(line | inside, np.maximum(s[..., 3], 255 * line), 0).astype(np.uint8)
        return out
    return outline


def _with_rgb(sprite, rgb):
    out = sprite.copy()
    out[..., :3] = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return out

