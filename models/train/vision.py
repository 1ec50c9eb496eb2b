"""Stage 1: pretrain the vision encoder contrastively (image <-> caption), then freeze it.

    cd models && /usr/bin/python3 -m train.vision [--steps=3000 --batch=256 ...]

As Flamingo's NFNet (pretrained CLIP-style on image-text pairs), at EmojiWorld scale: a small CNN
and a bag-of-subwords text tower, trained with the symmetric InfoNCE loss on single emoji
(caption: the name) and scenes (caption: the names and the background colour), TRAINING concepts
in the three TRAINING styles only. Validation: nearest-neighbour 5-way 1-shot between held-out
concepts (never trained on) drawn in a training style — what few-shot binding needs. OpenMoji, the
held-out style, is left to the final evaluation.
Resumable: rerunning the same command continues from runs/vision/last.pt.

Style invariance (--teacher=CKPT --restyle=P): instead of the contrastive loss, distil a trained
encoder into a copy of itself that must give the teacher's features for the clean image when it
sees a restyled one (grey, hue-rotated, posterised, tinted, outline drawings: emojiworld/restyle.py)
and keep them for the clean image. The features of clean training images stay where the teacher
put them, so a bridge trained on the teacher still fits; what changes is how other art styles land.
Leave-one-style-out validation (--styles=twemoji,noto --validation_style=fluent-emoji-flat):
the left-out TRAINING style plays the unseen style, for choices made without OpenMoji.
Also tried that way (models/eval/style-transfer/, none adopted): a wider CNN (--vision_channels), longer
training (--steps), random convolutions (--randconv).
Cross-style pairs (--pairs=W): half the batch is the other half's concepts drawn alone in another training
style, and an image <-> image InfoNCE between each pair (weight W) joins the caption loss: one concept's
drawings by different artists are pulled together directly, not only through their shared caption. Tried with
twemoji left out (style-transfer/, "Model v2's styles"): worse within and across the unseen style; not adopted.
Ink outlines (--restyle=P --restyle_kinds=ink: a sprite's own colours with dark lines on its edges) and IBN-a stages
(--vision_ibn=N), tried with an outlined style (streamline-emojis) left out (style-transfer/, "Session 12"): each
alone better within the unseen style, hardly across it; both together passed the trial's rule (train/v2.sh
STAGE=1ni), but no bridge on an encoder trained that way named as well as the shipped one. The shipped encoder
(model 0.2.2) is v2's stage 1 distilled with ink outlines (--teacher --restyle=0.75 --restyle_kinds=ink: train/v2.sh
stage 1d), which the bridge trained on the teacher reads unchanged. With --teacher, --vision_ibn=N gives the student
IBN-a stages the teacher lacks (its weights carried over by ibn_state_from_batchnorm; train/v2.sh STAGE=1dni).
Anchored contrastive training (--init=CKPT --anchor=W): the contrastive loss on the images as drawn (restyled or not)
plus W times the distillation's MSE to --init's features of their clean drawings, BatchNorm frozen: the encoder may
move to tell concepts apart across styles, but what a bridge trained on --init reads is held where it was
(train/v2.sh STAGE=1anc).
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
from emojiworld.restyle import INK_KINDS, INK_VARIANT_KINDS, KINDS, random_restyle
from emojiworld.samples import draw_scene, draw_single, name_in
from flamingo.model import FlamingoConfig, VisionEncoder, ibn_state_from_batchnorm
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
    vision_channels: str = ""  # widths of the CNN's stride-2 stages, comma-separated (default: FlamingoConfig's; no --teacher)
    vision_ibn: int = 0  # FlamingoConfig.vision_ibn: the first n stages half instance-normalised (IBN-a); with --teacher, the student's
    styles: str = ""  # comma-separated training styles to draw from (default: all three)
    validation_style: str = "noto"  # a training style; leave it out of --styles for a cross-style probe
    restyle: float = 0.0  # probability that a training image's sprites are restyled
    restyle_kinds: str = ""  # comma-separated kinds of restyle (emojiworld/restyle.py; default its KINDS)
    randconv: float = 0.0  # probability that a training image passes through a random convolution (random_convolution)
    pairs: float = 0.0  # weight of the cross-style pair loss: half the batch is the other half's concepts in another style
    teacher: str = ""  # a vision checkpoint: style-invariance distillation instead of the contrastive loss
    init: str = ""  # a vision checkpoint whose encoder a fresh contrastive run starts from (new heads)
    anchor: float = 0.0  # with --init: weight of an MSE that keeps the features of each image's clean drawing at --init's
    world: str = "v1"  # training styles (emojiworld.concepts.WORLD_STYLES): v1's three, or v2's seven
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
        return self.embed_tokens(self.vision(pixels))

    def embed_tokens(self, tokens):
        return F.normalize(self.image_head(tokens.mean(1)), dim=-1)

    def embed_texts(self, ids, offsets):
        return F.normalize(self.text(ids, offsets), dim=-1)


def caption_of(world, facts=None, concept=None):
    if facts is None:
        return name_in(world, concept)
    names = sorted(name_in(world, o["concept"]) for o in facts["objects"])
    return f"{', '.join(names)} on {facts['background']}"


def random_convolution(pixels: torch.Tensor, rng, p: float) -> torch.Tensor:
    """RandConv (Xu et al., ICLR 2021, "RC_mix"): each image, with probability p, goes through a 3 -> 3 convolution
    with fresh Gaussian weights (kernel 1, 3, 5 or 7; variance 1 / (3 k^2)) and is mixed with itself by a weight drawn
    from U(0, 1): colour and local texture change at random while shapes stay, a new "art style" per image."""
    out = pixels.clone()
    for b in range(len(pixels)):
        if rng.random() >= p:
            continue
        k = int(rng.choice([1, 3, 5, 7]))
        w = torch.from_numpy(rng.normal(0.0, (3 * k * k) ** -0.5, size=(3, 3, k, k)).astype(np.float32))
        mix = float(rng.random())
        out[b] = mix * pixels[b] + (1 - mix) * F.conv2d(pixels[b:b + 1], w, padding=k // 2)[0]
    return out


class Batches(torch.utils.data.Dataset):
    """Batch `step` depends only on (seed, step): distinct concepts within a batch, so that the
    other captions in the batch are true negatives. With a teacher, each image comes twice, clean
    and restyled (same placement), instead of with a caption."""

    def __init__(self, s: Settings, world, tok: Tokenizer, cfg: FlamingoConfig, first: int):
        self.s, self.world, self.tok, self.cfg, self.first = s, world, tok, cfg, first
        self.styles = training_styles(s, world)
        self.restyle_kinds = restyle_kinds(s)

    def __len__(self):
        return self.s.steps - self.first

    def draw(self, concept: int, style: str, rng, restyle=None):
        """One training image (a single emoji, or a scene) and its caption."""
        world, size = self.world, self.cfg.image_size
        if rng.random() < self.s.scene_fraction:
            img, facts = draw_scene(world, world.split("train"), style, rng, size=size, restyle=restyle)
            return img, caption_of(world, facts=facts)
        return draw_single(world, concept, style, rng, size=size, restyle=restyle), caption_of(world, concept=concept)

    def __getitem__(self, i):
        s, world = self.s, self.world
        rng = np.random.default_rng([s.seed, self.first + i])
        concepts = rng.choice(world.split("train"), size=s.batch // 2 if s.pairs else s.batch, replace=False)
        clean, restyled, captions, styles = [], [], [], []
        for c in concepts:
            style = self.styles[int(rng.integers(len(self.styles)))]
            styles.append(style)
            restyle = random_restyle(rng, self.restyle_kinds) if s.restyle and rng.random() < s.restyle else None
            state = rng.bit_generator.state
            img, caption = self.draw(int(c), style, rng, None if s.teacher or s.anchor else restyle)
            if s.teacher or s.anchor:  # the same layout again, restyled (or clean: then the target is exact)
                if restyle is None:  # drawn again it would be this image, and rng would end where it is now
                    restyled.append(img)
                else:
                    rng.bit_generator.state = state
                    restyled.append(self.draw(int(c), style, rng, restyle)[0])
            clean.append(img)
            captions.append(caption)
        to_pixels = lambda imgs: torch.from_numpy(normalize(np.stack(imgs), self.cfg.mean, self.cfg.std))
        if s.teacher:
            return to_pixels(clean), to_pixels(restyled)
        paired = torch.zeros(0, dtype=torch.bool)
        if s.pairs:  # each concept again, alone, in another training style: its pair
            paired = torch.tensor([cap == caption_of(world, concept=int(c)) for c, cap in zip(concepts, captions)])
            for c, style in zip(concepts, styles):
                other = [x for x in self.styles if x != style]
                clean.append(draw_single(world, int(c), other[int(rng.integers(len(other)))], rng, size=self.cfg.image_size))
                captions.append(caption_of(world, concept=int(c)))
        ids = [self.tok.encode(t) for t in captions]
        offsets = torch.tensor(np.cumsum([0] + [len(x) for x in ids[:-1]]))
        # the same caption twice in a batch (scenes can collide) must not count as a negative
        same = torch.tensor([[a == b for b in captions] for a in captions])
        if s.anchor:  # the contrastive loss sees the images as restyled, the anchor their clean drawings
            return to_pixels(restyled), torch.tensor(sum(ids, [])), offsets, same, paired, to_pixels(clean)
        pixels = random_convolution(to_pixels(clean), rng, s.randconv) if s.randconv else to_pixels(clean)
        return pixels, torch.tensor(sum(ids, [])), offsets, same, paired


def restyle_kinds(s: Settings) -> tuple:
    kinds = tuple(x for x in s.restyle_kinds.split(",") if x) or KINDS
    assert all(k in KINDS + INK_KINDS + INK_VARIANT_KINDS for k in kinds), f"unknown --restyle_kinds {s.restyle_kinds!r}"
    return kinds


def training_styles(s: Settings, world) -> tuple:
    styles = tuple(x for x in s.styles.split(",") if x) or world.train_styles
    assert set(styles) <= set(world.train_styles), f"--styles must be among {world.train_styles}"
    return styles


def token_grid(vision: VisionEncoder, imgs, cfg, device) -> torch.Tensor:
    """Images (H x W x 3 uint8) -> the frozen encoder's tokens [n, cells, d]."""
    return vision(torch.from_numpy(normalize(np.stack(imgs), cfg.mean, cfg.std)).to(device))


