"""Matching a query to its supports: where in a page a label repeats an earlier one, and which heads of
the frozen LM do the copying.

In a page `<image>Output: toma.<|endofchunk|><image>Output: lupi.<|endofchunk|><image>Output:` the
answer is copied by the LM's self-attention from the support whose picture matches the query's; the
picture reaches each position only through the gated cross-attention (a text token sees the image just
before it). `copy_heads` finds the heads that do this on text alone (text binding episodes, where the
stand-in name plays the picture's part); `matching_loss` is a stage-3 objective on exactly that step:
at the position that predicts a repeated label, those heads' attention over the pictures and texts before
it should fall on the supports with the same label (train.flamingo --match_weight).
"""
from __future__ import annotations

import numpy as np
import torch


def matching_targets(ids, image_id: int, output_ids: list[int], end_id: int) -> list[tuple[int, list[int], list[int]]]:
    """For one token sequence, every position that predicts the first token of a repeated label:
    (that position (the ':' of 'Output:'), positions of the earlier spans with the same caption, the context:
    every position from the first <image> up to that one, the query's own span included). A span runs from an
    <image> to the next one; its caption is what follows 'Output:' up to <|endofchunk|> (`end_id`). Spans
    without both (questions, a caption cut off by the end of the sequence) are never the right supports.
    The context holds the query's own span because a head that matches pictures can settle on the query's own
    picture, which carries no label (3n and 3o, the first runs with this objective, counted earlier supports only,
    and with a single support their heads turned from it to the query)."""
    ids = list(ids)
    starts = [i for i, t in enumerate(ids) if t == image_id] + [len(ids)]
    spans = []  # (start, end, position of ':', caption tokens)
    n = len(output_ids)
    for s, e in zip(starts, starts[1:]):
        at = next((i for i in range(s, e - n + 1) if ids[i:i + n] == output_ids), None)
        close = next((i for i in range(at + n, e) if ids[i] == end_id), None) if at is not None else None
        if close is not None:
            spans.append((s, e, at + n - 1, tuple(ids[at + n:close])))
    out = []
    for k, (s, e, colon, caption) in enumerate(spans):
        right = [i for s2, e2, _, c2 in spans[:k] if c2 == caption for i in range(s2, e2)]
        if right:
            out.append((colon, right, list(range(starts[0], colon + 1))))
    return out


def matching_loss(attention: list[torch.Tensor], targets: list[list], heads: list[tuple[int, int]],
                  temperature: float = 1.0) -> torch.Tensor:
    """attention: per layer [b, h, s, s]; targets: per sequence, matching_targets' list. Mean over targets
    and heads of -log(share of the head's attention on the context that falls on the right supports).
    temperature > 1: the share the head would give with its attention logits divided by it (each weight
    raised to 1 / temperature, renormalised over the context). Pages of a few supports then still ask for
    the logit margin that many supports need: with one margin m between the right support and each of
    n - 1 others, the share is e^m / (e^m + n - 1), so a share kept at 32 supports needs a larger m than at 10."""
    terms = []
    for b, items in enumerate(targets):
        for pos, right, context in items:
            for layer, head in heads:
                log_row = torch.log(attention[layer][b, head, pos] + 1e-12) / temperature
                terms.append(torch.logsumexp(log_row[context], 0) - torch.logsumexp(log_row[right], 0))
    return torch.stack(terms).mean() if terms else attention[0].new_zeros(())


def keep_attention(lm, on: bool = True):
    """Make every self-attention layer of `lm` (flamingo.model.LanguageModel) keep its probabilities."""
    for block in lm.blocks:
        block.attn.keep_attention = on


@torch.no_grad()
def copy_heads(flamingo_lm, episodes: list[list[int]], image_id: int, output_ids: list[int], end_id: int,
               threshold: float = 0.5):
    """The (layer, head) pairs of the LM, run on text alone, whose attention at a repeated label's ':' puts at
    least `threshold` of its mass on the context (matching_targets) on the right supports, on average over
    `episodes` (token id lists); and the whole table [layers, heads] of that mean share."""
    lm = flamingo_lm.lm
    was = [b.attn.keep_attention for b in lm.blocks]
    keep_attention(lm)
    share = torch.zeros(len(lm.blocks), lm.cfg.n_heads)
    count = 0
    for ids in episodes:
        targets = matching_targets(ids, image_id, output_ids, end_id)
        if not targets:
            continue
        flamingo_lm(torch.tensor([ids]), use_media=False)
        for layer, block in enumerate(lm.blocks):
            a = block.attn.attention[0]  # [heads, s, s]
            for pos, right, context in targets:
                share[layer] += a[:, pos, right].sum(-1) / a[:, pos, context].sum(-1)
        count += len(targets)
    for b, w in zip(lm.blocks, was):
        b.attn.keep_attention = w
    share /= max(count, 1)
    heads = [(int(l), int(h)) for l, h in np.argwhere(share.numpy() >= threshold)]
    return heads, share
