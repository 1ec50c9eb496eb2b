"""The matching objective (flamingo.matching): where a page repeats a label, which heads copy it, and the
loss on those heads' attention."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from flamingo.matching import copy_heads, matching_loss, matching_targets
from flamingo.tokenizer import Tokenizer

MODELS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.load(MODELS.parent / "public" / "models" / "emojiworld" / "tokenizer.json")


def special(tok):
    return tok.token_id("<image>"), tok.encode("Output:"), tok.token_id("<|endofchunk|>")


def test_targets_are_repeated_labels_pointing_at_the_earlier_spans_with_that_label(tok):
    image, output, end = special(tok)
    chunks = ["<image>Output: toma.<|endofchunk|>", "<image>Output: lupi.<|endofchunk|>",
              "<image>Question: how many? Short answer: two.<|endofchunk|>", "<image>Output: toma.<|endofchunk|>",
              "<image>Output: lupi.<|endofchunk|>", "<image>Output: toma"]  # the last one cut off: no target
    ids, spans = [tok.token_id("<bos>")], []
    for c in chunks:
        piece = tok.encode(c)
        spans.append(list(range(len(ids), len(ids) + len(piece))))
        ids += piece
    targets = matching_targets(ids, image, output, end)
    colon = lambda k: spans[k][len(output)]  # <image> Output : -> the ':'
    assert [t[0] for t in targets] == [colon(3), colon(4)]
    assert ids[colon(3)] == output[-1] and tok.decode([ids[colon(3) + 1]]).strip() == "t"
    # the right supports: the earlier spans with that caption (the question is none); the context: everything
    # from the first picture to the query's ':', its own span included
    assert targets[0][1] == spans[0] and targets[0][2] == list(range(spans[0][0], colon(3) + 1))
    assert targets[1][1] == spans[1] and targets[1][2] == list(range(spans[0][0], colon(4) + 1))
    assert matching_targets(tok.encode("".join(chunks[:3])), image, output, end) == []  # nothing repeats


def test_matching_loss_is_minus_log_the_share_of_context_attention_on_the_right_supports():
    s = 10
    uniform = torch.full((1, 2, s, s), 1.0 / s)
    targets = [[(9, [1, 2], [1, 2, 3, 4, 5, 6, 7, 8])]]
    torch.testing.assert_close(matching_loss([uniform], targets, [(0, 1)]), torch.tensor(math.log(8 / 2)))
    sharp = torch.zeros(1, 2, s, s)
    sharp[0, 0, 9, [0, 1, 2]] = torch.tensor([0.5, 0.25, 0.25])  # mass outside the context does not count
    assert matching_loss([sharp], targets, [(0, 0)]).item() == pytest.approx(0.0, abs=1e-6)
    assert matching_loss([uniform], [[]], [(0, 0)]).item() == 0.0  # no repeated label: nothing to learn


def test_copy_heads_of_the_shipped_lm_are_the_few_that_attend_to_the_matching_support(tok, monkeypatch):
    """On text alone, the shipped LM copies a label through a few heads whose attention lands on the support
    with the same stand-in name far above chance; a random LM of the same shape has none."""
    from emojiworld.concepts import load_world
    from emojiworld.samples import text_episode
    from train.flamingo import load_trained
    monkeypatch.chdir(MODELS)
    model, _ = load_trained("checkpoints/bridge.pt")
    world, rng = load_world(), np.random.default_rng(0)
    episodes = [[tok.token_id("<bos>")] + tok.encode(text_episode(world, rng, "train", kind="binding"))
                for _ in range(40)]
    heads, share = copy_heads(model.flamingo_lm, episodes, *special(tok))
    assert 1 <= len(heads) <= 4
    rest = np.delete(share.flatten().numpy(), [l * share.shape[1] + h for l, h in heads])
    assert min(share[l, h] for l, h in heads) > 0.5 and rest.max() < 0.3
    torch.manual_seed(0)
    for p in model.flamingo_lm.lm.parameters():
        torch.nn.init.normal_(p, std=0.02)
    assert copy_heads(model.flamingo_lm, episodes, *special(tok))[0] == []


def test_the_matching_objective_trains_the_bridge_only(tok, monkeypatch):
    """Stage3Loss with match_weight adds the matching loss of a page with a repeated label; its gradient
    reaches the cross-attention, not the frozen LM."""
    from emojiworld.concepts import load_world
    from emojiworld.samples import draw_single
    from train.flamingo import Stage3Loss, collate, encode_sample, load_trained
    monkeypatch.chdir(MODELS)
    model, _ = load_trained("checkpoints/bridge.pt")
    model.train()
    model.freeze_for_stage3()
    world, rng = load_world(), np.random.default_rng(0)
    a, b = [int(c) for c in world.split("train")[:2]]
    segs = []
    # the last caption loses its <|endofchunk|> to the shift of inputs against targets: no query there
    for c, label in ((a, "toma"), (b, "lupi"), (a, "toma"), (b, "lupi")):
        segs += [{"image": draw_single(world, c, "noto", rng)}, {"text": f"Output: {label}."}]
    batch = collate([encode_sample(segs, tok, model.cfg, 256)], tok)
    image, output, end = special(tok)
    plain = Stage3Loss(model, image, "cpu")(batch)
    objective = Stage3Loss(model, image, "cpu", 1.0, [(1, 0), (3, 0)], output, end)
    loss = objective(batch)
    assert objective.parts["match"] > 0
    torch.testing.assert_close(loss, plain + objective.parts["match"])
    loss.backward()
    assert all(p.grad is None for p in model.flamingo_lm.lm.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.flamingo_lm.xattn.parameters())


def test_matching_loss_at_a_temperature_is_the_share_of_the_flattened_attention():
    """temperature 2: the share of each weight's square root; the same as temperature 1 where all the context's
    attention is on the right supports, and higher where it is not (a larger margin is asked for)."""
    s = 6
    row = torch.tensor([0.0, 0.6, 0.1, 0.1, 0.1, 0.1])
    attention = torch.zeros(1, 1, s, s)
    attention[0, 0, 5] = row
    targets = [[(5, [1], [1, 2, 3, 4, 5])]]
    plain = matching_loss([attention], targets, [(0, 0)])
    flat = matching_loss([attention], targets, [(0, 0)], temperature=2.0)
    torch.testing.assert_close(plain, torch.tensor(-math.log(0.6)))
    torch.testing.assert_close(flat, torch.tensor(-math.log(0.6 ** 0.5 / (0.6 ** 0.5 + 4 * 0.1 ** 0.5))))
    assert flat > plain
    sharp = torch.zeros(1, 1, s, s)
    sharp[0, 0, 5, 1] = 1.0
    assert matching_loss([sharp], targets, [(0, 0)], temperature=2.0).item() == pytest.approx(0.0, abs=1e-5)
