"""
Rasterise each concept's SVG artwork to a small RGBA sprite with cairosvg, one batch per style,
cached on disk (<repo>/.cache/emojiworld/, gitignored) so that only the first run pays.

    cd models && /usr/bin/python3 -m emojiworld.render --size 48     # render (or check) all styles
"""

import hashlib
import io
import time

import numpy as np
from PIL import Image

from .paths import CACHE_DIR

RENDER_VERSION = 1  # bump when the rendering itself changes, to invalidate old caches


def render_svg(svg: str, size: int) -> np.ndarray:
    """One SVG document -> [size, size, 4] uint8 RGBA (cairo antialiases edges)."""
    import cairosvg  # imported here: only needed on a cache miss
    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=size, output_height=size)
    img = Image.open(io.BytesIO(png)).convert('RGBA')
    if img.size != (size, size):  # non-square artwork: centre it on a square
        canvas = Image.new('RGBA', (size, size))
        canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
        img = canvas
    return np.asarray(img, dtype=np.uint8)


def _cache_path(world, style, size):
    h = hashlib.sha256(f'v{RENDER_VERSION}/{style}/{size}'.encode())
    for i, c in enumerate(world.concepts):  # the key covers the order and every input document
        h.update(c.key.encode() + b'\0' + world.icon(style, i).encode() + b'\0')
    return CACHE_DIR / f'{style}-{size}px-{h.hexdigest()[:16]}.npz'


def sprites(world, style: str, size: int = 48, verbose: bool = True) -> np.ndarray:
    """[n_concepts, size, size, 4] uint8 RGBA sprites in world.concepts order. A world.subset(...)
    renders (and caches) only its own concepts."""
    path = _cache_path(world, style, size)
    if path.exists():
        return np.load(path)['sprites']
    t0 = time.time()
    out, failed = [], []
    for i, c in enumerate(world.concepts):
        try:
            out.append(render_svg(world.icon(style, i), size))
        except MemoryError:  # cairo gives up on a few very complex drawings (fluent-emoji's 3D set)
            failed.append(c.key)
            out.append(render_svg(world.icons[world.stand_in_style(i)][c.key], size))
    out = np.stack(out)
    if verbose:
        print(f'emojiworld: rendered {len(out)} {style} sprites at {size}px in {time.time() - t0:.1f}s -> {path.name}'
              + (f'; {len(failed)} cairo could not draw, drawn in a core style instead: {", ".join(failed)}'
                 if failed else ''))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix('.tmp.npz')
    np.savez_compressed(tmp, sprites=out)
    tmp.replace(path)  # atomic: a killed run never leaves a truncated cache file
    return out


if __name__ == '__main__':
    import argparse
    from .concepts import load_world
    ap = argparse.ArgumentParser()
    ap.add_argument('--size', type=int, default=48)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    world = load_world(args.seed, 'v2')
    t0 = time.time()
    for style in world.styles:
        s = sprites(world, style, args.size)
        print(f'{style}: {s.shape}, mean alpha {s[..., 3].mean() / 255:.2f}')
    print(f'all styles: {time.time() - t0:.1f}s')
