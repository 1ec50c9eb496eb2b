"""Where is the direction of motion lost? Linear probes on a frozen stage-3 model, clips of training
concepts drawn in a training style (validation data, never OpenMoji).

    cd models && /usr/bin/python3 -m probes.motion [--bridge=checkpoints/bridge.pt --n=800]

A logistic-regression probe predicts the 4-way direction of a 'move' clip from (a) the vision
encoder's tokens of the first and the last frame, and (b) the resampler's latents of the whole clip.
If (a) is high and (b) at chance, the resampler drops the motion; both at chance: the encoder.
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

from emojiworld.concepts import load_world
from emojiworld.images import DIRECTIONS
from emojiworld.samples import draw_clip
from flamingo.preprocess import normalize
from train.flamingo import VALIDATION_STYLE, load_trained


def linear_probe(x: torch.Tensor, y: torch.Tensor, n_train: int, steps=500) -> float:
    """Held-out accuracy of a softmax regression on standardised features (weight decay 1e-3)."""
    x = (x - x[:n_train].mean(0)) / (x[:n_train].std(0) + 1e-5)
    w = torch.zeros(x.shape[1], 4, requires_grad=True)
    b = torch.zeros(4, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=1e-2, weight_decay=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(x[:n_train] @ w + b, y[:n_train]).backward()
        opt.step()
    return ((x[n_train:] @ w + b).argmax(1) == y[n_train:]).float().mean().item()


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", default="checkpoints/bridge.pt")
    ap.add_argument("--n", type=int, default=800)
    args = ap.parse_args()
    model, _ = load_trained(args.bridge)
    world, rng = load_world(), np.random.default_rng(0)
    ends, latents, labels = [], [], []
    for _ in range(args.n):
        frames, facts = draw_clip(world, world.split("train"), VALIDATION_STYLE, rng, event="move")
        pixels = torch.from_numpy(normalize(np.stack(frames), model.cfg.mean, model.cfg.std))
        feats = model.vision_encoder(pixels)  # [t, n, d]
        ends.append(torch.cat([feats[0].flatten(), feats[-1].flatten()]))
        latents.append(model.resampler(feats.unsqueeze(0))[0].flatten())
        labels.append(DIRECTIONS.index(facts["direction"]))
    y, n_train = torch.tensor(labels), int(0.8 * args.n)
    with torch.enable_grad():
        print(f"direction from first+last frame features: {linear_probe(torch.stack(ends), y, n_train):.2f}")
        print(f"direction from resampler latents:         {linear_probe(torch.stack(latents), y, n_train):.2f}")
    print(f"chance: {np.bincount(labels[n_train:]).max() / (args.n - n_train):.2f} (majority class)")


if __name__ == "__main__":
    main()
