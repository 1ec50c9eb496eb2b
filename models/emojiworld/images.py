"""
Images and clips made of emoji sprites: numpy (plus PIL for the small rotate/resize), fast and
deterministic given a np.random.Generator. Canvases are [size, size, 3] uint8 RGB.

- single: one emoji, randomly scaled, placed and lightly rotated, on a light plain background
- scene:  1-4 emoji on a named background colour, with facts to ask questions about
- clip:   4-8 frames in which an emoji moves, appears, disappears or turns into another
"""

import numpy as np
from PIL import Image

# Named backgrounds for scenes: far enough apart that the name is never in doubt.
PALETTE = {
    'white': (250, 250, 250),
    'yellow': (250, 226, 110),
    'blue': (120, 170, 235),
    'green': (140, 210, 140),
    'pink': (245, 175, 205),
    'grey': (170, 170, 170),
}
DIRECTIONS = ('left', 'right', 'up', 'down')
EVENTS = ('move', 'appear', 'disappear', 'turn')


def plain_canvas(color, size):
    return np.broadcast_to(np.asarray(color, dtype=np.float32), (size, size, 3)).copy()


def light_color(rng):
    """A random light background: pale tints, from white to pastel."""
    base = rng.uniform(0, 255, 3)
    mix = rng.uniform(0.55, 1.0)
    return 255 * mix + base * (1 - mix)


def named_color(rng, name=None):
    name = name or list(PALETTE)[rng.integers(len(PALETTE))]
    shade = rng.integers(-8, 9, 3)  # slight jitter, never enough to change the name
    return name, np.clip(np.asarray(PALETTE[name]) + shade, 0, 255)


def transform(sprite, px, angle):
    """Resize an RGBA sprite to px pixels and rotate it by angle degrees, in premultiplied alpha
    so that edges do not pick up dark fringes. Returns float32 [h, w, 4] premultiplied, 0..1."""
    img = Image.fromarray(sprite, 'RGBA').convert('RGBa')
    img = img.resize((px, px), Image.BILINEAR if px > sprite.shape[0] else Image.BOX)
    if angle:
        img = img.rotate(angle, resample=Image.BILINEAR, expand=True)
    return np.asarray(img, dtype=np.float32) / 255.0


def paste(canvas, patch, cx, cy):
    """Alpha-composite a premultiplied patch onto canvas (float RGB 0..255), centred at (cx, cy)."""
    h, w = patch.shape[:2]
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    H, W = canvas.shape[:2]
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if ax0 >= ax1 or ay0 >= ay1:
        return
    p = patch[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0]
    region = canvas[ay0:ay1, ax0:ax1]
    region *= 1.0 - p[..., 3:]
    region += 255.0 * p[..., :3]


def to_uint8(canvas):
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def single(sprite, rng, size=64):
    """One emoji, scaled to ~50-90% of the canvas, placed at random, rotated within +-15 degrees."""
    canvas = plain_canvas(light_color(rng), size)
    px = int(round(size * rng.uniform(0.5, 0.9)))
    patch = transform(sprite, px, rng.uniform(-15, 15))
    # keep the unrotated square inside the canvas: only rotated corners may be cut
    cx, cy = rng.uniform(px / 2, size - px / 2, 2)
    paste(canvas, patch, cx, cy)
    return to_uint8(canvas)


def _object_px(n, size, rng):
    lo, hi = {1: (0.45, 0.7), 2: (0.34, 0.46)}.get(n, (0.28, 0.36))
    return int(round(size * rng.uniform(lo, hi)))


def _place(sizes, size, rng, tries=200):
    """Centres for squares of the given sizes, inside the canvas and (nearly) not overlapping."""
    centres = []
    for s in sizes:
        best, best_gap = None, -np.inf
        for _ in range(tries):
            c = rng.uniform(s / 2, size - s / 2, 2)
            # gap to the nearest placed object, in units of the pair's mean size
            gap = min((np.abs(c - d).max() - (s + t) / 2 for d, t in zip(centres, sizes)),
                      default=np.inf)
            if gap >= -0.1 * s:
                best = c
                break
            if gap > best_gap:
                best, best_gap = c, gap
        centres.append(best)
    return centres


