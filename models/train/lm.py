"""Stage 2: pretrain the language model on EmojiWorld's text side alone, then freeze it.

    cd models && /usr/bin/python3 -m train.lm [--steps=6000 --batch=32 ...]

A frozen LM can only pass on what it can already do (EMOJIWORLD.md: a 1M-parameter LM trained
8 minutes did not copy, and the bridge on top of it stayed at chance). So the corpus demands
in-context copying (binding episodes: a word is bound to a description in the prompt and asked
for again), a plain copy task helps the induction heads form, and the number that decides whether
stage 3 may start is measured on its own: text-only 5-way 1-shot binding of pseudo-words to
HELD-OUT concept names, exact match of the whole answer.

Resumable: rerunning the same command continues from runs/lm/last.pt.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emojiworld import text as ew_text
from emojiworld.concepts import load_world, pseudo_words
from emojiworld.samples import text_episode
from flamingo.model import FlamingoConfig, LanguageModel
from flamingo.tokenizer import Tokenizer
from flamingo.training import (RUNS_DIR, batch_loader, log_line, override, pack, resume, save_checkpoint,
                               settings_dict, setup_threads)


@dataclass
class Settings:
    out: str = str(RUNS_DIR / "lm")
    tokenizer: str = str(RUNS_DIR / "tokenizer.json")
    seed: int = 0
    steps: int = 6000
    batch: int = 32
    seq_len: int = 256
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    copy_fraction: float = 0.2  # share of texts that are a plain "repeat this list" task
    long_fraction: float = 0.0  # share of texts that are long binding episodes (text_episode max_supports=48)
    init: str = ""  # an LM checkpoint to start a fresh run from (model v2: continue v1 on longer sequences)
    eval_every: int = 250
    eval_episodes: int = 200
    ckpt_every: int = 100
    device: str = "cpu"
    workers: int = 0  # DataLoader processes making batches (the GPU machine has 16 cores)
    max_minutes: float = 0.0  # stop (with a checkpoint) after this much wall time; 0 = no limit


def copy_text(rng) -> str:
    """A list of pseudo-words said twice: the second half is only predictable by copying."""
    words = pseudo_words(rng, int(rng.integers(2, 8)))
    return " ".join(words) + ". " + " ".join(words) + "."


def binding_eval_set(world, n_episodes: int, n_way: int, seed: int, pool=None, supports: int = 0):
    """Text-only N-way binding on held-out concept names (or on those of `pool`): (prompt, answer) pairs, in
    the same format as the training episodes (emojiworld.samples.text_episode, kind 'binding'). 1-shot, or
    with `supports` (>= n_way) supports: every concept once, the rest drawn at random, shuffled."""
    rng = np.random.default_rng(seed)
    pool = world.split("heldout") if pool is None else pool
    out = []
    for _ in range(n_episodes):
        concepts = [int(i) for i in rng.choice(pool, size=n_way, replace=False)]
        labels = pseudo_words(rng, n_way)
        extra = [int(k) for k in rng.integers(n_way, size=max(0, supports - n_way))]
        order = [int(k) for k in rng.permutation(list(range(n_way)) + extra)]
        q = int(rng.integers(n_way))
        support = "".join(f"{ew_text.IMAGE}{world.concepts[concepts[k]].name}. {ew_text.caption(labels[k])}{ew_text.EOC}"
                          for k in order)
        prompt = support + f"{ew_text.IMAGE}{world.concepts[concepts[q]].name}. {ew_text.CAPTION_QUERY}"
        out.append((prompt, labels[q]))
    return out


def gate_sets(world, n_episodes: int, long: bool) -> dict:
    """Stage 2's gates, name -> episodes: 2- and 5-way 1-shot binding of held-out names; with `long` (model v2,
    640-token training) also 5-way with 32 supports and 32-way 1-shot (prompts of 32 shots), half as many each."""
    sets = {f"binding_{n}way_heldout": binding_eval_set(world, n_episodes, n, seed=1000 + n) for n in (2, 5)}
    if long:
        sets["binding_5way_32supports_heldout"] = binding_eval_set(world, n_episodes // 2, 5, seed=1032, supports=32)
        sets["binding_32way_heldout"] = binding_eval_set(world, n_episodes // 2, 32, seed=1064)
    return sets


@torch.no_grad()
def binding_accuracy(lm, tok: Tokenizer, episodes, device) -> float:
    """Teacher-forced exact match: every token of ' {answer}.' must be the argmax."""
    lm.eval()
    correct = 0
    bos = tok.token_id("<bos>")
    for prompt, answer in episodes:
        p = [bos] + tok.encode(prompt)
        a = tok.encode(prompt + " " + answer + ".")[len(p) - 1:]
        ids = torch.tensor([p + a[:-1]], device=device)
        logits = lm_logits(lm, ids)
        pred = logits[0, len(p) - 1:].argmax(-1).tolist()
        correct += pred == a
    lm.train()
    return correct / len(episodes)


def lm_logits(lm: LanguageModel, ids: torch.Tensor) -> torch.Tensor:
    """The plain LM forward (no media), as FlamingoLM runs it with use_media=False."""
    cos, sin = lm.rope(0, ids.shape[1], ids.device)
    x = lm.wte(ids)
    for block, (pk, pv) in zip(lm.blocks, lm.empty_cache(ids.shape[0], ids.device)):
        x, _, _ = block(x, cos, sin, pk, pv)
    return lm.lm_head(lm.ln_f(x))


class Batches(torch.utils.data.Dataset):
    """Batch number `step` is a pure function of (seed, step), so a resumed run sees the same data."""

    def __init__(self, s: Settings, world, tok: Tokenizer, first_step: int):
        self.s, self.world, self.tok, self.first = s, world, tok, first_step
        self.pad, self.bos = tok.token_id("<pad>"), tok.token_id("<bos>")

    def __len__(self):
        return self.s.steps - self.first

    def __getitem__(self, i):
        s, step = self.s, self.first + i
        rng = np.random.default_rng([s.seed, step])
        texts = []
        while len(texts) < s.batch * max(2, s.seq_len // 128):  # about one text per 128 tokens of a row
            if s.long_fraction and rng.random() < s.long_fraction:
                texts.append(text_episode(self.world, rng, "train", kind="binding", max_supports=48))
                continue
            texts.append(copy_text(rng) if rng.random() < s.copy_fraction else text_episode(self.world, rng, "train"))
        x, y = pack([[self.bos] + self.tok.encode(t) for t in texts], s.seq_len, self.pad)
        return x[: s.batch], y[: s.batch]


def lr_at(step, s: Settings):
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = min(1.0, (step - s.warmup) / max(1, s.steps - s.warmup))
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * progress))


def main():
    s = override(Settings())
    setup_threads()
    out = Path(s.out)
    tok = Tokenizer.load(s.tokenizer)
    world = load_world()  # the fixed EmojiWorld split (seed 0); `seed` only drives data and init
    cfg = FlamingoConfig(vocab_size=len(tok.vocab), d_model=s.d_model, n_layers=s.n_layers, n_heads=s.n_heads,
                         context_length=s.seq_len)
    torch.manual_seed(s.seed)
    lm = LanguageModel(cfg).to(s.device)
    decay = [p for n, p in lm.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in lm.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=s.lr, betas=(0.9, 0.95))
    step, best, clock = resume(out / "last.pt", lm, opt, key="lm")
    if step == 0 and s.init:
        lm.load_state_dict(torch.load(s.init, map_location="cpu")["lm"])
        print(f"initialised from {s.init}")
    evals = gate_sets(world, s.eval_episodes, long=s.seq_len >= 640)
    params = sum(p.numel() for p in lm.parameters())
    print(f"LM: {params / 1e6:.2f}M parameters, vocab {len(tok.vocab)}, {cfg.n_layers} layers, d={cfg.d_model}")
    t_start = time.time()

    def save(path):
        save_checkpoint(path, lm=lm.state_dict(), opt=opt.state_dict(), step=step, best=best, config=cfg.to_dict(),
                        settings=settings_dict(s), clock=clock.state(), tokenizer=s.tokenizer)

    loader = batch_loader(Batches(s, world, tok, step), s.workers)
    for x, y in loader:
        x, y = x.to(s.device, non_blocking=True), y.to(s.device, non_blocking=True)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, s)
        logits = lm_logits(lm, x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), s.grad_clip)
        opt.step()
        step += 1
        if step % 20 == 0:
            tokens = (y != -100).sum().item()
            log_line(out / "log.jsonl", {"step": step, "loss": loss.item(), "lr": lr_at(step, s),
                                         "cpu_s": clock.cpu, "wall_s": clock.wall, "tokens_per_step": tokens})
        if step % s.eval_every == 0 or step == s.steps:
            acc = {name: binding_accuracy(lm, tok, e, s.device) for name, e in evals.items()}
            log_line(out / "eval.jsonl", {"step": step, **acc, "cpu_s": clock.cpu, "wall_s": clock.wall})
            gate = min(v for k, v in acc.items() if k.startswith("binding_5way"))  # at 32 supports too, if measured
            if gate >= best:
                best = gate
                save(out / "best.pt")
        if step % s.ckpt_every == 0:
            save(out / "last.pt")
        if s.max_minutes and time.time() - t_start > 60 * s.max_minutes:
            save(out / "last.pt")
            print(f"stopping after {s.max_minutes} minutes at step {step} (resume with the same command)")
            break
    if step == s.steps:
        save(out / "last.pt")
    print(f"done: step {step}, best 5-way held-out binding {best:.3f}, cpu {clock.cpu / 60:.1f} min")


if __name__ == "__main__":
    main()
