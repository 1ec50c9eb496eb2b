"""The stage-3 validation probes (train.flamingo.PROBE_TASKS, drawn in a training style) for any
trained bridge, plus what it answers to "which way did it move?"; with --labels, 5-way binding
with other kinds of label too (made-up names of real and of coined words, names of training concepts), and for
each kind how often the first, the later and the closing tokens are right; with --long, binding
prompts longer than the 5-way 1-shot ones (LONG_PROBES: 12-way 2-shot, about 200 and 240 tokens); with
--styles, binding and naming with every image of a prompt restyled the same way (STYLE_PROBES), a stand-in
for an art style the model never saw (OpenMoji itself is never used for choices), each binding one with
the frozen vision encoder's own nearest-neighbour score on such prompts: the ceiling the features set; with
--kin, naming a training concept so restyled after supports that hold it among look-alikes (KIN_PROBES, a
stand-in for naming-rices), each with how often the nearest support's label is the answer; --kin_many adds
16 and 32 supports (KIN_MANY_PROBES), --near the same kin probes of line drawings with the look-alikes RICES would
pick (the concept's nearest by the frozen encoder, train.vision.concept_neighbours; NEAR_PROBES); with --heads, for
each kin probe also how much of the LM's copy heads' attention over the context (flamingo.matching.matching_targets:
from the first picture to the answer's ':') falls on the right support, how often the right support gets the most of it, and how often the Perceiver's
latents (averaged) find the right support as the nearest one: where the matching is lost.

    cd models && /usr/bin/python3 -m probes.bridge [--bridge=checkpoints/bridge.pt --n=100 --labels --long --styles --kin --kin_many
                                                    --near --heads]
    /usr/bin/python3 -m probes.bridge --bridge=checkpoints/v2/bridge-mix.pt --vision=checkpoints/v2/vision-ink.pt \
        --lm=checkpoints/v2/lm.pt --world=v2 --n=200     # the shipped model's stages (train/v2.sh)

The same probe sets (seeds) as train.flamingo logs during training, so the numbers compare; but the same bridge has
probed 0.846 in one session and 0.854 in two others, once on the same machine (TRAINING_LOG_v2.md, "Stage 1dni"), so
each task's line ends with a digest of its episodes: two runs with the same digests saw the same pixels and texts.
"""
import argparse
import hashlib
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

from emojiworld import text as ew_text
from emojiworld.concepts import load_world
from emojiworld.images import DIRECTIONS
from emojiworld.restyle import COLOUR_KINDS, LINE_KINDS
from flamingo.mask import media_index
from flamingo.matching import keep_attention, matching_targets
from train.flamingo import (BINDING_LABELS, PROBE_TASKS, collate, completion_logits, encode_sample, exact_match,
                            lm_copy_heads, load_trained, media_latents, probe_completions, probe_set)
from train.vision import concept_neighbours, embedding, few_shot_probe


def probes_digest(probes) -> str:
    """The first 12 hex digits of a sha256 over a probe set's pixels, texts and completions: two runs that
    print the same digest saw the same episodes, so a difference in their scores is in the weights or the arithmetic."""
    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, np.ndarray):
            h.update(str((x.dtype, x.shape)).encode())
            h.update(np.ascontiguousarray(x).tobytes())
        elif isinstance(x, dict):
            for k in sorted(x):
                feed(k), feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(b"[%d" % len(x))
            for item in x:
                feed(item)
        else:
            h.update(repr(x).encode())

    feed(probes)
    return h.hexdigest()[:12]


@torch.no_grad()
def direction_answers(model, tok, probes) -> Counter:
    """(true direction, the direction the model ranks first after 'Short answer:') counts."""
    ids_of = {d: tok.encode(f"Short answer: {d}")[-1] for d in DIRECTIONS}
    counts = Counter()
    for segs, completion in probes:
        logits = completion_logits(model, tok, segs, completion, "cpu")[0][0]
        counts[completion.strip(), max(DIRECTIONS, key=lambda d: logits[ids_of[d]].item())] += 1
    return counts


# name -> (kind of label, ways, shots): 25 images, past the 192 tokens of stage 3's first pages
LONG_PROBES = {"binding-12way-2shot": ("binding", 12, 2), "novel-names-12way-2shot": ("novel-names", 12, 2)}


# name -> (task, restyle kinds): line drawings are never trained on (stage 3's --restyle_share recolours only)
STYLE_PROBES = {"binding-line-art": ("binding", LINE_KINDS), "naming-line-art": ("naming", LINE_KINDS),
                "binding-recoloured": ("binding", COLOUR_KINDS), "naming-recoloured": ("naming", COLOUR_KINDS)}


def _kin_probes(supports) -> dict:
    """name -> (restyle kinds, supports): naming a training concept after supports that include it among
    look-alikes (probe_set's 'naming-kin'); unrestyled, the model needs no support."""
    styles = (("line-art", LINE_KINDS), ("recoloured", COLOUR_KINDS))
    return {f"naming-kin-{name}-{k}": (kinds, k) for name, kinds in styles for k in supports}


