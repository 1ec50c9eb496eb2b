"""Convert an OpenFlamingo model (what its users have) into a flamingo-web model folder.

    /usr/bin/python3 -m flamingo.convert_openflamingo \\
        --checkpoint checkpoint.pt          # OpenFlamingo's release: perceiver.*, gated blocks, embeddings
        --clip clip.pt                      # open_clip ViT-L-14 (openai) state dict: visual.*
        --lm mpt-1b/pytorch_model.bin --lm_config mpt-1b/config.json   # MPT, or GPT-NeoX (4B)
        --tokenizer tokenizer.json          # GPT-NeoX's (EleutherAI/gpt-neox-20b)
        --out ../public/models/openflamingo-3b

OpenFlamingo loads its checkpoint with strict=False on top of the frozen CLIP and MPT: the same
here. The three state dicts are merged at OpenFlamingo's key names, the checkpoint's embeddings
(whose <image> and <|endofchunk|> rows were trained) replacing the LM's; keys of other parts (CLIP's
text tower) are ignored, and a key the model needs but no file has is an error that names it. Sizes
are read from the weights' shapes; what shapes cannot tell (head counts, ALiBi or rotary settings)
comes from the LM's config.json and OpenFlamingo's defaults (64-wide heads). The LM is MPT
(MosaicGPT layout: OpenFlamingo-3B, -9B) or GPT-NeoX (OpenFlamingo-4B's RedPajama-INCITE).

Writes the four graphs of docs/MODEL_FORMAT.md, tokenizer.json (with OpenFlamingo's added tokens)
and manifest.json. The graphs' semantics are tested against flamingo/openflamingo.py, the PyTorch
reference of OpenFlamingo's forward (models/tests/test_openflamingo.py, src/engine/openflamingo.test.ts).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import onnx
import torch

from .export import FORMAT
from .external_data import SHARD_BYTES, ShardWriter, file_entry, save_sharded, tensor_bytes
from .onnx_openflamingo import build_lm, build_xattn_kv, gate_values
from .openflamingo import (CLIP_MEAN, CLIP_STD, FlamingoLayer, OpenFlamingo, OpenFlamingoConfig,
                           ResidualAttentionBlock)
from .quantize import write_variants

OPSET = 17
GRAPHS = ("vision_encoder", "resampler", "xattn_kv", "lm")
# OpenFlamingo adds these to GPT-NeoX's tokenizer, in this order (ids 50277, 50278, 50279 there)
ADDED_TOKENS = ["<|endofchunk|>", "<image>", "<PAD>"]
PROMPT_TEMPLATES = {  # OpenFlamingo's evaluation prompts
    "captioning": {"example": "<image>Output:{caption}<|endofchunk|>", "query": "<image>Output:"},
    "question_answering": {"example": "<image>Question:{question} Short answer:{answer}<|endofchunk|>",
                           "query": "<image>Question:{question} Short answer:"},
}


class ConversionError(Exception):
    pass


def load_state_dict(path) -> dict:
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "model_state_dict" in sd:  # OpenFlamingo's training checkpoints wrap it
        sd = sd["model_state_dict"]
    return {k.removeprefix("module."): v for k, v in sd.items()}


# buffers some language model files carry (GPT-NeoX's causal mask and rotary table): not weights
BUFFERS = re.compile(r"\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$")
LAYERS = {"mpt": "lang_encoder.transformer.blocks", "gpt_neox": "lang_encoder.gpt_neox.layers"}
EMBEDDING = {"mpt": "lang_encoder.transformer.wte.weight", "gpt_neox": "lang_encoder.gpt_neox.embed_in.weight"}


def merge(checkpoint: dict, clip: dict, lm: dict) -> dict:
    """The three sources at OpenFlamingo's full key names (vision_encoder.*, perceiver.*, lang_encoder.*)."""
    merged = {}
    for k, v in clip.items():
        if k.startswith("visual."):
            merged["vision_encoder." + k[len("visual."):]] = v
    for k, v in lm.items():
        k = k.removeprefix("lang_encoder.")
        if k.startswith(("transformer.", "gpt_neox.", "embed_out.")) and not BUFFERS.search(k):
            # a frozen decoder layer sits inside OpenFlamingo's wrapper as N.decoder_layer
            k = re.sub(r"^(transformer\.blocks|gpt_neox\.layers)\.(\d+)\.(?!decoder_layer\.)", r"\1.\2.decoder_layer.", k)
            merged["lang_encoder." + k] = v
    merged.update(checkpoint)  # the trained parts (and the embeddings) win
    return merged


