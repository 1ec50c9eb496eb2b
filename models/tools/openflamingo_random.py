"""A random OpenFlamingo-3B-shaped model, converted, for timing and memory (docs/BENCHMARKS.md).

    /usr/bin/python3 models/tools/openflamingo_random.py OUT_DIR [--layers 24] [--vision_layers 24]

Real widths throughout: CLIP ViT-L/14 at 224 px (256 patch tokens, width 1024), the Perceiver
Resampler (64 latents, 8 x 64, 6 layers), MPT-1B (width 2048, 16 heads, ALiBi, OpenFlamingo's
50280-row wte) and OpenFlamingo-3B's gated blocks (8 x 64, ff x 4, before every layer). With
--layers and --vision_layers below 24, fewer of the LM's and the ViT's layers: each layer costs the
same, so a run at 2 layers measures the per-layer cost in minutes. The full model (2.56 billion
parameters, 9.9 GiB of float32 files) converts in about 10.4 GiB of RAM (docs/BENCHMARKS.md,
"OpenFlamingo-3B-shaped"). The weights are random (the real ones cannot be downloaded here): the
answers are noise, the cost is not.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/: `import flamingo`, `tools`
from flamingo.convert_openflamingo import convert  # noqa: E402
from flamingo.openflamingo import OpenFlamingo, OpenFlamingoConfig, split_state_dict  # noqa: E402
from tools.openflamingo_parity import tiny_tokenizer, token  # noqa: E402

MPT_1B = {"d_model": 2048, "n_heads": 16, "n_layers": 24, "alibi": True, "alibi_bias_max": 8, "attn_qk_ln": True,
          "no_bias": True, "max_seq_len": 2048}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=24, help="MPT-1B's decoder layers (24)")
    ap.add_argument("--vision_layers", type=int, default=24, help="ViT-L/14's blocks (24)")
    ap.add_argument("--no_variants", action="store_true")
    args = ap.parse_args()
    tokenizer = tiny_tokenizer()  # GPT-NeoX's has the same three added tokens; its size does not change the cost
    torch.manual_seed(0)
    cfg = OpenFlamingoConfig(n_layers=args.layers, vision_layers=args.vision_layers)
    t0 = time.time()
    with torch.no_grad():
        model = OpenFlamingo(cfg, token(tokenizer, "<image>")).eval()
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.fill_(0.5)
        checkpoint, clip, lm = split_state_dict(model.state_dict())
    del model
    built = time.time()
    manifest = convert(checkpoint, clip, lm, MPT_1B, tokenizer, args.out, {"name": f"openflamingo-3b-random-{args.layers}l"},
                       variants=not args.no_variants)
    req = manifest["requirements"]
    print(f"built in {built - t0:.0f} s, converted in {time.time() - built:.0f} s: "
          f"{req['storage_bytes'] / 2 ** 30:.2f} GiB stored, {req['memory_bytes'] / 2 ** 30:.2f} GiB to run, "
          f"lm.onnx in {len(manifest['files']['lm'].get('external_data', []))} shards")


if __name__ == "__main__":
    main()
