"""Stage 1's probe, old encoder beside new: do the frozen features recognise the held-out style?

    cd models && /usr/bin/python3 -m probes.vision --encoders=checkpoints/vision.pt,runs/v2/vision/last.pt \
        [--out=eval/vision-probe.json]

Nearest-neighbour 5-way 1-shot on held-out concepts (train.vision.few_shot_probe): within OpenMoji, and
from each of model v1's training styles (supports) to OpenMoji (query); and naming without the LM
(train.vision.naming_probe): a training concept drawn in OpenMoji against prototypes made from those
styles. The same episodes for every encoder. A report on held-out data, never a criterion to tune by.
"""
from __future__ import annotations

import argparse
import json

import torch

from emojiworld.concepts import TRAIN_STYLES, load_world
from flamingo.model import FlamingoConfig, VisionEncoder
from flamingo.training import setup_threads
from train.vision import few_shot_probe, naming_probe


def load_encoder(path):
    ckpt = torch.load(path, map_location="cpu")
    cfg = FlamingoConfig.from_dict(ckpt["config"])
    vision = VisionEncoder(cfg)
    vision.load_state_dict(ckpt["vision"])
    return vision.eval(), cfg


def probe(vision, cfg, world, n) -> dict:
    heldout = world.heldout_style
    out = {f"nn_5way_1shot_{heldout}": few_shot_probe(vision, world, cfg, n_episodes=n, style=heldout)}
    for style in TRAIN_STYLES:
        out[f"nn_5way_1shot_{style}_to_{heldout}"] = few_shot_probe(vision, world, cfg, n_episodes=n, style=heldout,
                                                                    support_style=style)
    out[f"naming_{len(world.split('train'))}way_to_{heldout}"] = naming_probe(vision, world, cfg, TRAIN_STYLES,
                                                                               heldout, n_queries=n)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", required=True, help="comma-separated vision checkpoints")
    ap.add_argument("--n", type=int, default=500, help="episodes (and naming queries) per probe")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    setup_threads()
    world = load_world()
    results = {}
    for path in args.encoders.split(","):
        vision, cfg = load_encoder(path)
        results[path] = probe(vision, cfg, world, args.n)
        print(path, json.dumps({k: round(v, 3) for k, v in results[path].items()}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"n": args.n, "results": results}, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