KIN_PROBES = _kin_probes((1, 4, 8))
# as many supports as naming-rices' longest prompts (16: ~135 tokens; 32: ~265, past the trained 256), with
# their own seeds so that KIN_PROBES keep theirs
KIN_MANY_PROBES = _kin_probes((16, 32))
# line drawings among the concept's nearest neighbours (stage 3's --similar_by=vision pages), with their own seeds
NEAR_PROBES = {f"naming-near-line-art-{k}": (LINE_KINDS, k) for k in (4, 8, 32)}


@torch.no_grad()
def nearest_support_rate(model, probes) -> float:
    """How often the label of the support most like the query (frozen encoder, the embedding RICES ranks by)
    is the answer: what copying from the nearest picture would score."""
    right = 0
    for segs, completion in probes:
        imgs = [s["image"] for s in segs if "image" in s]
        captions = [s["text"] for s in segs if "text" in s][:-1]
        f = embedding(model.vision_encoder, imgs, model.cfg, "cpu")
        right += captions[int((f[:-1] @ f[-1]).argmax())] == ew_text.caption(completion.strip().removesuffix("."))
    return right / len(probes)


def support_attention(row, starts, right, context) -> tuple[float, bool]:
    """One attention row (at the query's ':'): the share of its mass over `context` on the `right` positions,
    and whether the right support is the one with the most mass. Supports are the spans from one <image>
    (`starts`, the query's own last) to the next."""
    mass = torch.stack([row[a:b].sum() for a, b in zip(starts, starts[1:])])
    return float(row[right].sum() / row[context].sum()), starts[int(mass.argmax())] in right


@torch.no_grad()
def copy_head_shares(model, tok, probes, heads) -> tuple[list[float], list[float], float]:
    """Per copy head, at the ':' that predicts the answer (the completion teacher-forced, as
    train.flamingo.completion_logits): the mean share of its attention over the context that falls on the
    support with the answer's label, and how often that support gets the most attention of all supports
    (each support's span: from its <image> to the next); and how often the Perceiver's latents (averaged) find
    that support as the nearest to the query's (does the bridge keep which support is the query's concept?)."""
    image, output, end = tok.token_id("<image>"), tok.encode(ew_text.CAPTION_QUERY), tok.token_id(ew_text.EOC)
    keep_attention(model.flamingo_lm.lm)
    shares, top, nearest = torch.zeros(len(heads)), torch.zeros(len(heads)), 0
    for segs, completion in probes:
        answered = segs[:-1] + [{"text": ew_text.caption(completion.strip().removesuffix("."))}]
        ids, media = encode_sample(answered, tok, model.cfg, 10_000)
        batch = collate([(ids + [tok.token_id("<pad>")], media)], tok)  # inputs keep the closing <|endofchunk|>
        x = batch["input_ids"]
        latents = media_latents(model, batch, "cpu")
        model.flamingo_lm(x, media_index(x, image), latents)
        pos, right, context = matching_targets(x[0].tolist(), image, output, end)[-1]  # the query's
        starts = (x[0] == image).nonzero().flatten().tolist()
        for j, (layer, head) in enumerate(heads):
            share, top_right = support_attention(model.flamingo_lm.lm.blocks[layer].attn.attention[0, head, pos],
                                                 starts, right, context)
            shares[j] += share
            top[j] += top_right
        f = F.normalize(latents[0].mean(1), dim=-1)  # [media, d]: the supports', then the query's
        nearest += starts[int((f[:-1] @ f[-1]).argmax())] in right
    keep_attention(model.flamingo_lm.lm, False)
    return (shares / len(probes)).tolist(), (top / len(probes)).tolist(), nearest / len(probes)


