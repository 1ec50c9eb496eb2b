"""Reference outputs for the OpenFlamingo parity tests (src/engine/openflamingo.test.ts).

    /usr/bin/python3 models/tools/openflamingo_parity.py OUT_DIR [--arch mpt|gpt_neox]

No real weights here (they cannot be downloaded on these machines): a random OpenFlamingo with an
MPT (3B's layout) or a GPT-NeoX (4B's) language model at reduced sizes (flamingo/openflamingo.py, gates open), its state dict split into the three files a
user has (OpenFlamingo's checkpoint, open_clip's, the LM's, at their real key names), converted by
flamingo/convert_openflamingo.py into OUT_DIR/model. expected.json holds what the PyTorch reference
computes: token ids of the prompt (byte-level BPE, flamingo/byte_bpe.py), the preprocessed pixels,
the logits of every prompt position, greedy tokens (recomputing the whole sequence each step) with
each step's logits, and a corpus encoded by the Python tokenizer.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/: `import flamingo`, `tools`
from flamingo.byte_bpe import ByteLevelTokenizer, train_byte_bpe  # noqa: E402
from flamingo.convert_openflamingo import convert, with_added_tokens  # noqa: E402
from flamingo.mask import media_index  # noqa: E402
from flamingo.openflamingo import CLIP_MEAN, CLIP_STD, OpenFlamingo, OpenFlamingoConfig, split_state_dict  # noqa: E402
from flamingo.preprocess import preprocess  # noqa: E402
from tools.parity import write_noise_pngs  # noqa: E402

# as promptToText writes it: a text chunk followed by an image is closed with <|endofchunk|>
PROMPT = "A picture:<|endofchunk|><image>Output: a red cat.<|endofchunk|><image>Output:"
DECODE_STEPS = 12
CORPUS = [
    "<image>Output: a dog's face.<|endofchunk|><image>Output:",
    "Question: what's that? Short answer: 42 cats, they're 3.5 km away!",
    "tête de chien, Hundegesicht; ¿Qué? «chat» 日本語のテキスト 🐈‍⬛ emoji",
    "  two  spaces,\ttab\nnewline\n\n  indented   trailing   ",
    "it'll be 'quoted' and I'm sure we've done it. DON'T shout",
    "",
    "<image><image>Output:<|endofchunk|>",
    "x" * 40 + " 1234567890 3.14159 __init__ <tag>",
]
TRAINING_TEXTS = ["Output: a red cat.", "Output: a blue dog.", "Question: what is it? Short answer: a cat",
                  "A picture of a cat, a dog and a bird.", "they're what's I'm", "tête chien 日本語"] * 3
# MPT's config.json at reduced size (the converter reads n_heads, alibi_bias_max, max_seq_len)
MPT_CONFIG = {"d_model": 64, "n_heads": 4, "n_layers": 4, "alibi": True, "alibi_bias_max": 8, "attn_qk_ln": True,
              "no_bias": True, "max_seq_len": 256}
# Hugging Face GPT-NeoX's config.json, likewise (rotary on half of each head: the partial rotary path)
NEOX_CONFIG = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 4, "rotary_pct": 0.5,
               "rotary_emb_base": 10000, "use_parallel_residual": True, "layer_norm_eps": 1e-5,
               "max_position_embeddings": 256}
LM_CONFIG = {"mpt": MPT_CONFIG, "gpt_neox": NEOX_CONFIG}
SEEDS = {"mpt": 7, "gpt_neox": 3}  # seeds whose greedy answers are not one token repeated
HEADS = {"head_width": 16, "xattn_dim_head": 16, "perceiver_dim_head": 16}  # OpenFlamingo's are 64 wide
# small shards, so that the tiny lm.onnx (1.3 MB) keeps its weights as external data, as MPT-1B's must
SHARD_BYTES = 256 * 1024


def tiny_tokenizer() -> dict:
    """A byte-level BPE with GPT-NeoX's <|endoftext|> and OpenFlamingo's three added tokens."""
    return with_added_tokens(train_byte_bpe(TRAINING_TEXTS, 60, ["<|endoftext|>"]))


def tiny_config(vocab_size: int, every: int = 2, arch: str = "mpt") -> OpenFlamingoConfig:
    return OpenFlamingoConfig(image_size=42, patch_size=14, vision_width=32, vision_layers=2, vision_heads=2,
                              vision_embed_dim=24, n_latents=4, perceiver_depth=2, perceiver_heads=2,
                              perceiver_dim_head=16, lm_arch=arch, vocab_size=vocab_size, d_model=64, n_layers=4,
                              n_heads=4, max_seq_len=256, rotary_pct=0.5 if arch == "gpt_neox" else 0.25,
                              cross_attn_every_n_layers=every,
                              xattn_heads=2, xattn_dim_head=16)


def tiny_model(tokenizer: dict, every: int = 2, seed: int = 0, gates=(0.8, 0.5), arch: str = "mpt") -> OpenFlamingo:
    """Random weights, every LayerNorm perturbed (so q_ln, k_ln, norm_f matter), gates as given."""
    vocab = max([*tokenizer["model"]["vocab"].values(), *(t["id"] for t in tokenizer["added_tokens"])]) + 1
    torch.manual_seed(seed)
    model = OpenFlamingo(tiny_config(vocab + 3, every, arch), media_token_id=token(tokenizer, "<image>")).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("attn_gate"):
                p.fill_(gates[0])
            elif name.endswith("ff_gate"):
                p.fill_(gates[1])
            elif p.dim() == 1 and "weight" in name:
                p.add_(torch.randn_like(p) * 0.2)
            elif p.dim() == 1 and "bias" in name:
                p.add_(torch.randn_like(p) * 0.1)
        # embeddings small against the blocks (as in a trained LM): else a tied head repeats the last token
        wte = model.lang_encoder.parts()[0].weight
        wte.mul_(0.05 / wte.std())
    return model


def token(tokenizer: dict, content: str) -> int:
    return next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == content)


def user_files(model: OpenFlamingo) -> tuple[dict, dict, dict]:
    """What a user has: OpenFlamingo's checkpoint, open_clip's model (with a text tower the converter
    must ignore) and the LM's (whose embeddings, before OpenFlamingo's added rows were trained, must
    lose; GPT-NeoX's also with the buffers Hugging Face saves)."""
    checkpoint, clip, lm = split_state_dict(model.state_dict())
    clip = {**clip, "text_projection": torch.zeros(24, 24), "token_embedding.weight": torch.zeros(10, 24),
            "logit_scale": torch.tensor(4.6)}
    for k in ("transformer.wte.weight", "gpt_neox.embed_in.weight", "embed_out.weight"):
        if k in lm:
            lm[k] = torch.randn_like(lm[k])
    if model.cfg.lm_arch == "gpt_neox":
        lm["gpt_neox.layers.0.attention.bias"] = torch.ones(1, 1, 8, 8, dtype=torch.bool).tril()
        lm["gpt_neox.layers.0.attention.masked_bias"] = torch.tensor(-1e9)
    return checkpoint, clip, lm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", choices=("mpt", "gpt_neox"), default="mpt")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = tiny_tokenizer()
    model = tiny_model(tokenizer, seed=SEEDS[args.arch], arch=args.arch)
    convert(*user_files(model), LM_CONFIG[args.arch], tokenizer, out / "model",
            {"name": f"openflamingo-parity-{args.arch}"}, SHARD_BYTES, **HEADS)
    tok = ByteLevelTokenizer(tokenizer)

    # opaque: a browser decodes them to the same bytes as pngjs (no premultiplied alpha)
    images = write_noise_pngs(out, [(50, 60), (42, 42)])
    pixels = [preprocess(np.asarray(Image.open(p).convert("RGBA")), 42, CLIP_MEAN, CLIP_STD, (255, 255, 255))
              for p in images]
    ids = tok.encode(PROMPT)
    image_id, eoc = tok.token_id("<image>"), tok.token_id("<|endofchunk|>")
    vision_x = torch.from_numpy(np.stack(pixels))[None, :, None]  # [1, T images, 1 frame, 3, S, S]
    # as the engine: <image>, <PAD> and <|endoftext|> (unk) are never generated
    banned = [image_id, tok.token_id("<PAD>"), tok.token_id("<|endoftext|>")]
    with torch.no_grad():
        media = model.encode_vision_x(vision_x)
        prompt_logits = model(vision_x, torch.tensor([ids]))[0]
        seq, greedy, steps = list(ids), [], []
        for _ in range(DECODE_STEPS):
            row = model.lang_encoder(torch.tensor([seq]), media, torch.tensor([seq]) == image_id)[0, -1]
            steps.append(row.tolist())
            row = row.clone()
            row[banned] = -float("inf")
            nxt = int(row.argmax())
            if nxt == eoc:
                break
            greedy.append(nxt)
            seq.append(nxt)

    expected = {
        "prompt": PROMPT,
        "images": [p.name for p in images],
        "input_ids": ids,
        "media_index": media_index(torch.tensor([ids]), image_id)[0].tolist(),
        "pixels": [p.flatten().tolist() for p in pixels],
        "media_latents": media.flatten().tolist(),
        "prompt_logits": prompt_logits.flatten().tolist(),  # every position, [s, vocab]
        "step_logits": steps,  # the last position's logits before each greedy token
        "greedy_tokens": greedy,
        "greedy_text": tok.decode(greedy),
        "corpus": CORPUS,
        "corpus_ids": [tok.encode(t) for t in CORPUS],
        "corpus_decoded": [tok.decode(tok.encode(t)) for t in CORPUS],
    }
    (out / "expected.json").write_text(json.dumps(expected))
    print(f"OpenFlamingo parity fixture written to {out}")


if __name__ == "__main__":
    main()
