"""Image preprocessing, bit-for-bit the same as src/engine/image.ts (a parity test compares them).

RGBA uint8 -> composite on the manifest's background -> centre square crop -> area-average resize
to image_size -> (x/255 - mean) / std, channels first. Area averaging (each output pixel is the
coverage-weighted mean of the input pixels under it) is used because it is easy to write
identically in numpy and TypeScript, unlike PIL's or the browser's resamplers.
"""
from __future__ import annotations

import numpy as np


def composite(rgba: np.ndarray, background) -> np.ndarray:
    """[H, W, 4|3] uint8 -> [H, W, 3] float64 on 0..255."""
    rgb = rgba[..., :3].astype(np.float64)
    if rgba.shape[-1] == 3:
        return rgb
    a = rgba[..., 3:4].astype(np.float64) / 255.0
    return rgb * a + np.asarray(background, dtype=np.float64) * (1.0 - a)


def center_crop_box(h: int, w: int) -> tuple[int, int, int]:
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in]: how much of input cell j falls under output cell i, rows summing to 1."""
    scale = n_in / n_out
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
            w[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
        w[i] /= w[i].sum()
    return w


def normalize(rgb, mean, std) -> np.ndarray:
    """[..., H, W, 3] on 0..255 -> [..., 3, H, W] float32: (x/255 - mean) / std, channels first."""
    out = (np.asarray(rgb, dtype=np.float64) / 255.0 - np.asarray(mean)) / np.asarray(std)
    return np.moveaxis(out, -1, -3).astype(np.float32)


def preprocess(rgba: np.ndarray, image_size: int, mean, std, background) -> np.ndarray:
    """[H, W, 3|4] uint8 -> [3, S, S] float32."""
    rgb = composite(rgba, background)
    y0, x0, side = center_crop_box(*rgb.shape[:2])
    rgb = rgb[y0:y0 + side, x0:x0 + side]
    wy = area_weights(side, image_size)
    out = np.einsum("ij,jkc->ikc", wy, rgb)
    out = np.einsum("ij,kjc->kic", wy, out)
    return normalize(out, mean, std)
