"""PyTorch eager decode speed of the shipped model, with its KV cache: the reference that
`npm run bench` divides the browser's decode speed by (vs_pytorch_ratio).

    /usr/bin/python3 models/tools/bench_pytorch.py --prompt_file PROMPT.txt [--new_tokens 32] [--threads 2] [--repeats 3]
    /usr/bin/python3 models/tools/bench_pytorch.py --prompt_file PROMPT.txt --serve   # one decode per stdin line

With --serve it prints {"ready": ...} once warmed up, then one JSON line per line read from stdin
(one decode each) until stdin closes: `npm run bench` takes its decodes in turns with the other
runtimes', so that the host's drift falls on all of them alike.

The prompt is text only, as in the browser and onnxruntime-node runs of the same bench: `bos` + the
prompt's tokens, no images (as the engine does, one zero image that no token attends to, so the
gated blocks run as in the graph). Greedy; <|endofchunk|> and the other special tokens are never
chosen, so every run makes exactly `new_tokens` tokens. Tokens/s counts the decode steps after the
first token, as the engine's DoneEvent.tokensPerSecond does. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

MODELS = Path(__file__).resolve().parents[1]  # models/: `import flamingo`, `import train`
sys.path.insert(0, str(MODELS))
from train.flamingo import load_shipped  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompt_file", required=True, help="UTF-8 text of the prompt (no bos)")
    p.add_argument("--new_tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--expect_tokens", type=int, default=0, help="fail unless bos + prompt is this many tokens")
    p.add_argument("--serve", action="store_true", help="one decode per line read from stdin, one JSON line each")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    os.chdir(MODELS)  # the checkpoints' paths are relative to models/
    model, tok = load_shipped()
    cfg = model.cfg
    special = json.loads((MODELS.parent / "public/models/emojiworld/manifest.json").read_text())["special_tokens"]
    banned = [tok.token_id(t) for t in special.values()]  # as the engine: never chosen, nor <|endofchunk|>

    text = Path(a.prompt_file).read_text(encoding="utf-8")
    ids = [tok.token_id(special["bos"])] + tok.encode(text)
    if a.expect_tokens and len(ids) != a.expect_tokens:
        raise SystemExit(f"bench_pytorch: the prompt is {len(ids)} tokens with bos, expected {a.expect_tokens}")
    media = torch.zeros(1, 1, cfg.n_latents, cfg.d_vision)

    def run() -> tuple[float, list[int]]:
        with torch.inference_mode():
            x = torch.tensor([ids])
            logits, past = model.flamingo_lm(x, torch.full_like(x, -1), media)
            out: list[int] = []
            t_first = 0.0
            for step in range(a.new_tokens):
                row = logits[0, -1].clone()
                row[banned] = float("-inf")
                nxt = int(row.argmax())
                out.append(nxt)
                if step == 0:
                    t_first = time.perf_counter()
                if step == a.new_tokens - 1:
                    break
                x = torch.tensor([[nxt]])
                logits, past = model.flamingo_lm(x, torch.full_like(x, -1), media, past)
            return (a.new_tokens - 1) / (time.perf_counter() - t_first), out

    run()  # warm-up: allocator and BLAS start-up are not decode
    if a.serve:
        print(json.dumps({"ready": f"PyTorch {torch.__version__} eager, {a.threads} threads", "prompt_tokens": len(ids)}), flush=True)
        for _ in sys.stdin:
            speed, tokens = run()
            print(json.dumps({"tokens_per_s": speed, "tokens": len(tokens)}), flush=True)
        return
    speeds, tokens = [], []
    for _ in range(a.repeats):
        speed, tokens = run()
        speeds.append(speed)
    print(json.dumps({
        "runtime": f"PyTorch {torch.__version__} eager, {a.threads} threads",
        "python": platform.python_version(),
        "prompt_tokens": len(ids),
        "new_tokens": a.new_tokens,
        "decode_tokens_per_s": statistics.median(speeds),
        "runs": speeds,
        "tokens": tokens,
    }))


if __name__ == "__main__":
    main()
