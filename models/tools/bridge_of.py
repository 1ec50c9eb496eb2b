"""The bridge of a stage-3 run, as models/checkpoints/ keeps it: the trained part only.

    cd models && /usr/bin/python3 tools/bridge_of.py runs/v2/flamingo/final.pt checkpoints/v2/bridge.pt
    cd models && /usr/bin/python3 tools/bridge_of.py runs/v2/flamingo/last.pt checkpoints/v2/bridge.pt   # a run stopped early

train.flamingo's final.pt holds the whole model (the frozen vision encoder and LM too, 9.8 MB);
what stage 3 trained is the Perceiver Resampler and the gated xattn-dense blocks (3.7 MB). The
file keeps the run's config and meta (its lineage), so that `flamingo.export --bridge` with the
same --vision and --lm rebuilds the exported model, and `train.flamingo --init` continues it.
From a last.pt (a run stopped before its end wrote final.pt) it takes the weight average when the
run kept one (--ema), as final.pt would have.
"""
from __future__ import annotations

import argparse

import torch

BRIDGE_PREFIXES = ("resampler.", "flamingo_lm.xattn.")  # Flamingo's trainable parts (model.py)


def bridge_of(final: dict) -> dict:
    weights = final.get("ema") or final["model"]  # last.pt of a --ema run: the average, as final.pt holds
    model = {k: v for k, v in weights.items() if k.startswith(BRIDGE_PREFIXES)}
    if not model:
        raise SystemExit("no resampler or xattn weights in this checkpoint: is it train.flamingo's final.pt?")
    return {"model": model, "config": final["config"], "meta": final.get("meta", {})}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("final", help="train.flamingo's final.pt")
    ap.add_argument("out")
    args = ap.parse_args()
    bridge = bridge_of(torch.load(args.final, map_location="cpu"))
    torch.save(bridge, args.out)
    steps = bridge["meta"].get("training", {}).get("stage3_steps")
    print(f"{args.out}: {len(bridge['model'])} tensors, "
          f"{sum(t.numel() for t in bridge['model'].values()) / 1e6:.2f} M parameters, stage-3 steps {steps}")


if __name__ == "__main__":
    main()
