"""Stage 0: the BPE tokenizer, trained on EmojiWorld's TRAINING text only.

    cd models && /usr/bin/python3 -m train.tokenizer [--vocab_size=1024 --texts=20000]

Held-out concept names never appear in this corpus (a test scans it), yet the tokenizer can
still spell them, and any pseudo-word, from the subword pieces it learnt.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from emojiworld.concepts import load_world
from emojiworld.samples import training_corpus_sample
from flamingo.tokenizer import train_bpe
from flamingo.training import RUNS_DIR, override
from train.lm import copy_text


@dataclass
class Settings:
    out: str = str(RUNS_DIR / "tokenizer.json")
    vocab_size: int = 1024
    texts: int = 20000
    seed: int = 0


def corpus(world, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return training_corpus_sample(world, n, seed) + [copy_text(rng) for _ in range(n // 10)]


def main():
    s = override(Settings())
    t0 = time.time()
    texts = corpus(load_world(), s.texts, s.seed)  # the fixed split; `seed` only drives sampling
    tok = train_bpe(texts, s.vocab_size)
    tok.save(s.out)
    n_tokens = sum(len(tok.encode(t)) for t in texts[:2000])
    n_chars = sum(len(t) for t in texts[:2000])
    print(f"{len(tok.vocab)} tokens, {n_chars / n_tokens:.2f} characters per token, {time.time() - t0:.0f} s -> {s.out}")


if __name__ == "__main__":
    main()