def count(prefix_re: str, keys) -> int:
    found = {int(m.group(1)) for k in keys if (m := re.match(prefix_re, k))}
    return max(found) + 1 if found else 0


def lm_numbers(arch: str, sd: dict, config: dict) -> dict:
    """The language model's settings from its config.json (MPT's or Hugging Face GPT-NeoX's)."""
    d = sd[EMBEDDING[arch]].shape[1]
    if arch == "mpt":
        if config.get("n_heads") is None:
            raise ConversionError("MPT's config.json has no n_heads")
        if not config.get("alibi", True) or not config.get("attn_qk_ln", True):
            raise ConversionError("only MPT with ALiBi and q/k LayerNorms (MPT-1B's MosaicGPT layout) is supported")
        up = sd["lang_encoder.transformer.blocks.0.decoder_layer.mlp.mlp_up.weight"]
        return {"n_heads": config["n_heads"], "mlp_ratio": up.shape[0] // d,
                "alibi_bias_max": config.get("alibi_bias_max", 8), "max_seq_len": config.get("max_seq_len", 2048)}
    if config.get("num_attention_heads") is None:
        raise ConversionError("GPT-NeoX's config.json has no num_attention_heads")
    up = sd["lang_encoder.gpt_neox.layers.0.decoder_layer.mlp.dense_h_to_4h.weight"]
    if up.shape[0] % d:
        raise ConversionError(f"an MLP width of {up.shape[0]} is not a multiple of {d}")
    return {"n_heads": config["num_attention_heads"], "mlp_ratio": up.shape[0] // d,
            "rotary_pct": config.get("rotary_pct", 0.25), "rotary_base": config.get("rotary_emb_base", 10000.0),
            "parallel_residual": config.get("use_parallel_residual", True),
            "layer_norm_eps": config.get("layer_norm_eps", 1e-5), "max_seq_len": config.get("max_position_embeddings", 2048)}