def features(vision: VisionEncoder, imgs, cfg, device) -> torch.Tensor:
    """Images -> one unit vector each (the flattened token grid): what the probes compare."""
    return F.normalize(token_grid(vision, imgs, cfg, device).flatten(1), dim=-1)


def embedding(vision: VisionEncoder, imgs, cfg, device) -> torch.Tensor:
    """Images -> one unit vector each, the token grid averaged: what RICES ranks supports by
    (src/engine/engine.ts imageEmbedding). Unlike `features`, it does not depend on where the emoji sits."""
    return F.normalize(token_grid(vision, imgs, cfg, device).mean(1), dim=-1)


@torch.no_grad()
def concept_neighbours(vision: VisionEncoder, world, cfg, concepts, styles, k: int = 32, seed: int = 0,
                       device="cpu") -> dict[int, list[int]]:
    """Each concept -> its k nearest other concepts by `embedding` (RICES's measure), each concept's
    embedding the mean over `styles` of one drawing each: the look-alikes RICES would put beside it."""
    was_training = vision.training
    vision.eval()
    rng = np.random.default_rng(seed)
    concepts = [int(c) for c in concepts]
    e = sum(torch.cat([embedding(vision, [draw_single(world, c, style, rng) for c in concepts[i:i + 256]], cfg, device)
                       for i in range(0, len(concepts), 256)]) for style in styles)
    e = F.normalize(e, dim=-1)
    sim = e @ e.T
    sim.fill_diagonal_(-2.0)  # never its own neighbour
    nearest = sim.topk(min(k, len(concepts) - 1), dim=1).indices.tolist()
    vision.train(was_training)
    return {c: [concepts[j] for j in row] for c, row in zip(concepts, nearest)}


