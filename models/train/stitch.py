"""Model stitching (Lenc & Vedaldi 2015; Bansal et al. 2021): one encoder's output tokens mapped by a linear layer
into the token space of another encoder, so that a bridge trained on the second reads the first.

    cd models && /usr/bin/python3 -m train.stitch --source=checkpoints/v2-ni/vision.pt \\
        --target=checkpoints/v2/vision.pt --out=runs/v2/vision-stitched.pt [--pages=1500 --ridge=1.0]

The map (d x d and a bias) is fitted by ridge regression on the images of stage-3 training pages (train split,
the seven training styles: samples.interleaved_page with the recipe's restyled and look-alike pages), both encoders
frozen; its R^2 is printed on those images and on pages drawn with another seed. The output is the source encoder
with the map as its last layer (FlamingoConfig.vision_stitch), a vision checkpoint like any other.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from emojiworld.concepts import load_world
from emojiworld.samples import interleaved_page
from flamingo.preprocess import normalize
from flamingo.training import setup_threads
from probes.vision import load_encoder


def page_images(world, n_pages: int, seed: int) -> np.ndarray:
    """Every image and clip frame of n_pages stage-3 training pages, [n, H, W, 3] uint8."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_pages):
        for segment in interleaved_page(world, rng, max_images=8, max_way=10, restyle_share=0.5, similar_share=0.5):
            frames += segment.get("video", [segment["image"]] if "image" in segment else [])
    return np.stack(frames)


@torch.no_grad()
def tokens(encoder, cfg, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """The encoder's output tokens of every image, flattened to [n * tokens, d] (float64)."""
    out = [encoder(torch.from_numpy(normalize(images[i:i + batch], cfg.mean, cfg.std))).flatten(0, 1).double().numpy()
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


def fit_map(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """W, b minimising |x W + b - y|^2 + ridge |W|^2 (the bias is not penalised)."""
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    w = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ yc)
    return w, my - mx @ w


def r_squared(x, y, w, b) -> float:
    residual = ((x @ w + b - y) ** 2).sum()
    return float(1 - residual / ((y - y.mean(0)) ** 2).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True, help="the encoder to map (a vision checkpoint)")
    ap.add_argument("--target", required=True, help="the encoder whose token space the bridge reads")
    ap.add_argument("--out", required=True)
    ap.add_argument("--pages", type=int, default=1500, help="stage-3 training pages to fit on")
    ap.add_argument("--ridge", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    setup_threads()
    world = load_world(styles="v2")
    source, source_cfg = load_encoder(args.source)
    target, target_cfg = load_encoder(args.target)
    if source_cfg.vision_stitch:
        raise SystemExit(f"{args.source} already ends in a stitching layer")
    if (source_cfg.d_vision, source_cfg.n_vision_tokens) != (target_cfg.d_vision, target_cfg.n_vision_tokens):
        raise SystemExit("the two encoders' tokens differ in number or width")
    fit_images, check_images = page_images(world, args.pages, args.seed), page_images(world, args.pages // 5, args.seed + 1)
    x, y = tokens(source, source_cfg, fit_images), tokens(target, target_cfg, fit_images)
    w, b = fit_map(x, y, args.ridge)
    check = r_squared(tokens(source, source_cfg, check_images), tokens(target, target_cfg, check_images), w, b)
    print(f"{len(fit_images)} images ({len(x)} tokens): R^2 {r_squared(x, y, w, b):.3f} on them, "
          f"{check:.3f} on {len(check_images)} images of other pages")

    cfg = source_cfg.to_dict() | {"vision_stitch": True}
    state = dict(source.state_dict())
    state["stitch.weight"] = torch.from_numpy(w.T.copy()).float()  # nn.Linear computes x W^T + b
    state["stitch.bias"] = torch.from_numpy(b).float()
    torch.save({"vision": state, "config": cfg,
                "meta": {"stitch": {"source": args.source, "target": args.target, "pages": args.pages,
                                    "ridge": args.ridge, "seed": args.seed, "r2_check": check}}}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
