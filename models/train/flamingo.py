"""Stage 3: train the Perceiver Resampler and the gated xattn-dense blocks; vision encoder and
language model frozen (Flamingo, Sec. 2-3).

    cd models && /usr/bin/python3 -m train.flamingo [--steps=3000 ...]
    torchrun --nproc_per_node=2 -m train.flamingo ...   # DistributedDataParallel (gloo / nccl)

Each step accumulates gradients over all three datasets, weighted as in the paper:
interleaved pages (M3W) lambda=1.0, image-caption pairs 0.2, clip-caption pairs 0.03
(round-robin instead of accumulation cost the paper 68.4 -> 59.7). Up to 5 images per page.
--match_weight adds a second objective, not in the paper: at every repeated label on a page, the frozen LM's
copy heads should attend to the supports with that label (flamingo/matching.py; the shipped model's step 3p);
--match_temperature > 1 asks those heads for a larger margin, as many supports need.
Ablation switches: --tanh_gating=false, --xattn_every=2, --resampler=mlp, --unfreeze_lm=true,
--interleaved_weight=0 (no interleaved data).
Resumable: rerunning the same command continues from <out>/last.pt.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from emojiworld import text as ew_text
from emojiworld.concepts import load_world, novel_names, pseudo_words
from emojiworld.restyle import random_restyle
from emojiworld.samples import (caption_pair, clip_pair, draw_clip, draw_single, interleaved_page, look_alikes,
                                scene_qa, text_episode)
from flamingo.mask import media_index
from flamingo.matching import copy_heads, keep_attention, matching_loss, matching_targets
from flamingo.model import Flamingo, FlamingoConfig
from flamingo.preprocess import normalize
from flamingo.tokenizer import Tokenizer
from train.vision import concept_neighbours
from flamingo.training import (RUNS_DIR, WeightAverage, batch_loader, log_line, override, resume, save_checkpoint,
                               settings_dict, setup_threads)


@dataclass
class Settings:
    out: str = str(RUNS_DIR / "flamingo")
    tokenizer: str = str(RUNS_DIR / "tokenizer.json")
    vision: str = str(RUNS_DIR / "vision" / "last.pt")
    lm: str = str(RUNS_DIR / "lm" / "best.pt")
    init: str = ""  # a stage-3 checkpoint whose weights start this run (fresh optimizer), e.g. to continue on CPU
    time_emb_std: float = 0.0  # > 0: the resampler's time embeddings start as N(0, std^2) (zeros otherwise)
    seed: int = 0
    steps: int = 3000
    lr: float = 1e-3
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    ema: float = 0.0  # > 0: final.pt holds a moving average of the trainable weights, this decay per step
    # per-dataset batch sizes and weights (the paper's lambdas)
    page_batch: int = 16
    pair_batch: int = 32
    clip_batch: int = 8
    interleaved_weight: float = 1.0
    pair_weight: float = 0.2
    clip_weight: float = 0.03
    max_images: int = 5
    # with this probability a page has at most short_max_images instead (drawn only when > 0, so that 0 keeps the
    # original pages): long-context training that still sees pages as short as few-shot prompts
    short_page_share: float = 0.0
    short_max_images: int = 8
    max_way: int = 4  # distinct concepts on a binding / names page (samples.interleaved_page)
    novel_name_share: float = 0.0  # binding pages labelled with made-up names of real words (samples.interleaved_page)
    coined_word_share: float = 0.0  # each word of a made-up name a coined word (concepts.coined_word) with this probability
    other_name_share: float = 0.0  # binding pages labelled with the names of other training concepts (samples.interleaved_page)
    restyle_share: float = 0.0  # binding / names / locale pages recoloured as a whole (samples.interleaved_page)
    similar_share: float = 0.0  # binding / names / locale pages of concepts from one subgroup (samples.interleaved_page)
    one_style_share: float = 0.0  # binding / names / locale pages drawn in one style (samples.interleaved_page)
    similar_by: str = "subgroup"  # or "vision": those pages' concepts near one another by the frozen encoder (RICES's measure)
    clip_questions: str = "event"  # clip pairs: "event", "balanced" or one question family (samples.clip_pair)
    seq_len: int = 192
    # architecture of the bridge
    n_latents: int = 8
    resampler_layers: int = 2
    resampler: str = "perceiver"  # or "mlp" (ablation)
    # > 1: latent groups per stretch of a clip's frames (model.PerceiverResampler); 0: as the --init
    # checkpoint's (1 without one)
    resampler_time_groups: int = 0
    xattn_every: int = 1
    tanh_gating: bool = True
    unfreeze_lm: bool = False
    # > 0: add the matching objective (flamingo.matching) on pages, this weight; its heads: "layer.head,..."
    # or empty for the LM's own copy heads (found on text binding episodes at the start)
    match_weight: float = 0.0
    match_heads: str = ""
    match_temperature: float = 1.0  # > 1: the objective asks for the margin of more supports (matching_loss)
    qk_heads: str = ""  # ablation: "layer.head,...": those LM heads' query and key projections learn too
    eval_every: int = 250
    eval_episodes: int = 200
    ckpt_every: int = 100
    world: str = "v1"  # training styles (emojiworld.concepts.WORLD_STYLES): v1's three, or v2's seven
    device: str = "cpu"
    workers: int = 0
    max_minutes: float = 0.0


# ----------------------------------------------------------------------------- data

def encode_sample(segments, tok: Tokenizer, cfg: FlamingoConfig, seq_len: int):
    """Segments -> token ids (with <bos>), and the list of media (each [t, 3, H, W] float32)."""
    ids = [tok.token_id("<bos>")] + tok.encode(ew_text.to_text(segments, close_last=True))
    media = [normalize(np.stack(s["video"] if "video" in s else [s["image"]]), cfg.mean, cfg.std)
             for s in segments if "text" not in s]
    ids = ids[: seq_len + 1]
    n_images = sum(1 for i in ids if i == tok.token_id("<image>"))
    return ids, media[:n_images]


def collate(samples, tok: Tokenizer):
    """Pad a list of (ids, media) into tensors. Targets: next token, -100 on padding and on
    <image> (the model cannot know when an image comes). Media padded with empty slots that no
    token points to; media grouped by frame count for the resampler."""
    pad, image = tok.token_id("<pad>"), tok.token_id("<image>")
    S = max(len(ids) for ids, _ in samples) - 1
    x = torch.full((len(samples), S + 1), pad, dtype=torch.long)
    for b, (ids, _) in enumerate(samples):
        x[b, : len(ids)] = torch.tensor(ids)
    inputs, targets = x[:, :-1], x[:, 1:].clone()
    targets[(targets == pad) | (targets == image)] = -100
    M = max(1, max(len(m) for _, m in samples))
    media = [(b, j, torch.from_numpy(item)) for b, (_, m) in enumerate(samples) for j, item in enumerate(m)]
    return {"input_ids": inputs, "targets": targets, "media": media, "n_media": M}


def page_max_images(s: Settings, rng) -> int:
    if s.short_page_share > 0 and rng.random() < s.short_page_share:
        return s.short_max_images
    return s.max_images


class Batches(torch.utils.data.Dataset):
    """Step `i` -> one batch from each dataset, a pure function of (seed, rank, step)."""

    def __init__(self, s: Settings, world, tok, cfg, first: int, rank: int, neighbours=None):
        self.s, self.world, self.tok, self.cfg, self.first, self.rank = s, world, tok, cfg, first, rank
        self.neighbours = neighbours  # for similar_by="vision" (train.vision.concept_neighbours)

    def __len__(self):
        return self.s.steps - self.first

    def __getitem__(self, i):
        s, w = self.s, self.world
        rng = np.random.default_rng([s.seed, self.rank, self.first + i])
        make = {
            "pages": (s.page_batch, lambda: interleaved_page(w, rng, "train", max_images=page_max_images(s, rng),
                                                             novel_name_share=s.novel_name_share,
                                                             coined_word_share=s.coined_word_share,
                                                             max_way=s.max_way, other_name_share=s.other_name_share,
                                                             restyle_share=s.restyle_share,
                                                             similar_share=s.similar_share,
                                                             neighbours=self.neighbours,
                                                             one_style_share=s.one_style_share)),
            "pairs": (s.pair_batch, lambda: caption_pair(w, rng, "train")),
            "clips": (s.clip_batch, lambda: clip_pair(w, rng, "train", s.clip_questions)),
        }
        return {name: collate([encode_sample(f(), self.tok, self.cfg, s.seq_len) for _ in range(n)], self.tok)
                for name, (n, f) in make.items() if n > 0}


def media_latents(model: Flamingo, batch, device) -> torch.Tensor:
    """All media of a batch -> latents [b, M, l, d]; the vision encoder runs frozen (no grad)."""
    cfg = model.cfg
    out = torch.zeros(batch["input_ids"].shape[0], batch["n_media"], cfg.n_latents, cfg.d_vision, device=device)
    by_frames = {}
    for b, j, item in batch["media"]:
        by_frames.setdefault(item.shape[0], []).append((b, j, item))
    for t, items in by_frames.items():
        pixels = torch.stack([item for _, _, item in items]).to(device)  # [k, t, 3, H, W]
        with torch.no_grad():
            feats = model.vision_encoder(pixels.flatten(0, 1))
        latents = model.resampler(feats.reshape(len(items), t, *feats.shape[1:]))
        idx_b = torch.tensor([b for b, _, _ in items], device=device)
        idx_j = torch.tensor([j for _, j, _ in items], device=device)
        out = out.index_put((idx_b, idx_j), latents)
    return out


class Stage3Loss(torch.nn.Module):
    """The training objective as a module, so that DistributedDataParallel can wrap it: next-token
    cross-entropy, plus match_weight x matching_loss on the copy heads when asked (the parts of the last
    call are kept in `parts`)."""

    def __init__(self, model: Flamingo, image_id: int, device, match_weight: float = 0.0,
                 match_heads=(), output_ids=(), end_id: int = -1, match_temperature: float = 1.0):
        super().__init__()
        self.model, self.image_id, self.device = model, image_id, device
        self.match_weight, self.match_heads, self.output_ids = match_weight, list(match_heads), list(output_ids)
        self.end_id, self.match_temperature = end_id, match_temperature
        self.parts = {}
        keep_attention(model.flamingo_lm.lm, match_weight > 0)

    def forward(self, batch) -> torch.Tensor:
        ids = batch["input_ids"].to(self.device)
        media = media_latents(self.model, batch, self.device)
        logits = self.model.flamingo_lm(ids, media_index(ids, self.image_id), media)[0]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].to(self.device).reshape(-1),
                               ignore_index=-100)
        self.parts = {"lm": loss.item()}
        if self.match_weight > 0:
            targets = [matching_targets(row, self.image_id, self.output_ids, self.end_id)
                       for row in batch["input_ids"].tolist()]
            if any(targets):
                attention = [block.attn.attention for block in self.model.flamingo_lm.lm.blocks]
                match = matching_loss(attention, targets, self.match_heads, self.match_temperature)
                self.parts["match"] = match.item()
                loss = loss + self.match_weight * match
        return loss


# ----------------------------------------------------------------------------- quick probes (PyTorch)

VALIDATION_STYLE = "noto"  # a training style: OpenMoji is for the final evaluation only, never for choices


PROBE_TASKS = ("binding", "naming", "clip-direction", "scene-count", "novel-names")
# N-way K-shot binding on held-out concepts (5-way 1-shot unless asked), by the kind of label bound
# (probes.bridge --labels); each maker gets the concepts and returns one label per concept:
BINDING_LABELS = {
    "binding": lambda world, rng, cs: pseudo_words(rng, len(cs)),
    "novel-names": lambda world, rng, cs: [world.concepts[c].name for c in cs],  # their own names
    "made-up-names": lambda world, rng, cs: novel_names(world, rng, len(cs)),  # real words, new combinations
    "other-names": lambda world, rng, cs: [world.concepts[int(c)].name  # names of training concepts
                                           for c in rng.choice(world.split("train"), size=len(cs), replace=False)],
    "coined-names": lambda world, rng, cs: novel_names(world, rng, len(cs), coined_share=0.5),  # about half coined
}


def probe_set(world, task: str, n: int, seed: int, n_way: int = 5, shots: int = 1, restyle_kinds=(), neighbours=None):
    """Validation probes, drawn in a TRAINING style so that nothing is chosen on the evaluation
    style. Each item is (segments, completion): the completion is scored after the last text.
    'binding' = n_way-way shots-shot (5-way 1-shot) pseudo-words on held-out concepts (never trained
    on, in any style), supports in random order;
    'novel-names' = the same with the held-out concepts' own names (never in any training text),
    and the other BINDING_LABELS;
    'naming' = 0-shot name of a training concept; 'naming-kin' = the same after `shots` supports
    labelled with their names: the concept itself (another drawing) and look-alikes of its subgroup,
    in random order, a stand-in for naming-rices (RICES finds the concept among look-alikes);
    'clip-direction' = which way did it move (clips, 0-shot); 'scene-count' = how many (scenes,
    0-shot): the two need no names.
    restyle_kinds (binding and naming): every image of an item restyled the same way, one of these
    kinds (emojiworld/restyle.py), to stand in for an art style never trained on.
    neighbours ('naming-kin'): the look-alikes are the concept's nearest by the frozen encoder instead of its
    subgroup (look_alikes; train.vision.concept_neighbours), the kind RICES picks."""
    rng = np.random.default_rng(seed)
    train = world.split("train")
    out = []
    for _ in range(n):
        restyle = random_restyle(rng, restyle_kinds) if restyle_kinds else None  # no draw without: same sets as before
        draw = lambda c: draw_single(world, c, VALIDATION_STYLE, rng, restyle=restyle)
        if task in BINDING_LABELS:
            cs = [int(c) for c in rng.choice(world.split("heldout"), size=n_way, replace=False)]
            labels = BINDING_LABELS[task](world, rng, cs)
            segs = []
            for k in rng.permutation(np.repeat(np.arange(n_way), shots)):
                segs += [{"image": draw(cs[k])},
                         {"text": ew_text.caption(labels[k])}]
            q = int(rng.integers(n_way))
            segs += [{"image": draw(cs[q])}, {"text": ew_text.CAPTION_QUERY}]
            out.append((segs, f" {labels[q]}."))
        elif task == "naming":
            c = int(rng.choice(train))
            segs = [{"image": draw(c)}, {"text": ew_text.CAPTION_QUERY}]
            out.append((segs, f" {world.concepts[c].name}."))
        elif task == "naming-kin":
            c = int(rng.choice(train))
            segs = []
            for k in rng.permutation(look_alikes(world, rng, train, shots, first=c, neighbours=neighbours)):
                segs += [{"image": draw(k)}, {"text": ew_text.caption(world.concepts[k].name)}]
            segs += [{"image": draw(c)}, {"text": ew_text.CAPTION_QUERY}]
            out.append((segs, f" {world.concepts[c].name}."))
        elif task == "clip-direction":
            frames, facts = draw_clip(world, train, VALIDATION_STYLE, rng, event="move")
            q, a = ew_text.clip_qas(facts, lambda i: world.concepts[i].name)[1]
            out.append(([{"video": frames}, {"text": ew_text.question_query(q)}], f" {a}"))
        else:
            img, q, a, _ = scene_qa(world, train, VALIDATION_STYLE, rng, family="how many")
            out.append(([{"image": img}, {"text": ew_text.question_query(q)}], f" {a}"))
    return out


@torch.no_grad()
def completion_logits(model: Flamingo, tok: Tokenizer, segs, completion: str, device) -> tuple[torch.Tensor, list]:
    """Teacher-forced: (the logits predicting each token of the completion [len, vocab], its tokens);
    row 0 is what the model predicts right after the last text."""
    ids, media = encode_sample(segs, tok, model.cfg, 10_000)
    ids = ids[:-1]  # drop the closing <|endofchunk|> of the query text
    last = segs[-1]["text"]
    full = ids + tok.encode(last + completion)[len(tok.encode(last)):]
    assert len(full) > len(ids)
    batch = collate([(full + [tok.token_id("<pad>")], media)], tok)
    x = batch["input_ids"].to(device)
    logits = model.flamingo_lm(x, media_index(x, tok.token_id("<image>")), media_latents(model, batch, device))[0]
    return logits[0, len(ids) - 1: len(full) - 1], full[len(ids):]


def completion_tokens(model: Flamingo, tok: Tokenizer, segs, completion: str, device) -> tuple[list, list]:
    """Teacher-forced: (the tokens the model ranks first, the completion's tokens) after the last text."""
    logits, target = completion_logits(model, tok, segs, completion, device)
    return logits.argmax(-1).tolist(), target


@torch.no_grad()
def probe_completions(model: Flamingo, tok: Tokenizer, probes, device) -> list:
    """completion_tokens for every probe, in eval mode (the model's mode is restored after)."""
    was_training = model.training
    model.eval()
    pairs = [completion_tokens(model, tok, segs, c, device) for segs, c in probes]
    if was_training:
        model.train()
        model.vision_encoder.eval()  # frozen: BatchNorm statistics stay fixed (Flamingo.freeze_for_stage3)
    return pairs


def exact_match(pairs) -> float:
    """The share of (got, target) token lists that match whole."""
    return sum(got == target for got, target in pairs) / len(pairs)


def probe_accuracy(model: Flamingo, tok: Tokenizer, probes, device) -> float:
    """Exact match of the whole completion, teacher-forced."""
    return exact_match(probe_completions(model, tok, probes, device))


# ----------------------------------------------------------------------------- main

def build_model(s: Settings, tok: Tokenizer, bridge_config: dict | None = None) -> Flamingo:
    """The stage-3 model: frozen stages from s.vision / s.lm, a fresh bridge shaped by s; a setting
    left at 0 (resampler_time_groups) is taken from bridge_config, the config of a trained bridge."""
    time_groups = s.resampler_time_groups or (bridge_config or {}).get("resampler_time_groups", 1)
    vision_ckpt, lm_ckpt = torch.load(s.vision, map_location="cpu"), torch.load(s.lm, map_location="cpu")
    lm_cfg = lm_ckpt["config"]
    cfg = FlamingoConfig.from_dict({**FlamingoConfig.from_dict(vision_ckpt["config"]).to_dict(),
                                    **{k: lm_cfg[k] for k in ("vocab_size", "d_model", "n_layers", "n_heads", "rope_base")},
                                    "context_length": s.seq_len, "n_latents": s.n_latents,
                                    "resampler_layers": s.resampler_layers, "xattn_every": s.xattn_every,
                                    "use_tanh_gating": s.tanh_gating, "resampler_kind": s.resampler,
                                    "resampler_time_groups": time_groups})
    assert cfg.vocab_size == len(tok.vocab)
    model = Flamingo(cfg)
    model.vision_encoder.load_state_dict(vision_ckpt["vision"])
    model.flamingo_lm.lm.load_state_dict(lm_ckpt["lm"])
    model.freeze_for_stage3(unfreeze_lm=s.unfreeze_lm)
    if s.qk_heads:
        model.unfreeze_query_key(parse_heads(s.qk_heads))
    return model


def parse_heads(text: str) -> list[tuple[int, int]]:
    """'1.0,3.0' -> [(1, 0), (3, 0)]: (layer, head) pairs."""
    return [tuple(int(v) for v in h.split(".")) for h in text.split(",")]


def lm_copy_heads(model: Flamingo, tok: Tokenizer, world) -> list[tuple[int, int]]:
    """The heads the frozen LM copies a label with, found on 100 text binding episodes (fixed: the same every run)."""
    rng = np.random.default_rng(0)
    episodes = [[tok.token_id("<bos>")] + tok.encode(text_episode(world, rng, "train", kind="binding"))
                for _ in range(100)]
    return copy_heads(model.flamingo_lm, episodes, tok.token_id("<image>"), tok.encode(ew_text.CAPTION_QUERY),
                      tok.token_id(ew_text.EOC))[0]


# The bundled model's three stages (public/models/emojiworld is exported from them: train/v2.sh, STAGE=export).
SHIPPED = {"bridge": "checkpoints/v2/bridge-mix.pt", "vision": "checkpoints/v2/vision-ink.pt", "lm": "checkpoints/v2/lm.pt"}


def load_shipped():
    """The bundled model in PyTorch, in eval mode, and its tokenizer (run from models/)."""
    return load_trained(SHIPPED["bridge"], SHIPPED["vision"], SHIPPED["lm"])


def load_trained(bridge: str, vision: str = "checkpoints/vision.pt", lm: str = "checkpoints/lm.pt",
                 tokenizer: str = "../public/models/emojiworld/tokenizer.json"):
    """A trained stage-3 model (by default on v1's stages, models/checkpoints/; load_shipped: the bundled one) in eval
    mode, and its tokenizer: for probes and diagnostics (run from models/)."""
    ckpt = torch.load(bridge, map_location="cpu")
    s = Settings(tokenizer=tokenizer, vision=vision, lm=lm)  # the rest of the bridge's shape is the default's
    tok = Tokenizer.load(s.tokenizer)
    model = build_model(s, tok, ckpt["config"])
    model.load_state_dict(ckpt["model"], strict=False)
    return model.eval(), tok


def main():
    s = override(Settings())
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank = int(os.environ.get("RANK", 0))
    if distributed:
        dist.init_process_group("nccl" if s.device == "cuda" else "gloo")
        if s.device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        os.environ.setdefault("TORCH_THREADS", "1")
    setup_threads()
    out = Path(s.out)
    tok = Tokenizer.load(s.tokenizer)
    world = load_world(styles=s.world)  # the fixed EmojiWorld split (seed 0); `seed` only drives data and init
    init = torch.load(s.init, map_location="cpu") if s.init else {}
    torch.manual_seed(s.seed)
    model = build_model(s, tok, init.get("config")).to(s.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # --qk_heads: the LM weights it opens are not decayed (decay would also move the rows kept frozen)
    no_decay = set(model.partly_trainable)  # the qkv weights --qk_heads opened (Flamingo.unfreeze_query_key)
    groups = [{"params": [p for p in trainable if id(p) not in no_decay]},
              {"params": [p for p in trainable if id(p) in no_decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=s.lr, weight_decay=s.weight_decay,
                            betas=(0.9, 0.95))
    resumed = {}
    step, best, clock = resume(out / "last.pt", model, opt, extra=resumed)
    # a continued run records what it continued (the manifest's "training" shows the whole lineage)
    continued_from = init.get("meta", {}).get("training")
    if step == 0 and s.init:
        # a full stage-3 checkpoint, or just its trainable part (the frozen rest comes from --vision/--lm)
        missing, unexpected = model.load_state_dict(init["model"], strict=False)
        # the LM's own weights come from --lm, trainable (--unfreeze_lm, --qk_heads) or not
        assert not unexpected and all(not p.requires_grad or n.startswith("flamingo_lm.lm.")
                                      for n, p in model.named_parameters() if n in missing)
        print(f"weights from {s.init}")
    if step == 0 and s.time_emb_std > 0:
        # LayerNormed visual features have norm ~sqrt(d): time embeddings that start at zero stay
        # too small for the resampler to tell frames apart (diagnose_motion.py)
        with torch.no_grad():
            model.resampler.time_emb.normal_(0.0, s.time_emb_std)
    average = WeightAverage(model, s.ema) if s.ema > 0 else None
    if average and step > 0:  # copied into place, so that the average stays on the model's device
        for n, t in resumed["ema"].items():
            average.shadow[n].copy_(t)
    image_id = tok.token_id("<image>")
    output_ids, end_id = tok.encode(ew_text.CAPTION_QUERY), tok.token_id(ew_text.EOC)
    match_heads = []
    if s.match_weight > 0:
        if s.match_heads:
            match_heads = parse_heads(s.match_heads)
        else:
            match_heads = lm_copy_heads(model, tok, world)
        if not match_heads:
            raise SystemExit("--match_weight: this LM has no copy heads on text binding episodes (flamingo.matching."
                             "copy_heads); name some with --match_heads=layer.head,...")
        if rank == 0:
            print(f"matching objective, weight {s.match_weight}, temperature {s.match_temperature}, "
                  f"on heads (layer, head) {match_heads}")
    objective = Stage3Loss(model, image_id, s.device, s.match_weight, match_heads, output_ids, end_id,
                           s.match_temperature)
    if distributed:  # gradients of the trainable parameters are all-reduced in backward
        objective = torch.nn.parallel.DistributedDataParallel(objective)
    weights = {"pages": s.interleaved_weight, "pairs": s.pair_weight, "clips": s.clip_weight}
    probes = {t: probe_set(world, t, s.eval_episodes, seed=7 + i) for i, t in enumerate(PROBE_TASKS)}
    if rank == 0:
        print(f"world size {os.environ.get('WORLD_SIZE', 1)}; stage 3: {model.n_trainable() / 1e6:.2f}M trainable of "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")

    def training_meta():  # in every checkpoint, so that a run continued from any of them keeps the lineage
        return {"training": {"stage3_steps": step, "stage3_cpu_s": clock.cpu, "stage3_wall_s": clock.wall,
                             "device": s.device, "world_size": int(os.environ.get("WORLD_SIZE", 1)),
                             **({"continued_from": continued_from} if continued_from else {})}}

    def save(path):
        save_checkpoint(path, model=model.state_dict(), opt=opt.state_dict(), step=step, best=best,
                        config=model.cfg.to_dict(), settings=settings_dict(s), clock=clock.state(),
                        tokenizer=s.tokenizer, meta=training_meta(), **({"ema": average.shadow} if average else {}))

    neighbours = None
    if s.similar_by == "vision":
        neighbours = concept_neighbours(model.vision_encoder, world, model.cfg, world.split("train"),
                                        world.train_styles, device=s.device)
    elif s.similar_by != "subgroup":
        raise SystemExit(f"--similar_by={s.similar_by!r}: use subgroup or vision")
    loader = batch_loader(Batches(s, world, tok, model.cfg, step, rank, neighbours), s.workers)
    t_start = time.time()
    for batches in loader:
        lr = s.lr * min(1.0, (step + 1) / s.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        losses = {}
        # one forward+backward per dataset, gradients accumulated (paper: all datasets every step)
        for name, batch in batches.items():
            if weights[name] <= 0:
                continue
            loss = objective(batch)
            (weights[name] * loss).backward()
            parts = (objective.module if distributed else objective).parts
            losses[name] = parts["lm"]
            if "match" in parts:
                losses[f"match_{name}"] = parts["match"]
        torch.nn.utils.clip_grad_norm_(trainable, s.grad_clip)
        opt.step()
        if average:
            average.update(model)
        step += 1
        if rank == 0 and step % 20 == 0:
            gates = [round(b.attn_gate.tanh().item(), 3) for b in model.flamingo_lm.xattn if hasattr(b, "attn_gate")]
            log_line(out / "log.jsonl", {"step": step, **{f"loss_{k}": v for k, v in losses.items()}, "lr": lr,
                                         "tanh_alpha": str(gates), "cpu_s": clock.cpu, "wall_s": clock.wall})
        if rank == 0 and (step % s.eval_every == 0 or step == s.steps):
            acc = {f"{t}_probe": probe_accuracy(model, tok, p, s.device) for t, p in probes.items()}
            log_line(out / "eval.jsonl", {"step": step, **acc, "cpu_s": clock.cpu, "wall_s": clock.wall})
            best = max(best, acc["binding_probe"])  # reported only: the model shipped is final.pt
        if rank == 0 and (step % s.ckpt_every == 0 or step == s.steps):
            save(out / "last.pt")
        if s.max_minutes and time.time() - t_start > 60 * s.max_minutes:
            if rank == 0:
                save(out / "last.pt")
                print(f"stopping after {s.max_minutes} minutes at step {step} (resume with the same command)")
            break
    if rank == 0:
        # weights only (no optimizer state): what export.py reads
        final_weights = average.state_dict(model) if average else model.state_dict()
        save_checkpoint(out / "final.pt", model=final_weights, step=step, config=model.cfg.to_dict(),
                        settings=settings_dict(s), clock=clock.state(), tokenizer=s.tokenizer, meta=training_meta())
        print(f"done: step {step}, best binding probe {best:.3f}, cpu {clock.cpu / 60:.1f} min")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