@torch.no_grad()
def few_shot_probe(vision: VisionEncoder, world, cfg, n_episodes=300, n_way=5, seed=123, device="cpu", style="noto",
                   support_style=None, restyle_kinds=()):
    """Nearest-neighbour N-way 1-shot on held-out concepts, query in `style`, supports in
    `support_style` (default the same style; different placements): do the frozen features
    separate concepts never trained on? Validation uses training styles; OpenMoji is kept for the
    final evaluation. restyle_kinds: each episode's images all restyled the same way, one of these
    kinds (emojiworld/restyle.py), as in probes.bridge --styles."""
    was_training = vision.training
    vision.eval()
    rng = np.random.default_rng(seed)
    pool = world.own_drawings(style, world.split("heldout"))  # a stand-in drawing would be a training style's
    correct = 0
    for _ in range(n_episodes):
        restyle = random_restyle(rng, restyle_kinds) if restyle_kinds else None
        cs = rng.choice(pool, size=n_way, replace=False)
        support = [draw_single(world, int(c), support_style or style, rng, cfg.image_size, restyle=restyle) for c in cs]
        q = int(rng.integers(n_way))
        query = draw_single(world, int(cs[q]), style, rng, cfg.image_size, restyle=restyle)
        f = features(vision, support + [query], cfg, device)
        correct += int((f[:-1] @ f[-1]).argmax().item() == q)
    vision.train(was_training)
    return correct / n_episodes


