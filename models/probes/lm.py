"""How far the frozen language model's in-context copying reaches, on text alone (no pictures, no bridge):
N-way 1-shot binding in stage 2's episode format (train.lm.binding_eval_set) with more distinct labels than
stage 2 trained on (samples.text_episode: at most 10 ways, 24 supports), and 10-way binding pushed past the
trained context length by unrelated text (train.lm.copy_text chunks) placed before it; with --interpolate, those
long prompts also with their positions squeezed into the trained context (position interpolation, Chen et al. 2023,
here without the fine-tuning it asks for: the LM stays frozen). It tells the LM's limits from the bridge's: a bridge
cannot make the LM copy where the LM alone does not (rules-3r.txt).

    cd models && /usr/bin/python3 -m probes.lm [--lm=checkpoints/lm.pt --n=100 --ways=10,16,20,24,32
                                                --lengths=200,240,256,270,290,320,360 --interpolate]
    cd models && /usr/bin/python3 -m probes.lm --gates --lm=checkpoints/v2/lm.pt   # stage 2's gates, 32 shots too

The many-way episodes use the training concepts whose name is one token as stand-ins for the pictures, so
that 24 ways still fit in 256 tokens; labels are pseudo-words, as in stage 2's gate.
"""
import argparse

import numpy as np
import torch

from emojiworld import text as ew_text
from emojiworld.concepts import load_world
from flamingo.model import FlamingoConfig, LanguageModel
from flamingo.tokenizer import Tokenizer
from train.lm import binding_accuracy, binding_eval_set, copy_text, gate_sets


def with_filler(episodes, tok: Tokenizer, min_tokens: int, seed: int):
    """The same (prompt, answer) pairs, each prompt led by copy-text chunks until it has min_tokens tokens."""
    rng = np.random.default_rng(seed)
    out = []
    for prompt, answer in episodes:
        filler = ""
        while len(tok.encode(filler + prompt)) < min_tokens:
            filler += f"{ew_text.IMAGE}{copy_text(rng)}{ew_text.EOC}"
        out.append((filler + prompt, answer))
    return out


def tokens(episodes, tok: Tokenizer) -> tuple[int, int]:
    lengths = [len(tok.encode(p)) + 1 for p, _ in episodes]  # + <bos>
    return min(lengths), max(lengths)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lm", default="checkpoints/lm.pt")
    ap.add_argument("--tokenizer", default="../public/models/emojiworld/tokenizer.json")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--ways", default="10,16,20,24,32")
    ap.add_argument("--lengths", default="200,240,256,270,290,320,360")
    ap.add_argument("--gates", action="store_true",
                    help="only stage 2's gates (train.lm.gate_sets, with the long ones): any LM beside model v2's")
    ap.add_argument("--interpolate", action="store_true",
                    help="also each length past the trained context with positions scaled by context / longest prompt")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    ckpt = torch.load(a.lm, map_location="cpu")
    lm = LanguageModel(FlamingoConfig(**ckpt["config"]))
    lm.load_state_dict(ckpt["lm"])
    tok, world = Tokenizer.load(a.tokenizer), load_world()
    print(f"trained context: {lm.cfg.context_length} tokens")
    if a.gates:
        for name, episodes in gate_sets(world, 200, long=True).items():
            print(f"{name}: {binding_accuracy(lm, tok, episodes, 'cpu'):.3f} ({len(episodes)} episodes)", flush=True)
        return
    short = [i for i in world.split("train") if len(tok.encode(world.concepts[i].name)) == 1]
    for n in (int(w) for w in a.ways.split(",") if w):
        episodes = binding_eval_set(world, a.n, n, seed=7000 + n, pool=short)
        lo, hi = tokens(episodes, tok)
        print(f"{n}-way 1-shot: {binding_accuracy(lm, tok, episodes, 'cpu'):.2f} ({lo}-{hi} tokens)", flush=True)
    base = binding_eval_set(world, a.n, 10, seed=7010, pool=short)
    for length in (int(t) for t in a.lengths.split(",") if t):
        episodes = with_filler(base, tok, length, seed=length)
        lo, hi = tokens(episodes, tok)
        print(f"10-way 1-shot after filler: {binding_accuracy(lm, tok, episodes, 'cpu'):.2f} ({lo}-{hi} tokens)",
              flush=True)
        if a.interpolate and hi > lm.cfg.context_length:
            lm.position_scale = lm.cfg.context_length / (hi + 8)  # room for the answer's tokens
            print(f"  positions x {lm.position_scale:.2f}: {binding_accuracy(lm, tok, episodes, 'cpu'):.2f}", flush=True)
            lm.position_scale = 1.0


if __name__ == "__main__":
    main()