def infer_config(sd: dict, lm_config: dict, head_width: int = 64, xattn_dim_head: int = 64,
                 perceiver_dim_head: int = 64, quick_gelu: bool = True) -> OpenFlamingoConfig:
    """Sizes from the shapes; head counts from the LM's config and OpenFlamingo's fixed head widths."""
    arch = "gpt_neox" if EMBEDDING["gpt_neox"] in sd else "mpt"
    need = ["vision_encoder.conv1.weight", "vision_encoder.positional_embedding", "perceiver.latents", EMBEDDING[arch]]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ConversionError(f"no file has {', '.join(missing)}: is each of --checkpoint, --clip, --lm the right file?")
    conv = sd["vision_encoder.conv1.weight"]
    width, patch = conv.shape[0], conv.shape[2]
    grid = round((sd["vision_encoder.positional_embedding"].shape[0] - 1) ** 0.5)
    vocab, d = sd[EMBEDDING[arch]].shape
    layers = re.escape(LAYERS[arch])
    n_layers = count(layers + r"\.(\d+)\.", sd)
    gated = sorted({int(m.group(1)) for k in sd if (m := re.match(layers + r"\.(\d+)\.gated_cross_attn_layer\.", k))})
    if not gated:
        raise ConversionError("the checkpoint has no gated_cross_attn_layer weights")
    every = gated[0] + 1
    if gated != [i for i in range(n_layers) if (i + 1) % every == 0]:
        raise ConversionError(f"gated blocks at layers {gated} do not follow OpenFlamingo's (i + 1) % n == 0 rule")
    block0 = f"{LAYERS[arch]}.{gated[0]}.gated_cross_attn_layer."
    xattn_inner = sd[block0 + "attn.to_q.weight"].shape[0]
    perceiver_inner = sd["perceiver.layers.0.0.to_q.weight"].shape[0]
    return OpenFlamingoConfig(
        image_size=grid * patch, patch_size=patch, vision_width=width,
        vision_layers=count(r"vision_encoder\.transformer\.resblocks\.(\d+)\.", sd), vision_heads=width // head_width,
        vision_mlp_ratio=sd["vision_encoder.transformer.resblocks.0.mlp.c_fc.weight"].shape[0] / width,
        vision_embed_dim=sd["vision_encoder.proj"].shape[1] if "vision_encoder.proj" in sd else width,
        quick_gelu=quick_gelu,
        n_latents=sd["perceiver.latents"].shape[0], perceiver_depth=count(r"perceiver\.layers\.(\d+)\.", sd),
        perceiver_heads=perceiver_inner // perceiver_dim_head, perceiver_dim_head=perceiver_dim_head,
        lm_arch=arch, vocab_size=vocab, d_model=d, n_layers=n_layers, **lm_numbers(arch, sd, lm_config),
        cross_attn_every_n_layers=every, xattn_heads=xattn_inner // xattn_dim_head, xattn_dim_head=xattn_dim_head,
        xattn_ff_mult=sd[block0 + "ff.1.weight"].shape[0] // d)


def build_model(checkpoint: dict, clip: dict, lm: dict, lm_config: dict, media_token_id: int, **heads) -> OpenFlamingo:
    """The reference model with the three sources loaded (strict=False across files, strict within
    the model). It holds the sources' own float32 tensors, not copies."""
    sd = merge(checkpoint, clip, lm)
    cfg = infer_config(sd, lm_config, **heads)
    model, own = assemble(cfg, media_token_id, sd)
    missing = [k for k in own if k not in sd]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ConversionError(f"missing weights: {shown}")
    parts = ("vision_encoder.", "perceiver.", "lang_encoder.")
    unknown = [k for k in sd if k.startswith(parts) and k not in own]
    # keys in the model's own namespaces that it has no place for mean another layout (biases where
    # MPT has none, GPT-NeoX's names): better an error than weights silently dropped
    unknown = [k for k in unknown if not k.startswith("lang_encoder.old_decoder_blocks.")]
    if unknown:
        raise ConversionError(f"weights this layout has no place for: {', '.join(unknown[:5])}")
    for k, shape in own.items():
        if tuple(sd[k].shape) != shape:
            raise ConversionError(f"{k} has shape {tuple(sd[k].shape)}, expected {shape}")
    return model


def assemble(cfg: OpenFlamingoConfig, media_token_id: int, sd: dict) -> tuple[OpenFlamingo, dict[str, tuple]]:
    """OpenFlamingo holding sd's tensors themselves, built a layer at a time: each new layer's own
    initial weights are replaced by sd's as soon as it exists, so that there are never two copies
    of the 10 GB of OpenFlamingo-3B's weights (torch 1.13 cannot build a model without allocating
    it). Returns the model and the shape it expects at each of its keys (a key sd lacks or has at
    another shape keeps its initial weights: build_model refuses the model then)."""
    model = OpenFlamingo(dataclasses.replace(cfg, n_layers=0, vision_layers=0), media_token_id)
    model.cfg = cfg
    expected = take(model, "", sd)
    resblocks = model.vision_encoder.transformer.resblocks
    for i in range(cfg.vision_layers):
        block = ResidualAttentionBlock(cfg.vision_width, cfg.vision_heads, cfg.vision_mlp_ratio, cfg.quick_gelu)
        expected |= take(block, f"vision_encoder.transformer.resblocks.{i}.", sd)
        resblocks.append(block)
    layers = model.lang_encoder.parts()[1]
    for i in range(cfg.n_layers):
        layer = FlamingoLayer(cfg, i in cfg.xattn_layers)
        expected |= take(layer, f"{LAYERS[cfg.lm_arch]}.{i}.", sd)
        layers.append(layer)
    return model.eval(), expected


def take(module: torch.nn.Module, prefix: str, sd: dict) -> dict[str, tuple]:
    """Replaces each parameter of `module` by sd[prefix + name] where sd has it at its shape."""
    expected = {}
    for name, param in list(module.named_parameters()):
        key = prefix + name
        expected[key] = tuple(param.shape)
        if key in sd and tuple(sd[key].shape) == expected[key]:
            owner, _, attr = name.rpartition(".")
            setattr(module.get_submodule(owner), attr, torch.nn.Parameter(sd[key].float()))
    return expected


# ----------------------------------------------------------------------------- graphs

class VisionGraph(torch.nn.Module):
    """pixel_values [N, 3, S, S] -> image_features [N, grid^2, width]: patch tokens, no CLS, pre-ln_post."""

    def __init__(self, model: OpenFlamingo):
        super().__init__()
        self.visual = model.vision_encoder

    def forward(self, pixel_values):
        return self.visual(pixel_values)[1]


class ResamplerGraph(torch.nn.Module):
    """image_features [B, F, n, d] (one image or clip per row) -> latents [B, l, d] and the last layer's
    attention [B, h, l, F*n + l] (the app's pictures)."""

    def __init__(self, model: OpenFlamingo):
        super().__init__()
        self.perceiver = model.perceiver

    def forward(self, image_features):
        latents = self.perceiver(image_features.unsqueeze(1))[:, 0]
        return latents, self.perceiver.layers[-1][0].attention[:, :, 0]


def export_graphs(model: OpenFlamingo, out: Path, shard_bytes: int = SHARD_BYTES) -> dict[str, list[Path]]:
    """The four graphs; weights past shard_bytes go to external data shards (returned per graph).

    Consumes the model: each part is let go once its graphs are written (the language model first,
    then the resampler, then the ViT), so that memory falls as the files grow. The LM's graphs are
    streamed (each weight written to its shard as the builder makes it); the traced two are loaded
    one at a time, and their weights moved to shards."""
    cfg = model.cfg
    S, n = cfg.image_size, cfg.grid ** 2
    shards = {}
    for role, build in (("xattn_kv", build_xattn_kv), ("lm", build_lm)):
        writer = ShardWriter(out / f"{role}.onnx", shard_bytes)
        shards[role] = writer.save(build(model, writer))
    del model.lang_encoder
    traced = {"resampler": (ResamplerGraph(model), torch.randn(1, 2, n, cfg.vision_width),
                            {"input_names": ["image_features"], "output_names": ["latents", "latent_attention"],
                             "dynamic_axes": {"image_features": {0: "batch", 1: "frames"}, "latents": {0: "batch"},
                                              "latent_attention": {0: "batch", 3: "keys"}}}),
              "vision_encoder": (VisionGraph(model), torch.randn(2, 3, S, S),
                                 {"input_names": ["pixel_values"], "output_names": ["image_features"],
                                  "dynamic_axes": {"pixel_values": {0: "n"}, "image_features": {0: "n"}}})}
    del model.perceiver, model.vision_encoder  # the graphs' modules hold them until they are traced
    for role in ("resampler", "vision_encoder"):
        graph, example, names = traced.pop(role)
        path = out / f"{role}.onnx"
        with torch.no_grad():
            torch.onnx.export(graph, (example,), path, opset_version=OPSET, **names)
        del graph
        shards[role] = save_sharded(onnx.load(str(path)), path, shard_bytes)
    return {role: shards[role] for role in GRAPHS}


# ----------------------------------------------------------------------------- tokenizer and manifest

def with_added_tokens(tokenizer: dict) -> dict:
    """GPT-NeoX's tokenizer.json plus OpenFlamingo's <|endofchunk|>, <image>, <PAD> where missing."""
    tokenizer = json.loads(json.dumps(tokenizer))
    added = tokenizer.setdefault("added_tokens", [])
    have = {t["content"] for t in added} | set(tokenizer["model"]["vocab"])
    next_id = max([*tokenizer["model"]["vocab"].values(), *(t["id"] for t in added)]) + 1
    for content in ADDED_TOKENS:
        if content not in have:
            added.append({"id": next_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True})
            next_id += 1
    return tokenizer


def token_id(tokenizer: dict, content: str) -> int:
    for t in tokenizer.get("added_tokens", []):
        if t["content"] == content:
            return t["id"]
    return tokenizer["model"]["vocab"][content]


def write_manifest(cfg: OpenFlamingoConfig, gates: list[dict], out: Path, meta: dict,
                   shards: dict[str, list[Path]]) -> dict:
    manifest = {
        "format": FORMAT,
        "name": meta.get("name", "openflamingo"),
        "version": meta.get("version", "1.0.0"),
        "description": meta.get("description", "OpenFlamingo (Awadalla et al. 2023), converted"),
        "files": {role: graph_entry(out / f"{role}.onnx", shards[role]) for role in GRAPHS},
        "vision": {"image_size": cfg.image_size, "mean": list(CLIP_MEAN), "std": list(CLIP_STD),
                   "background": [255, 255, 255], "n_tokens": cfg.grid ** 2, "d_vision": cfg.vision_width,
                   "max_frames": 1},  # OpenFlamingo has no frame embeddings and never saw a clip
        "resampler": {"n_latents": cfg.n_latents, "layers": cfg.perceiver_depth, "heads": cfg.perceiver_heads,
                      "time_groups": 1},
        "lm": {"vocab_size": cfg.vocab_size, "d_model": cfg.d_model, "layers": cfg.n_layers, "heads": cfg.n_heads,
               "head_dim": cfg.d_model // cfg.n_heads, "xattn_layers": cfg.xattn_layers,
               "xattn_heads": cfg.xattn_heads, "xattn_head_dim": cfg.xattn_dim_head,
               "context_length": cfg.max_seq_len, "positions": "alibi" if cfg.lm_arch == "mpt" else "rope",
               "gates": gates},
        # GPT-NeoX's tokenizer adds no BOS, and OpenFlamingo's prompts start without one: no "bos"
        "special_tokens": {"image": "<image>", "end_of_chunk": "<|endofchunk|>", "pad": "<PAD>", "unk": "<|endoftext|>"},
        "prompt_templates": PROMPT_TEMPLATES,
        "license": meta.get("license", "OpenFlamingo: MIT; CLIP ViT-L/14: MIT; "
                            + ("MPT: Apache 2.0" if cfg.lm_arch == "mpt" else "RedPajama-INCITE: Apache 2.0")),
        "training_data": meta.get("training_data", "OpenFlamingo: LAION-2B and Multimodal C4 (see its model card)"),
    }
    manifest["files"]["tokenizer"] = file_entry(out / "tokenizer.json")
    manifest["requirements"] = requirements(cfg, out, manifest["files"])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def graph_entry(path: Path, shards: list[Path]) -> dict:
    entry = file_entry(path)
    if shards:
        entry["external_data"] = [file_entry(p) for p in shards]
    return entry


def requirements(cfg: OpenFlamingoConfig, out: Path, files: dict) -> dict:
    """What the app checks before downloading (docs/MODEL_FORMAT.md, "Requirements"): the bytes to
    store, the memory to run (an estimate: the weights once in the runtime with a fifth more for its
    copies, a float32 KV cache of the full trained context, 64 MB of activations) and the largest
    single weight (one GPU buffer)."""
    stored = sum(f["bytes"] + sum(s["bytes"] for s in f.get("external_data", [])) for f in files.values())
    kv_cache = 2 * cfg.n_layers * cfg.max_seq_len * cfg.d_model * 4
    largest = 0
    for f in files.values():
        if f["path"].endswith(".onnx"):
            for t in onnx.load(str(out / f["path"]), load_external_data=False).graph.initializer:
                largest = max(largest, tensor_bytes(t))
    return {"storage_bytes": stored, "memory_bytes": int(stored * 1.2) + kv_cache + 64 * 2 ** 20,
            "largest_tensor_bytes": largest}


def add_variants(cfg: OpenFlamingoConfig, out: Path, shard_bytes: int) -> dict:
    """fp16 and q4 (quantize.py), each with its own requirements."""
    manifest = write_variants(out, shard_bytes=shard_bytes)
    for variant in manifest["variants"].values():
        variant["requirements"] = requirements(cfg, out, {**manifest["files"], **variant["files"]})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def convert(checkpoint: dict, clip: dict, lm: dict, lm_config: dict, tokenizer: dict, out, meta: dict | None = None,
            shard_bytes: int = SHARD_BYTES, variants: bool = True, **heads) -> dict:
    """Consumes the three state dicts (emptied once the model holds the weights: one copy less)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = with_added_tokens(tokenizer)
    model = build_model(checkpoint, clip, lm, lm_config, token_id(tokenizer, "<image>"), **heads)
    for source in (checkpoint, clip, lm):
        source.clear()
    n_tokens = max([*tokenizer["model"]["vocab"].values(), *(t["id"] for t in tokenizer["added_tokens"])]) + 1
    if n_tokens > model.cfg.vocab_size:
        raise ConversionError(f"tokenizer.json has {n_tokens} tokens, wte only {model.cfg.vocab_size} rows")
    cfg, gates = model.cfg, gate_values(model)
    shards = export_graphs(model, out, shard_bytes)  # consumes the model: the weights are in the files now
    del model
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    manifest = write_manifest(cfg, gates, out, meta or {}, shards)
    return add_variants(cfg, out, shard_bytes) if variants else manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="OpenFlamingo's checkpoint.pt")
    ap.add_argument("--clip", required=True, help="open_clip's ViT-L-14 (openai) state dict")
    ap.add_argument("--lm", "--mpt", dest="lm", required=True, nargs="+",
                    help="the language model's pytorch_model.bin (or its shards): MPT or GPT-NeoX")
    ap.add_argument("--lm_config", "--mpt_config", dest="lm_config", required=True,
                    help="its config.json (head count; ALiBi or rotary settings; context length)")
    ap.add_argument("--tokenizer", required=True, help="GPT-NeoX's tokenizer.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="openflamingo-3b")
    ap.add_argument("--shard_mb", type=int, default=SHARD_BYTES // 2 ** 20, help="external data shard size")
    ap.add_argument("--no_variants", action="store_true", help="float32 only (default: also fp16 and q4)")
    args = ap.parse_args()
    lm = {}
    for path in args.lm:
        lm.update(load_state_dict(path))
    manifest = convert(load_state_dict(args.checkpoint), load_state_dict(args.clip), lm,
                       json.loads(Path(args.lm_config).read_text()), json.loads(Path(args.tokenizer).read_text()),
                       args.out, {"name": args.name}, args.shard_mb * 2 ** 20, not args.no_variants)
    req = manifest["requirements"]
    print(f"converted to {args.out}: {req['storage_bytes'] / 1e9:.2f} GB stored, "
          f"{req['memory_bytes'] / 1e9:.2f} GB of memory to run")
    for name, variant in manifest.get("variants", {}).items():
        r = variant["requirements"]
        print(f"variant {name}: {r['storage_bytes'] / 1e9:.2f} GB stored, {r['memory_bytes'] / 1e9:.2f} GB to run")


if __name__ == "__main__":
    main()