@torch.no_grad()
def naming_probe(vision: VisionEncoder, world, cfg, styles, query_style, n_queries=300, seed=321, device="cpu"):
    """Recognise a TRAINING concept drawn in an unseen style: nearest prototype (mean feature of
    one drawing per style in `styles`) among all training concepts; like naming, without the LM."""
    was_training = vision.training
    vision.eval()
    rng = np.random.default_rng(seed)
    pool = [int(c) for c in world.split("train")]
    protos = 0
    for style in styles:
        imgs = [draw_single(world, c, style, rng, cfg.image_size) for c in pool]
        protos = protos + torch.cat([features(vision, imgs[i:i + 256], cfg, device) for i in range(0, len(imgs), 256)])
    protos = F.normalize(protos, dim=-1)
    queries = [int(c) for c in rng.choice(world.own_drawings(query_style, pool), size=n_queries)]
    f = features(vision, [draw_single(world, c, query_style, rng, cfg.image_size) for c in queries], cfg, device)
    hits = (f @ protos.t()).argmax(1).cpu().numpy() == np.array([pool.index(c) for c in queries])
    vision.train(was_training)
    return float(hits.mean())


def probes(vision: VisionEncoder, world, cfg, s: Settings) -> dict:
    """The validation numbers: within the validation style, and, when that style was left out of
    training, across styles (supports / prototypes in the training styles, queries in it)."""
    v, styles = s.validation_style, training_styles(s, world)
    out = {f"nn_5way_1shot_heldout_concepts_{v}": few_shot_probe(vision, world, cfg, device=s.device, style=v)}
    if v not in styles:
        out[f"nn_5way_1shot_heldout_concepts_{styles[0]}_to_{v}"] = few_shot_probe(
            vision, world, cfg, device=s.device, style=v, support_style=styles[0])
        out[f"naming_{len(world.split('train'))}way_train_concepts_to_{v}"] = naming_probe(
            vision, world, cfg, styles, v, device=s.device)
    return out


class Student(nn.Module):
    """Style-invariance distillation: a copy of the teacher's encoder, trained to map restyled
    images to the teacher's features of the clean ones. BatchNorm keeps the teacher's statistics
    (eval mode) so that clean features do not drift with the restyled batches."""

    def __init__(self, cfg: FlamingoConfig, teacher_state: dict, teacher_cfg: FlamingoConfig | None = None):
        super().__init__()
        teacher_cfg = teacher_cfg or cfg
        self.vision, self.teacher = VisionEncoder(cfg), VisionEncoder(teacher_cfg)
        # a student with IBN-a stages the teacher lacks starts from the teacher's weights carried over
        ibn = cfg.vision_ibn and not teacher_cfg.vision_ibn
        self.vision.load_state_dict(ibn_state_from_batchnorm(teacher_state, cfg) if ibn else teacher_state)
        self.teacher.load_state_dict(teacher_state)
        self.teacher.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def loss(self, clean, restyled):
        with torch.no_grad():
            target = self.teacher(clean)
        return F.mse_loss(self.vision(restyled), target)