def scene(sprites_list, rng, size=64, labels=None, background=None):
    """1-4 emoji (one per entry of sprites_list; repeats allowed) on a named background.
    Returns (image, facts) with facts = {'count', 'background', 'objects': [{'concept', 'x', 'y',
    'size'}]}; 'concept' is labels[i] (or i), x grows to the right and y downwards."""
    n = len(sprites_list)
    assert 1 <= n <= 4, 'scenes hold 1 to 4 emoji'
    labels = labels if labels is not None else list(range(n))
    name, color = named_color(rng, background)
    canvas = plain_canvas(color, size)
    sizes = [_object_px(n, size, rng) for _ in range(n)]
    objects = []
    for sprite, label, px, (cx, cy) in zip(sprites_list, labels, sizes, _place(sizes, size, rng)):
        paste(canvas, transform(sprite, px, rng.uniform(-10, 10)), cx, cy)
        objects.append({'concept': label, 'x': float(cx), 'y': float(cy), 'size': px})
    return to_uint8(canvas), {'count': n, 'background': name, 'objects': objects}


def clip(rng, sprites, labels=None, size=64, event=None, n_frames=None):
    """4-8 frames of one event. sprites = [a, b]: a is the actor; b is what a turns into, or a
    still bystander (present in some clips so that 'what appeared?' is not trivial).
    Returns (frames, facts) with facts = {'event', 'concept' (a), 'other' (b or None),
    'direction' (move only), 'background', 'n_frames', 'change_frame'}."""
    a, b = sprites
    la, lb = labels if labels is not None else (0, 1)
    event = event or EVENTS[rng.integers(len(EVENTS))]
    T = int(n_frames or rng.integers(4, 9))
    name, color = named_color(rng)
    px = int(round(size * rng.uniform(0.28, 0.4)))
    pa = transform(a, px, rng.uniform(-10, 10))
    pb = transform(b, px, rng.uniform(-10, 10))
    lo, hi = px / 2, size - px / 2
    facts = {'event': event, 'concept': la, 'other': None, 'direction': None,
             'background': name, 'n_frames': T, 'change_frame': None}

    # Actor and bystander use mirrored lanes: a lane in [lo, size/2 - px/2] and its mirror
    # size - lane are at least px apart, so the two never overlap.
    bystander = event in ('appear', 'disappear', 'move') and rng.random() < 0.6
    lane = rng.uniform(lo, size / 2 - px / 2)
    if rng.random() < 0.5:
        lane = size - lane
    if event == 'move':
        d = DIRECTIONS[rng.integers(4)]
        facts['direction'] = d
        t = np.linspace(0, 1, T)
        along = lo + (hi - lo) * (t if d in ('right', 'down') else 1 - t)
        path = [(x, lane) if d in ('left', 'right') else (lane, x) for x in along]
        s = rng.uniform(lo, hi)
        still = (s, size - lane) if d in ('left', 'right') else (size - lane, s)
    else:
        path = [(lane, rng.uniform(lo, hi))] * T
        still = (size - lane, rng.uniform(lo, hi))
        facts['change_frame'] = int(rng.integers(1, T))  # first frame after the change
    if bystander:
        facts['other'] = lb

    frames = []
    for k in range(T):
        canvas = plain_canvas(color, size)
        if bystander:
            paste(canvas, pb, *still)
        cf = facts['change_frame']
        if event == 'move':
            paste(canvas, pa, *path[k])
        elif event == 'appear' and k >= cf:
            paste(canvas, pa, *path[k])
        elif event == 'disappear' and k < cf:
            paste(canvas, pa, *path[k])
        elif event == 'turn':
            paste(canvas, pa if k < cf else pb, *path[k])
        frames.append(to_uint8(canvas))
    if event == 'turn':
        facts['other'] = lb
    return frames, facts
