"""Export the shipped model's frozen language model alone (no cross-attention) as a decoder-only
model in the folder layout transformers.js loads: the peer that `npm run bench` compares our
browser decode with (vs_transformersjs_ratio), on a model of exactly our LM's size and shape.

    /usr/bin/python3 models/tools/export_lm_transformersjs.py --out DIR

DIR gets config.json (model_type "llama": transformers.js reads its cache shapes from
num_key_value_heads / num_hidden_layers / head_dim, and feeds `past_key_values.{i}.key|value`
and reads `present.{i}.key|value`, the Hugging Face Optimum convention), generation_config.json,
tokenizer.json + tokenizer_config.json (ours) and onnx/model.onnx. The graph is traced with
torch.onnx.export at opset 17, as flamingo/export.py traces lm.onnx, so both carry the same
exporter's bookkeeping; its blocks are our LM's (LayerNorm, GELU MLP, RoPE), only named as a
llama for the loader, which never looks inside the graph.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
import torch.nn as nn

MODELS = Path(__file__).resolve().parents[1]  # models/: `import flamingo`, `import train`
sys.path.insert(0, str(MODELS))
from flamingo.model import rotate_half, split_heads, merge_heads  # noqa: E402
from train.flamingo import load_shipped  # noqa: E402

OPSET = 17


class DecoderGraph(nn.Module):
    """Our LanguageModel with the Optimum decoder interface: input_ids, attention_mask,
    position_ids and the past per layer in; logits and the present per layer out."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        lm = self.lm
        freqs = position_ids[:, None, :, None].float() * lm.inv_freq[None, None, None, :]
        emb = torch.cat([freqs, freqs], dim=-1)  # [b, 1, s, dh]
        cos, sin = emb.cos(), emb.sin()
        x = lm.wte(input_ids)
        s = input_ids.shape[1]
        present = []
        for i, block in enumerate(lm.blocks):
            attn = block.attn
            h = block.ln1(x)
            q, k, v = (split_heads(t, attn.heads) for t in attn.qkv(h).chunk(3, dim=-1))
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            k = torch.cat([past_flat[2 * i], k], dim=2)
            v = torch.cat([past_flat[2 * i + 1], v], dim=2)
            total = k.shape[2]
            qpos = torch.arange(s)[:, None] + (total - s)
            allowed = (torch.arange(total)[None, :] <= qpos)[None, None] & (attention_mask[:, None, None, :] > 0)
            scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
            a = scores.masked_fill(~allowed, -1e9).softmax(dim=-1)
            x = x + attn.out(merge_heads(a @ v))
            x = x + block.mlp(block.ln2(x))
            present += [k, v]
        return (lm.lm_head(lm.ln_f(x)), *present)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    a = p.parse_args()
    out = Path(a.out).resolve()
    os.chdir(MODELS)  # the checkpoints' paths are relative to models/
    model, tok = load_shipped()
    cfg = model.cfg
    lm = model.flamingo_lm.lm.eval()
    manifest_dir = MODELS.parent / "public/models/emojiworld"
    special = json.loads((manifest_dir / "manifest.json").read_text())["special_tokens"]
    (out / "onnx").mkdir(parents=True, exist_ok=True)

    layers, H, dh = cfg.n_layers, cfg.n_heads, cfg.head_dim
    names_in = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    names_out = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    dyn = {"input_ids": {0: "batch_size", 1: "sequence_length"},
           "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
           "position_ids": {0: "batch_size", 1: "sequence_length"},
           "logits": {0: "batch_size", 1: "sequence_length"}}
    dyn.update({n: {0: "batch_size", 2: "past_sequence_length"} for n in names_in})
    dyn.update({n: {0: "batch_size", 2: "total_sequence_length"} for n in names_out})
    ids = torch.randint(0, cfg.vocab_size, (1, 5))
    past = [torch.randn(1, H, 3, dh) for _ in range(2 * layers)]
    with torch.no_grad():
        torch.onnx.export(DecoderGraph(lm), (ids, torch.ones(1, 8, dtype=torch.long), torch.arange(3, 8)[None], *past),
                          out / "onnx/model.onnx", input_names=["input_ids", "attention_mask", "position_ids", *names_in],
                          output_names=["logits", *names_out], dynamic_axes=dyn, opset_version=OPSET)

    bos, eoc, pad = (tok.token_id(special[k]) for k in ("bos", "end_of_chunk", "pad"))
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model, "intermediate_size": 4 * cfg.d_model,
        "num_hidden_layers": layers, "num_attention_heads": H, "num_key_value_heads": H, "head_dim": dh,
        "max_position_embeddings": cfg.context_length, "rope_theta": cfg.rope_base, "tie_word_embeddings": True,
        "bos_token_id": bos, "eos_token_id": eoc, "pad_token_id": pad,
        "transformers.js_config": {"dtype": "fp32"},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": bos, "eos_token_id": eoc, "pad_token_id": pad}, indent=2) + "\n")
    shutil.copy(manifest_dir / "tokenizer.json", out / "tokenizer.json")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": special["bos"], "eos_token": special["end_of_chunk"],
        "pad_token": special["pad"], "unk_token": special["unk"], "add_bos_token": False,
        "model_max_length": cfg.context_length,
    }, indent=2) + "\n")

    # The graph must be the LM: its logits equal FlamingoLM's with the bridge switched off.
    with torch.no_grad():
        x = torch.randint(0, cfg.vocab_size, (1, 7))
        ref, _ = model.flamingo_lm(x, use_media=False)
        empty = [torch.zeros(1, H, 0, dh) for _ in range(2 * layers)]
        got = DecoderGraph(lm)(x, torch.ones(1, 7, dtype=torch.long), torch.arange(7)[None], *empty)[0]
        assert torch.allclose(ref, got, atol=1e-4), float((ref - got).abs().max())
    print(json.dumps({"out": str(out), "layers": layers, "heads": H, "head_dim": dh, "d_model": cfg.d_model,
                      "vocab": cfg.vocab_size}))


if __name__ == "__main__":
    main()
