"""Export a trained Flamingo to a model folder: three ONNX graphs, tokenizer.json, manifest.json.

    /usr/bin/python3 -m flamingo.export --checkpoint runs/stage3/final.pt --out ../public/models/emojiworld

The graph contracts are in docs/MODEL_FORMAT.md. The per-token image index is an int64 input
computed outside the graph (mask.py), never a boolean CumSum inside it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import onnx
import torch

from .external_data import file_entry
from .model import Flamingo, FlamingoConfig, PerceiverResampler
from .onnx_lm import build_lm, build_xattn_kv, gate_values
from .onnx_resampler import build_resampler
from .quantize import write_variants
from .tokenizer import Tokenizer

OPSET = 17
FORMAT = "flamingo-web/2"
GRAPH_ROLES = ("vision_encoder", "resampler", "xattn_kv", "lm")


def export_graphs(model: Flamingo, out: Path) -> None:
    cfg = model.cfg
    model = model.eval()
    S, n, dv = cfg.image_size, cfg.n_vision_tokens, cfg.d_vision
    with torch.no_grad():
        torch.onnx.export(model.vision_encoder, (torch.randn(2, 3, S, S),), out / "vision_encoder.onnx",
                          input_names=["pixel_values"], output_names=["image_features"],
                          dynamic_axes={"pixel_values": {0: "n"}, "image_features": {0: "n"}}, opset_version=OPSET)
        # The Perceiver Resampler and the language model's graphs are written op by op (onnx_resampler.py,
        # onnx_lm.py), not traced; the MLP resampler (an ablation) is traced.
        if isinstance(model.resampler, PerceiverResampler):
            onnx.save(build_resampler(model.resampler, n), out / "resampler.onnx")
        else:
            torch.onnx.export(model.resampler, (torch.randn(1, 2, n, dv),), out / "resampler.onnx",
                              input_names=["image_features"], output_names=["latents"],
                              dynamic_axes={"image_features": {0: "batch", 1: "frames"}, "latents": {0: "batch"}},
                              opset_version=OPSET)
        onnx.save(build_xattn_kv(model.flamingo_lm), out / "xattn_kv.onnx")
        onnx.save(build_lm(model.flamingo_lm), out / "lm.onnx")


PROMPT_TEMPLATES = {
    "naming": {"example": "<image>Output: {caption}.<|endofchunk|>", "query": "<image>Output:"},
    "question_answering": {"example": "<image>Question: {question} Short answer: {answer}<|endofchunk|>",
                           "query": "<image>Question: {question} Short answer:"},
}


def write_manifest(model: Flamingo, out: Path, meta: dict) -> dict:
    cfg = model.cfg
    manifest = {
        "format": FORMAT,
        "name": meta.get("name", "emojiworld"),
        "version": meta.get("version", "0.1.0"),
        "description": meta.get("description", ""),
        "files": {role: file_entry(out / f"{role}.onnx") for role in GRAPH_ROLES},
        "vision": {"image_size": cfg.image_size, "mean": list(cfg.mean), "std": list(cfg.std),
                   "background": list(cfg.background), "n_tokens": cfg.n_vision_tokens, "d_vision": cfg.d_vision,
                   "max_frames": cfg.max_frames},
        "resampler": {"n_latents": cfg.n_latents, "layers": cfg.resampler_layers, "heads": cfg.resampler_heads,
                      "time_groups": cfg.resampler_time_groups},
        "lm": {"vocab_size": cfg.vocab_size, "d_model": cfg.d_model, "layers": cfg.n_layers, "heads": cfg.n_heads,
               "head_dim": cfg.head_dim, "xattn_layers": cfg.xattn_layers, "context_length": cfg.context_length,
               "gates": gate_values(model.flamingo_lm)},
        "special_tokens": {"image": "<image>", "end_of_chunk": "<|endofchunk|>", "bos": "<bos>", "pad": "<pad>",
                           "unk": "<unk>"},
        "prompt_templates": PROMPT_TEMPLATES,
        "license": meta.get("license", "MIT (code and weights); see MODEL_CARD.md for the artwork licences"),
        "training_data": meta.get("training_data", "EmojiWorld (see MODEL_CARD.md)"),
        "training": meta.get("training", {}),
    }
    manifest["files"]["tokenizer"] = file_entry(out / "tokenizer.json")
    if (out / "MODEL_CARD.md").exists():
        manifest["model_card"] = "MODEL_CARD.md"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def export_model(model: Flamingo, tokenizer: Tokenizer, out: Path, meta: dict | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    assert len(tokenizer.vocab) <= model.cfg.vocab_size, "tokenizer larger than the model's vocabulary"
    export_graphs(model, out)
    tokenizer.save(out / "tokenizer.json")
    return write_manifest(model, out, meta or {})


def load_checkpoint(path) -> tuple[Flamingo, dict]:
    ckpt = torch.load(path, map_location="cpu")
    model = Flamingo(FlamingoConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a whole trained model (train.flamingo's final.pt)")
    src.add_argument("--bridge", help="a trained bridge on the frozen stages of --vision and --lm (models/checkpoints/)")
    ap.add_argument("--vision", default="checkpoints/vision.pt")
    ap.add_argument("--lm", default="checkpoints/lm.pt")
    ap.add_argument("--tokenizer", help="tokenizer.json (default: the one named in the checkpoint)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--extra", nargs="*", default=[], help="files copied into the model folder (card, splits)")
    ap.add_argument("--no_variants", action="store_true", help="float32 only (default: also the quantize.py variants)")
    ap.add_argument("--version", help="the manifest's version (default: the checkpoint's meta, else 0.1.0)")
    args = ap.parse_args()
    if args.bridge:  # run from models/: the shipped model is kept as its three stages
        from train.flamingo import load_trained
        model, tok = load_trained(args.bridge, args.vision, args.lm, args.tokenizer or "../public/models/emojiworld/tokenizer.json")
        ckpt = torch.load(args.bridge, map_location="cpu")
        model.cfg.context_length = ckpt["config"]["context_length"]  # what stage 3 trained on
    else:
        model, ckpt = load_checkpoint(args.checkpoint)
        tok = Tokenizer.load(args.tokenizer or ckpt["tokenizer"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for extra in args.extra:
        shutil.copy(extra, out / os.path.basename(extra))
    meta = {**ckpt.get("meta", {}), **({"version": args.version} if args.version else {})}
    manifest = export_model(model, tok, out, meta)
    total = sum(f["bytes"] for f in manifest["files"].values())
    print(f"exported to {out}: {total / 1e6:.2f} MB in {len(manifest['files'])} files")
    if not args.no_variants:  # quantised variants of the new graphs (docs/MODEL_FORMAT.md, "Variants")
        for name, variant in write_variants(out)["variants"].items():
            print(f"variant {name}: {sum(f['bytes'] for f in variant['files'].values()) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
