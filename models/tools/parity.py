"""Reference outputs for the cross-language parity tests (src/engine/parity.test.ts).

    /usr/bin/python3 models/tools/parity.py OUT_DIR [--bundled public/models/emojiworld]

Writes into OUT_DIR: a small random Flamingo (gates open, so images matter) exported as a model
folder, two PNG images, and expected.json holding what PyTorch and the Python side compute for
them: tokenizer ids, per-token image index, preprocessed pixels, the LM's inputs and logits for a
prefill and 20 greedy decode steps. The TypeScript test feeds the same inputs to the engine and to
the ONNX graphs through onnxruntime-node and compares.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/: `import flamingo`
from flamingo.export import export_model  # noqa: E402
from flamingo.mask import media_index  # noqa: E402
from flamingo.model import Flamingo, FlamingoConfig, split_heads  # noqa: E402
from flamingo.preprocess import preprocess  # noqa: E402
from flamingo.tokenizer import Tokenizer, train_bpe  # noqa: E402

CORPUS = [
    "<image>Output: dog face.<|endofchunk|><image>Output: pizza.<|endofchunk|><image>Output:",
    "<image>Question: how many emoji? Short answer: 3<|endofchunk|>",
    "Output: tête de chien. Ausgabe: Hundegesicht! ¿Qué? «chat»",
    "  two  spaces, trailing space ",
    "brisu kelo toma. brisu kelo toma.",
    "unknown ✓ characters ☃ and digits 12345",
    "",
    "<image><image>Output:<|endofchunk|>",
]
PROMPT = "<image>Output: dog face.<|endofchunk|><image>Output:"
DECODE_STEPS = 20


def tiny_world_texts() -> list[str]:
    names = ["dog face", "cat face", "pizza", "red apple", "bicycle", "sun", "snowman", "rocket", "tête de chien",
             "hundegesicht", "gato", "brisu", "kelo", "toma"]
    return [f"<image>Output: {n}.<|endofchunk|>" for n in names] + \
           [f"<image>Question: how many {n}? Short answer: {k}<|endofchunk|>" for k, n in enumerate(names)]


def write_noise_pngs(out: Path, sizes, opaque_fraction: float = 1.0) -> list[Path]:
    """out/image0.png, image1.png, ...: random RGBA noise of `sizes` [(h, w)], seeded; the top `opaque_fraction`
    of the rows opaque, the rest with random alpha (compositing on the background is exercised)."""
    rng = np.random.default_rng(0)
    paths = []
    for k, (h, w) in enumerate(sizes):
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        rgba[: int(h * opaque_fraction), :, 3] = 255
        p = out / f"image{k}.png"
        Image.fromarray(rgba, "RGBA").save(p)
        paths.append(p)
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--bundled", help="also encode the corpus with this model folder's tokenizer")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tok = train_bpe(tiny_world_texts(), 160)
    torch.manual_seed(0)
    cfg = FlamingoConfig(vocab_size=160, d_model=64, n_heads=4, n_layers=3, d_vision=32, n_latents=4,
                         vision_channels=(8, 16, 16, 32), resampler_layers=1, xattn_every=1,
                         resampler_time_groups=2,  # the masked path of the resampler (frames > 1)
                         vision_ibn=1)  # the first stage's IBN (InstanceNormalization) beside BatchNorm in the others
    model = Flamingo(cfg).eval()
    with torch.no_grad():  # a live bridge: open gates and non-trivial weights
        for block in model.flamingo_lm.xattn:
            block.attn_gate.fill_(0.8)
            block.ff_gate.fill_(0.5)
    export_model(model, tok, out / "model", {"name": "parity-fixture"})

    images = write_noise_pngs(out, [(80, 100), (64, 64)], opaque_fraction=0.5)
    rgbas = [np.asarray(Image.open(p).convert("RGBA")) for p in images]
    pixels = [preprocess(a, cfg.image_size, cfg.mean, cfg.std, cfg.background) for a in rgbas]

    ids = [tok.token_id("<bos>")] + tok.encode(PROMPT)
    ids_t = torch.tensor([ids])
    midx = media_index(ids_t, tok.token_id("<image>"))
    xattn_probs = {}  # the pictures: each gated layer's attention of every token over the latents

    def keep_xattn(i):
        def hook(module, args, _out):
            y, media_, midx_ = args
            b, m, l, dv = media_.shape
            q = split_heads(module.to_q(module.norm(y)), module.heads)
            k = split_heads(module.to_kv(media_.reshape(b, m * l, dv)).chunk(2, dim=-1)[0], module.heads)
            allowed = midx_[:, None, :, None] == (torch.arange(m * l) // l)[None, None, None, :]
            xattn_probs[i] = (q @ k.transpose(-1, -2) * module.scale).masked_fill(~allowed, -1e9).softmax(-1)
        return hook

    hooks = [model.flamingo_lm.xattn[i].xattn.register_forward_hook(keep_xattn(i)) for i in cfg.xattn_layers]
    with torch.no_grad():
        media = model.encode_media(torch.from_numpy(np.stack(pixels))[None, :, None])  # [1, 2, 1, 3, S, S]
        logits, past = model.flamingo_lm(ids_t, midx, media)
    for h in hooks:
        h.remove()
    last = model.resampler.layers[-1][0]
    last.keep_attention = True
    with torch.no_grad():
        model.encode_media(torch.from_numpy(pixels[0])[None, None, None])
    resampler_attention = last.attention  # [1, h, l, n + l] for image 0
    last.keep_attention = False
    with torch.no_grad():
        prefill_logits = logits[0]
        steps = [logits[0, -1]]
        greedy = []
        # as the engine with ignoreEndOfChunk: special tokens are never generated
        banned = [tok.token_id(t) for t in ("<image>", "<bos>", "<pad>", "<unk>", "<|endofchunk|>")]
        for _ in range(DECODE_STEPS):
            row = steps[-1].clone()
            row[banned] = -float("inf")
            nxt = int(row.argmax())
            greedy.append(nxt)
            logits, past = model.flamingo_lm(torch.tensor([[nxt]]), midx[:, -1:], media, past)
            steps.append(logits[0, -1])

    # clips: the resampler graph alone, on visual features of 5 and 8 frames
    g = torch.Generator().manual_seed(1)
    clips = [torch.randn(1, t, cfg.n_vision_tokens, cfg.d_vision, generator=g) for t in (5, 8)]
    with torch.no_grad():
        clip_latents = [model.resampler(f) for f in clips]

    expected = {
        "prompt": PROMPT,
        "images": [p.name for p in images],
        "input_ids": ids,
        "media_index": midx[0].tolist(),
        "pixels": [p.flatten().tolist() for p in pixels],
        "media_latents": media.flatten().tolist(),
        "step_logits": [s.tolist() for s in steps],
        "prefill_logits": prefill_logits.flatten().tolist(),  # every position, row-major [s, vocab]
        "xattn_probs": {str(i): p[0].flatten().tolist() for i, p in xattn_probs.items()},  # [h, s, m*l] per layer
        "resampler_attention": resampler_attention[0].flatten().tolist(),  # [h, l, n + l], image 0  # prefill's last row, then one per decode step
        "clip_features": [{"shape": list(f.shape), "data": f.flatten().tolist()} for f in clips],
        "clip_latents": [c.flatten().tolist() for c in clip_latents],
        "greedy_tokens": greedy,
        "greedy_text": tok.decode(greedy).strip(),
        "corpus": CORPUS,
        "corpus_ids": [tok.encode(t) for t in CORPUS],
        "corpus_decoded": [tok.decode(tok.encode(t)) for t in CORPUS],
    }
    if args.bundled:
        bundled = Tokenizer.load(Path(args.bundled) / "tokenizer.json")
        expected["bundled_corpus_ids"] = [bundled.encode(t) for t in CORPUS]
    (out / "expected.json").write_text(json.dumps(expected))
    print(f"parity fixture written to {out}")


if __name__ == "__main__":
    main()
