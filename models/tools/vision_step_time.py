"""What one stage-1 training step of the vision encoder costs at other widths: forward, backward and AdamW on a
batch of random images, the encoder alone (no data drawing, no text tower), each configuration timed in turns.
For estimates such as TRAINING_LOG_v2.md's "Next, if a GPU is lent"; compare rows of one run only.

    cd models && /usr/bin/python3 -m tools.vision_step_time [--configs 32,64,128,128:0 64,128,256,256:2] [--batch 256]

Each config is CHANNELS:IBN (FlamingoConfig.vision_channels and vision_ibn). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from flamingo.model import FlamingoConfig, VisionEncoder
from flamingo.training import setup_threads


def step_seconds(cfg: FlamingoConfig, batch: int, rounds: int) -> list[float]:
    enc = VisionEncoder(cfg).train()
    opt = torch.optim.AdamW(enc.parameters())
    x = torch.randn(batch, 3, cfg.image_size, cfg.image_size)
    out = []
    for _ in range(rounds + 1):  # the first round warms up
        t = time.perf_counter()
        loss = enc(x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        out.append(time.perf_counter() - t)
    return out[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["32,64,128,128:0", "64,128,256,256:2"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    setup_threads()
    rows = []
    for spec in args.configs:
        channels, _, ibn = spec.partition(":")
        cfg = FlamingoConfig(vision_channels=tuple(int(c) for c in channels.split(",")), vision_ibn=int(ibn or 0))
        params = sum(p.numel() for p in VisionEncoder(cfg).parameters())
        rows.append({"config": spec, "parameters": params,
                     "median_s": statistics.median(step_seconds(cfg, args.batch, args.rounds))})
    base = rows[0]["median_s"]
    for r in rows:
        r["vs_first"] = round(r["median_s"] / base, 2)
    print(json.dumps({"batch": args.batch, "threads": torch.get_num_threads(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
