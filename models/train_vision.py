"""Stage 1: pretrain the vision encoder contrastively (image <-> caption), then freeze it.

    cd models && /usr/bin/python3 train_vision.py [--steps=3000 --batch=256 ...]

As Flamingo's NFNet (pretrained CLIP-style on image-text pairs), at EmojiWorld scale: a small CNN
and a bag-of-subwords text tower, trained with the symmetric InfoNCE loss on single emoji
(caption: the name) and scenes (caption: the names and the background colour), TRAINING concepts
in the three TRAINING styles only. Validation: nearest-neighbour 5-way 1-shot between held-out
concepts (never trained on) drawn in a training style — what few-shot binding needs. OpenMoji, the
held-out style, is left to the final evaluation.
Resumable: rerunning the same command continues from runs/vision/last.pt.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from emojiworld.concepts import load_world
from emojiworld.samples import draw_scene, draw_single, name_in
from flamingo.model import FlamingoConfig, VisionEncoder
from flamingo.preprocess import normalize
from flamingo.tokenizer import Tokenizer
from flamingo.training import (RUNS_DIR, batch_loader, log_line, override, resume, save_checkpoint, settings_dict,
                               setup_threads)


@dataclass
class Settings:
    out: str = str(RUNS_DIR / "vision")
    tokenizer: str = str(RUNS_DIR / "tokenizer.json")
    seed: int = 0
    steps: int = 3000
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    scene_fraction: float = 0.3
    d_embed: int = 128
    eval_every: int = 250
    ckpt_every: int = 100
    device: str = "cpu"
    workers: int = 0
    max_minutes: float = 0.0


class TextTower(nn.Module):
    """Mean of subword embeddings -> MLP: enough to tell captions apart, discarded after stage 1."""

    def __init__(self, vocab: int, d: int):
        super().__init__()
        self.emb = nn.EmbeddingBag(vocab, d, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))

    def forward(self, ids, offsets):
        return self.mlp(self.emb(ids, offsets))


class Contrastive(nn.Module):
    def __init__(self, cfg: FlamingoConfig, vocab: int, d_embed: int):
        super().__init__()
        self.vision = VisionEncoder(cfg)
        self.image_head = nn.Linear(cfg.d_vision, d_embed)
        self.text = TextTower(vocab, d_embed)
        self.log_scale = nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    def embed_images(self, pixels):
        return F.normalize(self.image_head(self.vision(pixels).mean(1)), dim=-1)

    def embed_texts(self, ids, offsets):
        return F.normalize(self.text(ids, offsets), dim=-1)


def caption_of(world, facts=None, concept=None):
    if facts is None:
        return name_in(world, concept)
    names = sorted(name_in(world, o["concept"]) for o in facts["objects"])
    return f"{', '.join(names)} on {facts['background']}"


class Batches(torch.utils.data.Dataset):
    """Batch `step` depends only on (seed, step): distinct concepts within a batch, so that the
    other captions in the batch are true negatives."""

    def __init__(self, s: Settings, world, tok: Tokenizer, cfg: FlamingoConfig, first: int):
        self.s, self.world, self.tok, self.cfg, self.first = s, world, tok, cfg, first

    def __len__(self):
        return self.s.steps - self.first

    def __getitem__(self, i):
        s, world = self.s, self.world
        rng = np.random.default_rng([s.seed, self.first + i])
        pool = world.split("train")
        concepts = rng.choice(pool, size=s.batch, replace=False)
        images, captions = [], []
        for c in concepts:
            style = world.train_styles[int(rng.integers(len(world.train_styles)))]
            if rng.random() < s.scene_fraction:
                img, facts = draw_scene(world, pool, style, rng, size=self.cfg.image_size)
                captions.append(caption_of(world, facts=facts))
            else:
                img = draw_single(world, int(c), style, rng, size=self.cfg.image_size)
                captions.append(caption_of(world, concept=int(c)))
            images.append(img)
        pixels = torch.from_numpy(normalize(np.stack(images), self.cfg.mean, self.cfg.std))
        ids = [self.tok.encode(t) for t in captions]
        offsets = torch.tensor(np.cumsum([0] + [len(x) for x in ids[:-1]]))
        # the same caption twice in a batch (scenes can collide) must not count as a negative
        same = torch.tensor([[a == b for b in captions] for a in captions])
        return pixels, torch.tensor(sum(ids, [])), offsets, same


@torch.no_grad()
def few_shot_probe(vision: VisionEncoder, world, cfg, n_episodes=300, n_way=5, seed=123, device="cpu", style="noto"):
    """Nearest-neighbour N-way 1-shot on held-out concepts, support and query both in `style`
    (different placements): do the frozen features separate concepts never trained on?
    Validation uses a training style (noto); OpenMoji is kept for the final evaluation."""
    vision.eval()
    rng = np.random.default_rng(seed)
    pool = world.split("heldout")
    correct = 0
    for _ in range(n_episodes):
        cs = rng.choice(pool, size=n_way, replace=False)
        support = [draw_single(world, int(c), style, rng, cfg.image_size) for c in cs]
        q = int(rng.integers(n_way))
        query = draw_single(world, int(cs[q]), style, rng, cfg.image_size)
        x = torch.from_numpy(normalize(np.stack(support + [query]), cfg.mean, cfg.std)).to(device)
        f = F.normalize(vision(x).flatten(1), dim=-1)
        correct += int((f[:-1] @ f[-1]).argmax().item() == q)
    vision.train()
    return correct / n_episodes


def main():
    s = override(Settings())
    setup_threads()
    out = Path(s.out)
    tok = Tokenizer.load(s.tokenizer)
    world = load_world()  # the fixed EmojiWorld split (seed 0); `seed` only drives data and init
    cfg = FlamingoConfig(vocab_size=len(tok.vocab))
    torch.manual_seed(s.seed)
    model = Contrastive(cfg, len(tok.vocab), s.d_embed).to(s.device)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    step, _, clock = resume(out / "last.pt", model, opt)
    print(f"vision encoder: {sum(p.numel() for p in model.vision.parameters()) / 1e6:.2f}M parameters")

    def save(path):
        save_checkpoint(path, model=model.state_dict(), vision=model.vision.state_dict(), opt=opt.state_dict(),
                        step=step, config=cfg.to_dict(), settings=settings_dict(s), clock=clock.state())

    loader = batch_loader(Batches(s, world, tok, cfg, step), s.workers)
    t_start = time.time()
    for pixels, ids, offsets, same in loader:
        pixels, ids, offsets, same = (t.to(s.device) for t in (pixels, ids, offsets, same))
        lr = float(s.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * step / s.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        img, txt = model.embed_images(pixels), model.embed_texts(ids, offsets)
        logits = model.log_scale.exp().clamp(max=100) * img @ txt.t()
        logits = logits.masked_fill(same & ~torch.eye(len(same), dtype=torch.bool, device=s.device), -1e4)
        target = torch.arange(len(logits), device=s.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0:
            acc = (logits.argmax(1) == target).float().mean().item()
            log_line(out / "log.jsonl", {"step": step, "loss": loss.item(), "batch_acc": acc, "lr": lr,
                                         "cpu_s": clock.cpu, "wall_s": clock.wall})
        if step % s.eval_every == 0 or step == s.steps:
            probe = few_shot_probe(model.vision, world, cfg, device=s.device)
            log_line(out / "eval.jsonl", {"step": step, "nn_5way_1shot_heldout_concepts_noto": probe,
                                          "cpu_s": clock.cpu, "wall_s": clock.wall})
        if step % s.ckpt_every == 0 or step == s.steps:
            save(out / "last.pt")
        if s.max_minutes and time.time() - t_start > 60 * s.max_minutes:
            save(out / "last.pt")
            print(f"stopping after {s.max_minutes} minutes at step {step} (resume with the same command)")
            break
    print(f"done: step {step}, cpu {clock.cpu / 60:.1f} min")


if __name__ == "__main__":
    main()