def main():
    s = override(Settings())
    restyle_kinds(s)  # an unknown kind fails here, not in the first batch
    setup_threads()
    out = Path(s.out)
    tok = Tokenizer.load(s.tokenizer)
    world = load_world(styles=s.world)  # the fixed EmojiWorld split (seed 0); `seed` only drives data and init
    torch.manual_seed(s.seed)
    if s.teacher:
        teacher = torch.load(s.teacher, map_location="cpu")
        teacher_cfg = FlamingoConfig.from_dict(teacher["config"])
        cfg = FlamingoConfig.from_dict({**teacher["config"], "vision_ibn": s.vision_ibn or teacher_cfg.vision_ibn})
        model = Student(cfg, teacher["vision"], teacher_cfg).to(s.device)
        params = list(model.vision.parameters())
    else:
        widths = tuple(int(c) for c in s.vision_channels.split(",") if c)
        cfg = FlamingoConfig(vocab_size=len(tok.vocab), vision_ibn=s.vision_ibn,
                             **({"vision_channels": widths} if widths else {}))
        model = Contrastive(cfg, len(tok.vocab), s.d_embed).to(s.device)
        params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
    step, _, clock = resume(out / "last.pt", model, opt)
    if step == 0 and s.init:
        init = torch.load(s.init, map_location="cpu")["vision"]
        if cfg.vision_ibn and not any(".IN." in k for k in init):  # a plain encoder continued with IBN-a
            init = ibn_state_from_batchnorm(init, cfg)
        model.vision.load_state_dict(init)  # same widths, or it fails
        print(f"encoder initialised from {s.init}")
    anchor = None
    if s.anchor:  # a frozen copy of the start; the student's BatchNorm keeps its statistics too (as Student's)
        assert s.init and not s.pairs and not s.randconv and not s.teacher, "--anchor needs --init, without --pairs/--randconv/--teacher"
        start = torch.load(s.init, map_location="cpu")  # as it was trained (with IBN-a or not), not as continued
        anchor = VisionEncoder(FlamingoConfig.from_dict(start["config"])).to(s.device).eval().requires_grad_(False)
        anchor.load_state_dict(start["vision"])
    print(f"vision encoder: {sum(p.numel() for p in model.vision.parameters()) / 1e6:.2f}M parameters"
          f"{'; distilling ' + s.teacher if s.teacher else ''}{'; anchored to ' + s.init if s.anchor else ''}"
          f"; styles {', '.join(training_styles(s, world))}")

    def save(path):
        save_checkpoint(path, model=model.state_dict(), vision=model.vision.state_dict(), opt=opt.state_dict(),
                        step=step, config=cfg.to_dict(), settings=settings_dict(s), clock=clock.state())

    if step == 0 and s.eval_every:
        log_line(out / "eval.jsonl", {"step": 0, **probes(model.vision, world, cfg, s), "cpu_s": clock.cpu})
    loader = batch_loader(Batches(s, world, tok, cfg, step), s.workers)
    t_start = time.time()
    for batch in loader:
        batch = [t.to(s.device) for t in batch]
        lr = float(s.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + np.cos(np.pi * step / s.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        metrics = {}
        if s.teacher:
            loss = model.loss(*batch)
        else:
            pixels, ids, offsets, same, paired = batch[:5]
            if anchor is not None:
                model.vision.eval()  # BatchNorm at the start's statistics (the probes toggle modes)
            tokens = model.vision(pixels)
            img, txt = model.embed_tokens(tokens), model.embed_texts(ids, offsets)
            scale = model.log_scale.exp().clamp(max=100)
            logits = scale * img @ txt.t()
            logits = logits.masked_fill(same & ~torch.eye(len(same), dtype=torch.bool, device=s.device), -1e4)
            target = torch.arange(len(logits), device=s.device)
            loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
            metrics["batch_acc"] = (logits.argmax(1) == target).float().mean().item()
            if anchor is not None:
                with torch.no_grad():
                    target_tokens = anchor(batch[5])
                anchor_loss = F.mse_loss(tokens, target_tokens)
                loss = loss + s.anchor * anchor_loss
                metrics["anchor_mse"] = anchor_loss.item()
            if s.pairs and paired.any():
                # image <-> image InfoNCE between a concept's two drawings (single emoji, two styles); the
                # other pairs' concepts are distinct, so every off-diagonal entry is a true negative
                n = len(paired)
                a, b = img[:n][paired], img[n:][paired]
                pair_logits = scale * a @ b.t()
                pair_target = torch.arange(len(a), device=s.device)
                pair_loss = (F.cross_entropy(pair_logits, pair_target) + F.cross_entropy(pair_logits.t(), pair_target)) / 2
                loss = loss + s.pairs * pair_loss
                metrics["pair_acc"] = (pair_logits.argmax(1) == pair_target).float().mean().item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0:
            log_line(out / "log.jsonl", {"step": step, "loss": loss.item(), **metrics, "lr": lr,
                                         "cpu_s": clock.cpu, "wall_s": clock.wall})
        if step % s.eval_every == 0 or step == s.steps:
            log_line(out / "eval.jsonl", {"step": step, **probes(model.vision, world, cfg, s),
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