def pieces_right(pairs) -> str:
    """Per-token view of a binding probe's (got, target) tokens (train.flamingo.probe_completions): is
    the first piece of the label right, the later pieces (each teacher-forced), the closing full
    stop? A long label fails if any piece does."""
    right, total = Counter(), Counter()
    for got, target in pairs:
        for k, (g, t) in enumerate(zip(got, target)):
            where = "first" if k == 0 else "closing ." if k == len(target) - 1 else "later"
            right[where] += g == t
            total[where] += 1
    return ", ".join(f"{w} {right[w]}/{total[w]}" for w in ("first", "later", "closing ."))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", default="checkpoints/bridge.pt")
    ap.add_argument("--vision", default="checkpoints/vision.pt", help="the frozen vision encoder the bridge reads")
    ap.add_argument("--lm", default="checkpoints/lm.pt", help="the frozen language model")
    ap.add_argument("--world", default="v1", help="train.flamingo --world: the training styles (v1 or v2)")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--labels", action="store_true", help="also binding with made-up names and training names as labels")
    ap.add_argument("--long", action="store_true", help="also the LONG_PROBES")
    ap.add_argument("--styles", action="store_true", help="also the STYLE_PROBES")
    ap.add_argument("--kin", action="store_true", help="also the KIN_PROBES")
    ap.add_argument("--kin_many", action="store_true", help="with --kin, also the KIN_MANY_PROBES (16 and 32 supports)")
    ap.add_argument("--near", action="store_true", help="with --kin, also the NEAR_PROBES")
    ap.add_argument("--heads", action="store_true", help="with --kin, also the copy heads' attention on the right support")
    args = ap.parse_args()
    model, tok = load_trained(args.bridge, args.vision, args.lm)
    world = load_world(styles=args.world)
    extra = [t for t in BINDING_LABELS if t not in PROBE_TASKS] if args.labels else []
    for i, task in enumerate(list(PROBE_TASKS) + extra):
        probes = probe_set(world, task, args.n, seed=7 + i)  # the seeds train.flamingo uses
        pairs = probe_completions(model, tok, probes, "cpu")
        print(f"{task}: {exact_match(pairs):.2f} (episodes {probes_digest(probes)})", flush=True)
        if args.labels and task in BINDING_LABELS:
            print(f"  pieces right: {pieces_right(pairs)}")
        if task == "clip-direction":
            counts = direction_answers(model, tok, probes)
            print("  answers (rows: true; columns: " + " ".join(DIRECTIONS) + ")")
            for d in DIRECTIONS:
                print(f"  {d:>5}: " + " ".join(f"{counts[d, p]:3d}" for p in DIRECTIONS))
    for i, (name, (labels, n_way, shots)) in enumerate(LONG_PROBES.items() if args.long else ()):
        probes = probe_set(world, labels, args.n, seed=100 + i, n_way=n_way, shots=shots)
        pairs = probe_completions(model, tok, probes, "cpu")
        tokens = sum(len(encode_sample(segs, tok, model.cfg, 10_000)[0]) for segs, _ in probes) / len(probes)
        print(f"{name}: {exact_match(pairs):.2f} (prompts of {tokens:.0f} tokens on average)", flush=True)
    if args.styles:  # what the bridge's "binding" (noto, unrestyled) compares with
        nn_score = few_shot_probe(model.vision_encoder, world, model.cfg, args.n)
        print(f"binding, frozen encoder, nearest neighbour: {nn_score:.2f}")
    for i, (name, (task, kinds)) in enumerate(STYLE_PROBES.items() if args.styles else ()):
        probes = probe_set(world, task, args.n, seed=200 + i, restyle_kinds=kinds)
        print(f"{name}: {exact_match(probe_completions(model, tok, probes, 'cpu')):.2f}", flush=True)
        if task == "binding":  # other episodes than the bridge's (train.vision's seed), same kind of prompt
            nn_score = few_shot_probe(model.vision_encoder, world, model.cfg, args.n, restyle_kinds=kinds)
            print(f"  frozen encoder, nearest neighbour: {nn_score:.2f}")

    kin = [(300 + i, *item) for i, item in enumerate(KIN_PROBES.items())]
    kin += [(320 + i, *item) for i, item in enumerate(KIN_MANY_PROBES.items())] if args.kin_many else []
    kin += [(340 + i, *item) for i, item in enumerate(NEAR_PROBES.items())] if args.near else []
    heads = lm_copy_heads(model, tok, world) if args.kin and args.heads else []
    if heads:  # the heads the LM copies with on text alone (train.flamingo --match_weight)
        print(f"copy heads (layer, head): {heads}")
    near = concept_neighbours(model.vision_encoder, world, model.cfg, world.split("train"),
                              world.train_styles) if args.kin and args.near else None
    if near:  # how unlike the subgroup look-alikes of the kin probes these are
        same = sum(world.concepts[c].subgroup == world.concepts[n[0]].subgroup for c, n in near.items()) / len(near)
        print(f"nearest neighbour in the same subgroup: {same:.2f} of {len(near)} training concepts")
    for seed, name, (kinds, k) in kin if args.kin else ():
        probes = probe_set(world, "naming-kin", args.n, seed=seed, shots=k, restyle_kinds=kinds,
                           neighbours=near if name in NEAR_PROBES else None)
        print(f"{name}: {exact_match(probe_completions(model, tok, probes, 'cpu')):.2f}"
              f" (nearest support: {nearest_support_rate(model, probes):.2f})", flush=True)
        if heads:
            shares, top, nearest = copy_head_shares(model, tok, probes, heads)
            print("  copy heads' attention on the context, share on the right support: "
                  + ", ".join(f"{h}: {v:.2f}" for h, v in zip(heads, shares)), flush=True)
            print("  the right support gets the most attention: " + ", ".join(f"{h}: {v:.2f}" for h, v in zip(heads, top))
                  + f"; nearest support by the Perceiver's latents: {nearest:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
