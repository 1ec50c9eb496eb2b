"""Two bridges of one lineage mixed weight by weight: (1 - a) * A + a * B.

    cd models && /usr/bin/python3 tools/bridge_mix.py checkpoints/v2/bridge.pt runs/v2/bridge-3sd.pt 0.5 runs/v2/bridge-3sdm50.pt

Both are tools/bridge_of.py files (the resampler and the gated xattn-dense blocks). Mixing is only
meaningful when B was trained on from A (or both from one start), so that the points between them
stay in one basin, as a run's weight average does. The result keeps B's config and meta, with the
mix recorded under meta["mix"].
"""
from __future__ import annotations

import argparse

import torch


def mix(a_bridge: dict, b_bridge: dict, a: float) -> dict:
    if not 0.0 <= a <= 1.0:
        raise SystemExit(f"the weight of B must be in [0, 1], got {a}")
    A, B = a_bridge["model"], b_bridge["model"]
    if A.keys() != B.keys():
        raise SystemExit(f"the bridges hold different tensors: {sorted(A.keys() ^ B.keys())[:5]}")
    for k in A:
        if A[k].shape != B[k].shape:
            raise SystemExit(f"{k}: shapes {tuple(A[k].shape)} and {tuple(B[k].shape)} differ")
    model = {k: torch.lerp(A[k].float(), B[k].float(), a).to(B[k].dtype) if B[k].is_floating_point() else B[k]
             for k in B}
    meta = dict(b_bridge.get("meta", {}))
    meta["mix"] = {"b_weight": a, "a_meta": a_bridge.get("meta", {})}
    return {"model": model, "config": b_bridge["config"], "meta": meta}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="bridge A (weight 1 - a)")
    ap.add_argument("b", help="bridge B (weight a)")
    ap.add_argument("weight", type=float, help="a: the weight of B, in [0, 1]")
    ap.add_argument("out")
    args = ap.parse_args()
    out = mix(torch.load(args.a, map_location="cpu"), torch.load(args.b, map_location="cpu"), args.weight)
    torch.save(out, args.out)
    print(f"{args.out}: {len(out['model'])} tensors, {args.weight:g} of {args.b} and {1 - args.weight:g} of {args.a}")


if __name__ == "__main__":
    main()
