"""Export a trained Flamingo to a model folder: three ONNX graphs, tokenizer.json, manifest.json.

    /usr/bin/python3 -m flamingo.export --checkpoint runs/stage3/final.pt --out ../public/models/emojiworld

The graph contracts are in docs/MODEL_FORMAT.md. The per-token image index is an int64 input
computed outside the graph (mask.py), never a boolean CumSum inside it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
import torch.nn as nn

from .model import Flamingo, FlamingoConfig
from .quantize import write_variants
from .tokenizer import Tokenizer

OPSET = 17


class LMGraph(nn.Module):
    """FlamingoLM with flat past/present tensors, the way ONNX wants its inputs."""

    def __init__(self, flamingo_lm):
        super().__init__()
        self.flamingo_lm = flamingo_lm

    def forward(self, input_ids, media_index, media_latents, *past_flat):
        past = [(past_flat[2 * i], past_flat[2 * i + 1]) for i in range(len(past_flat) // 2)]
        logits, present = self.flamingo_lm(input_ids, media_index, media_latents, past)
        return (logits, *[t for kv in present for t in kv])


def export_graphs(model: Flamingo, out: Path) -> None:
    cfg = model.cfg
    model = model.eval()
    S, n, dv, L = cfg.image_size, cfg.n_vision_tokens, cfg.d_vision, cfg.n_latents
    with torch.no_grad():
        torch.onnx.export(model.vision_encoder, (torch.randn(2, 3, S, S),), out / "vision_encoder.onnx",
                          input_names=["pixel_values"], output_names=["image_features"],
                          dynamic_axes={"pixel_values": {0: "n"}, "image_features": {0: "n"}}, opset_version=OPSET)
        torch.onnx.export(model.resampler, (torch.randn(1, 2, n, dv),), out / "resampler.onnx",
                          input_names=["image_features"], output_names=["latents"],
                          dynamic_axes={"image_features": {0: "batch", 1: "frames"}, "latents": {0: "batch"}},
                          opset_version=OPSET)
        layers, H, dh = cfg.n_layers, cfg.n_heads, cfg.head_dim
        ids = torch.randint(0, cfg.vocab_size, (1, 5))
        midx = torch.tensor([[-1, 0, 0, 1, 1]])
        media = torch.randn(1, 2, L, dv)
        past = [torch.randn(1, H, 3, dh) for _ in range(2 * layers)]
        past_names = [f"past_{kv}_{i}" for i in range(layers) for kv in ("key", "value")]
        present_names = [f"present_{kv}_{i}" for i in range(layers) for kv in ("key", "value")]
        dyn = {"input_ids": {0: "batch", 1: "seq"}, "media_index": {0: "batch", 1: "seq"},
               "media_latents": {0: "batch", 1: "media"}, "logits": {0: "batch", 1: "seq"}}
        dyn.update({name: {0: "batch", 2: "past"} for name in past_names})
        dyn.update({name: {0: "batch", 2: "total"} for name in present_names})
        torch.onnx.export(LMGraph(model.flamingo_lm), (ids, midx, media, *past), out / "lm.onnx",
                          input_names=["input_ids", "media_index", "media_latents", *past_names],
                          output_names=["logits", *present_names], dynamic_axes=dyn, opset_version=OPSET)


def file_entry(path: Path) -> dict:
    data = path.read_bytes()
    return {"path": path.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


PROMPT_TEMPLATES = {
    "naming": {"example": "<image>Output: {caption}.<|endofchunk|>", "query": "<image>Output:"},
    "question_answering": {"example": "<image>Question: {question} Short answer: {answer}<|endofchunk|>",
                           "query": "<image>Question: {question} Short answer:"},
}


def write_manifest(cfg: FlamingoConfig, out: Path, meta: dict) -> dict:
    manifest = {
        "format": "flamingo-web/1",
        "name": meta.get("name", "emojiworld"),
        "version": meta.get("version", "0.1.0"),
        "description": meta.get("description", ""),
        "files": {role: file_entry(out / f"{role}.onnx") for role in ("vision_encoder", "resampler", "lm")},
        "vision": {"image_size": cfg.image_size, "mean": list(cfg.mean), "std": list(cfg.std),
                   "background": list(cfg.background), "n_tokens": cfg.n_vision_tokens, "d_vision": cfg.d_vision,
                   "max_frames": cfg.max_frames},
        "resampler": {"n_latents": cfg.n_latents, "layers": cfg.resampler_layers, "heads": cfg.resampler_heads,
                      "time_groups": cfg.resampler_time_groups},
        "lm": {"vocab_size": cfg.vocab_size, "d_model": cfg.d_model, "layers": cfg.n_layers, "heads": cfg.n_heads,
               "head_dim": cfg.head_dim, "xattn_layers": cfg.xattn_layers, "context_length": cfg.context_length},
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
    return write_manifest(model.cfg, out, meta or {})


def load_checkpoint(path) -> tuple[Flamingo, dict]:
    ckpt = torch.load(path, map_location="cpu")
    model = Flamingo(FlamingoConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tokenizer", help="tokenizer.json (default: the one named in the checkpoint)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--extra", nargs="*", default=[], help="files copied into the model folder (card, splits)")
    ap.add_argument("--no_variants", action="store_true", help="float32 only (default: also the quantize.py variants)")
    args = ap.parse_args()
    model, ckpt = load_checkpoint(args.checkpoint)
    tok = Tokenizer.load(args.tokenizer or ckpt["tokenizer"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for extra in args.extra:
        shutil.copy(extra, out / os.path.basename(extra))
    manifest = export_model(model, tok, out, ckpt.get("meta", {}))
    total = sum(f["bytes"] for f in manifest["files"].values())
    print(f"exported to {out}: {total / 1e6:.2f} MB in {len(manifest['files'])} files")
    if not args.no_variants:  # quantised variants of the new graphs (docs/MODEL_FORMAT.md, "Variants")
        for name, variant in write_variants(out)["variants"].items():
            print(f"variant {name}: {sum(f['bytes'] for f in variant['files'].values()) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
