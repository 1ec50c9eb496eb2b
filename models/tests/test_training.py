"""Training plumbing: stage 3 under torchrun with DistributedDataParallel, and the export of a
model folder that a different-sized model needs no code change for (the TypeScript parity test
runs such a folder through the engine)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flamingo.model import Flamingo, FlamingoConfig, LanguageModel, VisionEncoder
from flamingo.tokenizer import train_bpe
from train.lm import copy_text  # noqa: F401  (the stage scripts import cleanly)

MODELS = Path(__file__).resolve().parents[1]


def tiny_stage_checkpoints(tmp: Path):
    """Random stage-1 and stage-2 checkpoints of a tiny model, in the stage scripts' format."""
    from emojiworld.concepts import load_world
    from emojiworld.samples import training_corpus_sample
    tok = train_bpe(training_corpus_sample(load_world(), 200, seed=0), 300)
    tok.save(tmp / "tokenizer.json")
    cfg = FlamingoConfig(vocab_size=len(tok.vocab), d_model=32, n_layers=2, n_heads=2, d_vision=16,
                         vision_channels=(8, 8, 16, 16))
    torch.save({"vision": VisionEncoder(cfg).state_dict(), "config": cfg.to_dict()}, tmp / "vision.pt")
    torch.save({"lm": LanguageModel(cfg).state_dict(), "config": cfg.to_dict()}, tmp / "lm.pt")


def tiny_stage3(tmp: Path, *settings: str, launcher=(sys.executable,)) -> list[str]:
    """A stage-3 command on tiny_stage_checkpoints(tmp): one item per dataset, pages of up to two images, a tiny
    bridge; `settings` are added last (a later --name=value wins)."""
    return [*launcher, "-m", "train.flamingo", f"--tokenizer={tmp / 'tokenizer.json'}", f"--vision={tmp / 'vision.pt'}",
            f"--lm={tmp / 'lm.pt'}", "--eval_every=1000", "--page_batch=1", "--pair_batch=1", "--clip_batch=1",
            "--max_images=2", "--n_latents=4", "--resampler_layers=1", *settings]


def test_stage3_runs_under_torchrun_with_two_processes(tmp_path):
    tiny_stage_checkpoints(tmp_path)
    # torch 1.13 on Python 3.11: redirect values 0 and 3 hit an IntFlag bug, 1 works
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--redirects=1", "--tee=1")
    cmd = tiny_stage3(tmp_path, f"--out={tmp_path / 'run'}", "--steps=2", "--page_batch=2", "--pair_batch=2",
                      launcher=torchrun)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, cwd=MODELS, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "world size 2" in out.stdout
    final = torch.load(tmp_path / "run" / "final.pt", map_location="cpu")
    assert final["step"] == 2 and final["meta"]["training"]["world_size"] == 2
    # the bridge learnt something (gates moved off zero) while the frozen LM did not change
    model = Flamingo(FlamingoConfig.from_dict(final["config"]))
    model.load_state_dict(final["model"])
    lm0 = torch.load(tmp_path / "lm.pt")["lm"]
    assert all(torch.equal(v, lm0[k]) for k, v in model.flamingo_lm.lm.state_dict().items())
    assert any(b.attn_gate.abs().item() > 0 for b in model.flamingo_lm.xattn)


def test_export_writes_a_complete_manifest(tmp_path):
    from flamingo.export import export_model
    tok = train_bpe(["<image>Output: a cat.<|endofchunk|>", "Question: how many? Short answer: 2"], 60)
    cfg = FlamingoConfig(vocab_size=60, d_model=32, n_layers=2, n_heads=2, d_vision=16, n_latents=3,
                         vision_channels=(8, 8, 16, 16), image_size=32)
    manifest = export_model(Flamingo(cfg), tok, tmp_path, {"name": "tiny"})
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert set(manifest["files"]) == {"vision_encoder", "resampler", "xattn_kv", "lm", "tokenizer"}
    assert manifest["format"] == "flamingo-web/2"
    assert [g["layer"] for g in manifest["lm"]["gates"]] == [0, 1]
    assert all(g["attn"] == 0.0 and g["ff"] == 0.0 for g in manifest["lm"]["gates"])  # tanh(0): a fresh bridge
    for entry in manifest["files"].values():
        assert (tmp_path / entry["path"]).stat().st_size == entry["bytes"]
    assert manifest["vision"]["image_size"] == 32 and manifest["vision"]["n_tokens"] == 4
    assert manifest["lm"]["xattn_layers"] == [0, 1] and manifest["resampler"]["n_latents"] == 3


def test_reproduce_script_runs_every_stage_end_to_end(tmp_path):
    """PROFILE=smoke: tokenizer, the three stages, their v2 continuation (train/v2.sh), export, episodes,
    CLI evaluation and report, a few iterations each, into a temporary folder."""
    env = {**os.environ, "PROFILE": "smoke", "RUNS": str(tmp_path / "runs"), "MODEL_DIR": str(tmp_path / "model"),
           "EPISODES": str(tmp_path / "episodes"), "EPISODES_PER_TASK": "1", "REPORT": str(tmp_path / "report.json")}
    out = subprocess.run(["bash", "reproduce.sh"], cwd=MODELS, env=env, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["lm"]["vocab_size"] == 400  # the smoke tokenizer's size reached the exported model
    assert manifest["version"] == "0.2.3" and manifest["lm"]["context_length"] == 640  # v2's stages exported
    report = json.loads((tmp_path / "report.json").read_text())
    assert "binding-5way-1shot" in report["tasks"] and (tmp_path / "accuracy-vs-shots.png").exists()


def test_motion_is_visible_in_the_frozen_frame_features():
    """probes.motion: a linear probe reads a clip's direction off the shipped vision encoder's
    first- and last-frame tokens (so motion is lost later, if at all; see the model card)."""
    out = subprocess.run([sys.executable, "-m", "probes.motion", "--n=200"], cwd=MODELS, check=True,
                         capture_output=True, text=True, env={**os.environ, "TORCH_THREADS": "1"}).stdout
    frames = float(out.split("first+last frame features:")[1].split()[0])
    assert frames >= 0.9, out
    assert "resampler latents:" in out


def test_stage3_motion_and_naming_options_reach_the_checkpoint(tmp_path):
    """--time_emb_std: the resampler's time embeddings start random instead of zero (zero keeps the
    frames of a clip indistinguishable to the resampler, see probes.motion);
    --resampler_time_groups is part of the model's config (export and load_trained read it);
    --novel_name_share, --coined_word_share and --clip_questions change only the data."""
    tiny_stage_checkpoints(tmp_path)
    cmd = tiny_stage3(tmp_path, f"--out={tmp_path / 'run'}", "--steps=1", "--lr=1e-9", "--time_emb_std=1",
                      "--clip_questions=balanced", "--resampler_time_groups=2", "--novel_name_share=1",
                      "--coined_word_share=0.5")
    subprocess.run(cmd, cwd=MODELS, check=True, capture_output=True, env={**os.environ, "TORCH_THREADS": "1"})
    final = torch.load(tmp_path / "run" / "final.pt", map_location="cpu")
    assert 0.7 < final["model"]["resampler.time_emb"].std().item() < 1.3
    assert final["config"]["resampler_time_groups"] == 2
    # a run continued from it keeps its resampler unless told otherwise, and records the lineage
    again = [c for c in cmd if not c.startswith(("--out=", "--resampler_time_groups=", "--time_emb_std="))]
    again += [f"--out={tmp_path / 'again'}", f"--init={tmp_path / 'run' / 'final.pt'}"]
    subprocess.run(again, cwd=MODELS, check=True, capture_output=True, env={**os.environ, "TORCH_THREADS": "1"})
    continued = torch.load(tmp_path / "again" / "final.pt", map_location="cpu")
    assert continued["config"]["resampler_time_groups"] == 2
    assert continued["meta"]["training"]["continued_from"]["stage3_steps"] == 1
    last = torch.load(tmp_path / "again" / "last.pt", map_location="cpu")  # a run may go on from any checkpoint
    assert last["meta"]["training"]["continued_from"] == continued["meta"]["training"]["continued_from"]


def test_stage3_matching_objective_is_logged_on_the_heads_asked_for(tmp_path):
    tiny_stage_checkpoints(tmp_path)
    base = tiny_stage3(tmp_path, "--steps=20", "--page_batch=4", "--max_images=4", "--match_weight=1")
    env = {**os.environ, "TORCH_THREADS": "1"}
    out = subprocess.run(base + [f"--out={tmp_path / 'run'}", "--match_heads=1.0,1.1"], cwd=MODELS, check=True,
                         capture_output=True, text=True, env=env).stdout
    assert "on heads (layer, head) [(1, 0), (1, 1)]" in out
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 20 and log[-1]["loss_match_pages"] > 0
    # a random LM has no copy heads to find: a clear error, not a silent run without the objective
    failed = subprocess.run(base + [f"--out={tmp_path / 'auto'}"], cwd=MODELS, capture_output=True, text=True, env=env)
    assert failed.returncode != 0 and "no copy heads" in failed.stderr


def test_probe_sets_take_ways_and_shots():
    from emojiworld.concepts import load_world
    from train.flamingo import probe_set
    for segs, completion in probe_set(load_world(), "binding", 3, seed=0, n_way=6, shots=3):
        labels = [s["text"] for s in segs if "text" in s]
        assert sum("image" in s for s in segs) == 19 and len(set(labels[:-1])) == 6
        assert all(labels.count(label) == 3 for label in labels[:-1]) and f"Output:{completion}" in labels


def test_weight_average_follows_the_trainable_weights_only():
    from flamingo.training import WeightAverage
    net = torch.nn.Linear(2, 1)
    net.bias.requires_grad_(False)
    average = WeightAverage(net, decay=0.75)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(4.0)
        net.bias.add_(4.0)
    average.update(net)
    state = average.state_dict(net)
    assert torch.allclose(state["weight"], start + 1.0)  # 0.75 * w + 0.25 * (w + 4)
    assert torch.equal(state["bias"], net.bias) and set(average.shadow) == {"weight"}


def test_stage3_ema_puts_the_averaged_weights_in_final_pt(tmp_path):
    tiny_stage_checkpoints(tmp_path)
    cmd = tiny_stage3(tmp_path, f"--out={tmp_path / 'run'}", "--steps=2", "--warmup=1", "--lr=1e-2", "--ckpt_every=1",
                      "--ema=0.5")
    subprocess.run(cmd, cwd=MODELS, check=True, capture_output=True, env={**os.environ, "TORCH_THREADS": "1"})
    final = torch.load(tmp_path / "run" / "final.pt", map_location="cpu")["model"]
    last = torch.load(tmp_path / "run" / "last.pt", map_location="cpu")
    assert last["ema"] and all(torch.equal(final[k], v) for k, v in last["ema"].items())
    assert any(not torch.equal(final[k], last["model"][k]) for k in last["ema"])  # not the last step's weights
    assert all(torch.equal(final[k], v) for k, v in last["model"].items() if k not in last["ema"])  # frozen parts


def test_stage3_ema_run_resumed_equals_one_run(tmp_path):
    """Stopped after step 1 and resumed to step 2, a --ema run ends where an uninterrupted one does:
    the average is restored from last.pt, not restarted from the resumed weights."""
    tiny_stage_checkpoints(tmp_path)
    cmd = tiny_stage3(tmp_path, "--warmup=1", "--lr=1e-2", "--ckpt_every=1", "--ema=0.5")
    env = {**os.environ, "TORCH_THREADS": "1"}
    for out, steps in (("whole", [2]), ("resumed", [1, 2])):
        for n in steps:
            subprocess.run(cmd + [f"--out={tmp_path / out}", f"--steps={n}"], cwd=MODELS, check=True,
                           capture_output=True, env=env)
    whole, resumed = (torch.load(tmp_path / out / "last.pt", map_location="cpu") for out in ("whole", "resumed"))
    assert resumed["step"] == whole["step"] == 2
    for k, v in whole["ema"].items():
        torch.testing.assert_close(resumed["ema"][k], v)
        torch.testing.assert_close(resumed["model"][k], whole["model"][k])


def test_kin_probes_hold_the_query_concept_once_among_look_alikes(monkeypatch):
    import train.flamingo
    from emojiworld.concepts import load_world
    world = load_world()
    drawn = []  # the concept of every image, in order
    draw = train.flamingo.draw_single
    monkeypatch.setattr(train.flamingo, "draw_single", lambda w, c, *a, **k: drawn.append(c) or draw(w, c, *a, **k))
    for j, (segs, completion) in enumerate(train.flamingo.probe_set(world, "naming-kin", 20, seed=0, shots=4)):
        shown, query = drawn[5 * j:5 * j + 4], drawn[5 * j + 4]
        texts = [s["text"] for s in segs if "text" in s]
        assert completion == f" {world.concepts[query].name}." and texts[-1] == "Output:"
        assert shown.count(query) == 1 and len(set(shown)) == 4  # the concept itself, once, and 3 others
        assert texts[:-1] == [f"Output: {world.concepts[c].name}." for c in shown]  # each labelled with its name
        kin = [c for c in world.split("train") if world.concepts[c].subgroup == world.concepts[query].subgroup]
        assert sum(c in kin for c in shown) == min(4, len(kin))  # look-alikes first, then any concept


def test_nearest_support_rate_copies_the_label_of_the_most_alike_support(monkeypatch):
    from probes.bridge import nearest_support_rate
    from train.flamingo import load_trained
    monkeypatch.chdir(MODELS)  # load_trained's paths are relative to models/
    model, _ = load_trained("checkpoints/bridge.pt")
    red, blue = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    segs = lambda query: [{"image": red}, {"text": "Output: red."}, {"image": blue}, {"text": "Output: blue."},
                          {"image": query}, {"text": "Output:"}]
    assert nearest_support_rate(model, [(segs(red), " red."), (segs(blue), " blue.")]) == 1.0
    assert nearest_support_rate(model, [(segs(red), " blue."), (segs(blue), " blue.")]) == 0.5


def test_probe_sets_restyle_every_image_of_an_item_when_asked(monkeypatch, magenta):
    import train.flamingo
    from emojiworld.concepts import load_world
    from emojiworld.restyle import LINE_KINDS
    world = load_world()
    # without restyle kinds, no extra random draw: an item's first draw is still its concept, so the
    # probe sets logged so far stay the same
    first = int(np.random.default_rng(0).choice(world.split("train")))
    assert train.flamingo.probe_set(world, "naming", 1, seed=0)[0][1] == f" {world.concepts[first].name}."
    monkeypatch.setattr(train.flamingo, "random_restyle", lambda rng, kinds: kinds == LINE_KINDS and magenta.paint)
    for task in ("binding", "naming"):
        for segs, _ in train.flamingo.probe_set(world, task, 3, seed=0, restyle_kinds=LINE_KINDS):
            imgs = [s["image"] for s in segs if "image" in s]
            assert imgs and all(magenta.shown_in(img) for img in imgs)


def test_probe_bridge_prints_every_probe_the_direction_answers_and_the_pieces_right():
    out = subprocess.run([sys.executable, "-m", "probes.bridge", "--n=4", "--labels", "--long", "--styles", "--kin", "--near", "--heads"],
                         cwd=MODELS,
                         check=True, capture_output=True, text=True, env={**os.environ, "TORCH_THREADS": "1"}).stdout
    from probes.bridge import KIN_PROBES, LONG_PROBES, NEAR_PROBES, STYLE_PROBES
    from train.flamingo import BINDING_LABELS, PROBE_TASKS
    for task in set(PROBE_TASKS) | set(BINDING_LABELS) | set(LONG_PROBES) | set(STYLE_PROBES) | set(KIN_PROBES) | set(NEAR_PROBES):
        assert 0.0 <= float(out.split(f"{task}: ")[1].split()[0]) <= 1.0
    for task in PROBE_TASKS:
        assert len(out.split(f"{task}: ")[1].split("(episodes ")[1].split(")")[0]) == 12
    for name, (_, k) in KIN_PROBES.items():  # one support, the query's own concept: its label is the nearest
        nearest = float(out.split(f"{name}: ")[1].split("nearest support: ")[1].split(")")[0])
        assert nearest == 1.0 if k == 1 else 0.0 <= nearest <= 1.0
        heads = out.split(f"{name}: ")[1].split("the right support gets the most attention: ")[1].splitlines()[0]
        latents = float(heads.split("nearest support by the Perceiver's latents: ")[1])
        assert heads.startswith("(1, 0): ") and (latents == 1.0 if k == 1 else 0.0 <= latents <= 1.0)
    assert int(out.split("novel-names-12way-2shot: ")[1].split("prompts of ")[1].split()[0]) > 192  # past stage 3's first pages (192 tokens)
    assert out.count("pieces right: first ") == len(BINDING_LABELS)
    assert 0.0 <= float(out.split("nearest neighbour in the same subgroup: ")[1].split()[0]) <= 1.0
    nn_scores = [float(line.split("nearest neighbour: ")[1]) for line in out.splitlines() if "nearest neighbour: " in line]
    assert len(nn_scores) == 1 + sum(task == "binding" for task, _ in STYLE_PROBES.values())
    rows = [line.split(":")[1].split() for line in out.splitlines() if line.strip().startswith(("left:", "right:", "up:", "down:"))]
    assert len(rows) == 4 and sum(int(c) for row in rows for c in row) == 4  # one answer per probe item


def test_the_probe_digest_names_the_episodes_and_nothing_else():
    from emojiworld.concepts import load_world
    from probes.bridge import probes_digest
    from train.flamingo import probe_set
    world = load_world()
    a, b = probe_set(world, "binding", 3, seed=7), probe_set(world, "binding", 3, seed=7)
    assert probes_digest(a) == probes_digest(b), "the same seed draws the same episodes"
    assert probes_digest(probe_set(world, "binding", 3, seed=8)) != probes_digest(a)
    b[1][0][0]["image"][0, 0, 0] ^= 1  # one pixel's lowest bit
    assert probes_digest(b) != probes_digest(a)


def test_bridge_mix_is_a_weight_by_weight_interpolation_of_one_lineage():
    from tools.bridge_mix import mix
    a = {"model": {"w": torch.zeros(2, 3), "steps": torch.tensor(3)}, "config": {"d": 1}, "meta": {"run": "a"}}
    b = {"model": {"w": torch.ones(2, 3) * 4, "steps": torch.tensor(7)}, "config": {"d": 2}, "meta": {"run": "b"}}
    half = mix(a, b, 0.25)
    assert torch.equal(half["model"]["w"], torch.ones(2, 3)), "(1 - a) * A + a * B"
    assert torch.equal(half["model"]["steps"], torch.tensor(7)), "integer tensors are B's, not averaged"
    assert half["config"] == {"d": 2} and half["meta"]["run"] == "b" and half["meta"]["mix"]["b_weight"] == 0.25
    assert torch.equal(mix(a, b, 0.0)["model"]["w"], a["model"]["w"]) and torch.equal(mix(a, b, 1.0)["model"]["w"], b["model"]["w"])
    for bad in ({"model": {"v": torch.zeros(2, 3), "steps": torch.tensor(0)}}, {"model": {"w": torch.zeros(3, 2), "steps": torch.tensor(0)}}):
        with pytest.raises(SystemExit):
            mix(a, {**b, **bad}, 0.5)
    with pytest.raises(SystemExit):
        mix(a, b, 1.5)


def test_vision_step_time_reports_each_config_against_the_first():
    out = subprocess.run([sys.executable, "-m", "tools.vision_step_time", "--configs", "32,64,128,128:0", "32,64,128,128:2",
                          "--batch", "2", "--rounds", "1"], cwd=MODELS, check=True, capture_output=True, text=True,
                         env={**os.environ, "TORCH_THREADS": "1"}).stdout
    rows = json.loads(out)["rows"]
    assert [r["parameters"] for r in rows] == [sum(p.numel() for p in VisionEncoder(FlamingoConfig()).parameters())] * 2
    assert rows[0]["vs_first"] == 1.0 and rows[1]["median_s"] > 0


def test_stage1_vision_channels_set_the_encoder_widths(tmp_path):
    out = tmp_path / "vision"
    subprocess.run([sys.executable, "-m", "train.vision", "--tokenizer=../public/models/emojiworld/tokenizer.json",
                    f"--out={out}", "--steps=1", "--batch=8", "--eval_every=1000", "--vision_channels=8,8,16,24"],
                   cwd=MODELS, check=True, capture_output=True, env={**os.environ, "TORCH_THREADS": "1"})
    ckpt = torch.load(out / "last.pt", map_location="cpu")
    cfg = FlamingoConfig.from_dict(ckpt["config"])
    assert cfg.vision_channels == (8, 8, 16, 24) and cfg.d_vision == FlamingoConfig().d_vision  # the bridge's input stays
    VisionEncoder(cfg).load_state_dict(ckpt["vision"])  # the checkpoint is a stage-1 encoder of those widths


def test_stage1_pairs_draw_each_concept_again_alone_in_another_style(monkeypatch):
    """train.vision --pairs: the batch's second half is its first half's concepts, alone, in another training
    style (same captions, masked as non-negatives); `paired` marks the first-half images that are single emoji."""
    from emojiworld.concepts import load_world
    from flamingo.tokenizer import Tokenizer
    from train.vision import Batches, Settings, caption_of
    monkeypatch.chdir(MODELS)
    world = load_world()
    s = Settings(batch=16, pairs=1.0, steps=1, styles="twemoji,noto")
    cfg = FlamingoConfig(vocab_size=1024)
    tok = Tokenizer.load("../public/models/emojiworld/tokenizer.json")
    pixels, ids, offsets, same, paired = Batches(s, world, tok, cfg, 0)[0]
    n = s.batch // 2
    assert pixels.shape[0] == s.batch and paired.shape == (n,) and paired.any()
    assert all(same[i, n + i] for i in range(n) if paired[i])  # a pair shares its caption: not a negative
    assert not (pixels[:n][paired] == pixels[n:][paired]).flatten(1).all(1).any()  # another drawing, not a copy
    rng = np.random.default_rng([s.seed, 0])
    concepts = rng.choice(world.split("train"), size=n, replace=False)
    decode = lambda i: tok.decode(ids[offsets[i]:offsets[i + 1] if i + 1 < len(offsets) else len(ids)].tolist())
    assert [decode(n + i) for i in range(n)] == [caption_of(world, concept=int(c)) for c in concepts]


def test_rices_embedding_cares_less_than_the_token_grid_where_an_emoji_sits(monkeypatch):
    from emojiworld.concepts import load_world
    from emojiworld.samples import draw_single
    from train.flamingo import load_trained
    from train.vision import embedding, features
    monkeypatch.chdir(MODELS)
    model, _ = load_trained("checkpoints/bridge.pt")
    world = load_world()
    pairs = [[draw_single(world, c, "noto", np.random.default_rng(seed)) for seed in (1, 2)]
             for c in world.split("train")[:20]]  # one concept, two placements
    same = lambda f: float(np.mean([(f(p)[0] @ f(p)[1]).item() for p in pairs]))
    assert same(lambda p: embedding(model.vision_encoder, p, model.cfg, "cpu")) > \
        same(lambda p: features(model.vision_encoder, p, model.cfg, "cpu")) + 0.05


def test_qk_heads_ablation_trains_only_those_heads_query_and_key_rows(tmp_path):
    """--qk_heads=1.0: of the frozen LM only layer 1's qkv rows of head 0's query and key change; its value rows,
    the other heads' rows and every other LM weight stay exactly as trained (no gradient, no weight decay)."""
    tiny_stage_checkpoints(tmp_path)
    cmd = tiny_stage3(tmp_path, f"--out={tmp_path / 'run'}", "--steps=2", "--warmup=1", "--lr=1e-2", "--qk_heads=1.0")
    subprocess.run(cmd, cwd=MODELS, check=True, capture_output=True, env={**os.environ, "TORCH_THREADS": "1"})
    final = torch.load(tmp_path / "run" / "final.pt", map_location="cpu")["model"]
    lm0 = torch.load(tmp_path / "lm.pt")["lm"]
    d, dh = 32, 16  # tiny_stage_checkpoints: d_model 32, two heads
    changed = {k for k, v in lm0.items() if not torch.equal(final[f"flamingo_lm.lm.{k}"], v)}
    assert changed == {"blocks.1.attn.qkv.weight"}
    rows = (final["flamingo_lm.lm.blocks.1.attn.qkv.weight"] != lm0["blocks.1.attn.qkv.weight"]).any(-1)
    assert rows[:dh].all() and rows[d:d + dh].all()  # head 0's query and key rows learnt
    assert not rows[dh:d].any() and not rows[d + dh:].any()  # head 1's, and every value row, did not


def test_probe_lm_filler_reaches_the_length_and_keeps_the_episode():
    """probes.lm.with_filler puts unrelated text before each prompt until it is that long; the episode
    itself, its query last, and its answer stay as they were."""
    from emojiworld.concepts import load_world
    from emojiworld.samples import training_corpus_sample
    from probes.lm import tokens, with_filler
    from train.lm import binding_eval_set
    world = load_world()
    tok = train_bpe(training_corpus_sample(world, 200, seed=0), 300)
    episodes = binding_eval_set(world, 5, 10, seed=0)
    padded = with_filler(episodes, tok, 300, seed=0)
    assert tokens(padded, tok)[0] > 300 and tokens(episodes, tok)[1] < 300
    assert all(p.endswith(q) and a == b for (q, a), (p, b) in zip(episodes, padded))


def test_support_attention_shares_the_context_and_names_the_support_with_the_most_mass():
    """Three supports (positions 0-2, 3-5, 6-8) and the query (9-10); the right one is the second."""
    from probes.bridge import support_attention
    starts, right, context = [0, 3, 6, 9], [3, 4, 5], list(range(11))
    row = torch.tensor([.05, .05, .05, .1, .1, .1, 0., 0., 0., .3, .25])  # the query's own span gets the most
    share, top = support_attention(row, starts, right, context)
    assert share == pytest.approx(0.3) and top  # the query's span is no support
    row = torch.tensor([.1, .1, .1, .05, .05, .05, .2, 0., 0., .2, .15])
    assert support_attention(row, starts, right, context) == (pytest.approx(0.15), False)  # the first has 0.3


def test_concept_neighbours_are_the_nearest_by_the_rices_embedding_and_feed_look_alike_pages(monkeypatch):
    """train.vision.concept_neighbours ranks the other concepts by RICES's measure (never the concept itself),
    and look_alikes with that table draws a page's other concepts from the first's 2(n-1) nearest."""
    from emojiworld.concepts import load_world
    from emojiworld.samples import draw_single, look_alikes
    from train.flamingo import load_trained
    from train.vision import concept_neighbours, embedding
    monkeypatch.chdir(MODELS)
    model, _ = load_trained("checkpoints/bridge.pt")
    world = load_world()
    concepts = [int(c) for c in world.split("train")[:40]]
    near = concept_neighbours(model.vision_encoder, world, model.cfg, concepts, ("noto",), k=5, seed=3)
    rng = np.random.default_rng(3)  # the same drawings: one generator, the concepts in order
    e = embedding(model.vision_encoder, [draw_single(world, c, "noto", rng) for c in concepts], model.cfg, "cpu")
    c0 = concepts[0]
    assert len(near[c0]) == 5 and c0 not in near[c0]
    sims = {c: float(e[0] @ e[i]) for i, c in enumerate(concepts)}
    assert near[c0][0] == max((c for c in concepts if c != c0), key=sims.get)
    for seed in range(5):
        page = look_alikes(world, np.random.default_rng(seed), concepts, 3, first=c0, neighbours=near)
        assert page[0] == c0 and len(set(page)) == 3 and set(page[1:]) <= set(near[c0][:4])


def test_binding_eval_set_with_32_supports_names_every_concept_and_asks_for_one():
    """Stage 2's model v2 gate: 5-way binding with 32 supports, each of the 5 bound at least once."""
    from emojiworld import text as ew_text
    from emojiworld.concepts import load_world
    from train.lm import binding_eval_set
    for prompt, answer in binding_eval_set(load_world(), 10, 5, seed=0, supports=32):
        chunks = prompt.split(ew_text.EOC)
        assert len(chunks) == 33 and prompt.count(ew_text.IMAGE) == 33
        labels = {c.rsplit(" ", 1)[-1].rstrip(".") for c in chunks[:-1]}
        assert len(labels) == 5 and answer in labels


def test_bridge_of_a_run_is_exactly_its_trained_part(tmp_path):
    """tools/bridge_of.py keeps what stage 3 trained (the weights the average follows) and nothing
    frozen; the frozen rest of final.pt is the stage checkpoints' (test above), so the bridge on
    those stages is the run's model again (what export --bridge and load_trained read)."""
    from tools.bridge_of import bridge_of
    tiny_stage_checkpoints(tmp_path)
    cmd = tiny_stage3(tmp_path, f"--out={tmp_path / 'run'}", "--steps=1", "--warmup=1", "--ema=0.5")
    subprocess.run(cmd, cwd=MODELS, check=True, capture_output=True, env={**os.environ, "TORCH_THREADS": "1"})
    final = torch.load(tmp_path / "run" / "final.pt", map_location="cpu")
    bridge = bridge_of(final)
    assert set(bridge["model"]) == set(torch.load(tmp_path / "run" / "last.pt", map_location="cpu")["ema"])
    assert all(torch.equal(bridge["model"][k], final["model"][k]) for k in bridge["model"])
    assert bridge["config"] == final["config"] and bridge["meta"] == final["meta"]
    last = bridge_of(torch.load(tmp_path / "run" / "last.pt", map_location="cpu"))  # a run stopped before final.pt
    assert all(torch.equal(last["model"][k], v) for k, v in bridge["model"].items())


def test_the_bundled_model_is_exported_from_the_shipped_checkpoints():
    """public/models/emojiworld comes from train.flamingo.SHIPPED (train/v2.sh, STAGE=export): its gates are
    the bridge's, and weights of its resampler and encoder are the checkpoints' tensors (export folds some
    others, such as the first convolution with the input normalisation)."""
    import onnx
    from onnx import numpy_helper
    from train.flamingo import SHIPPED
    bundled = MODELS.parent / "public/models/emojiworld"
    manifest = json.loads((bundled / "manifest.json").read_text())
    bridge = torch.load(MODELS / SHIPPED["bridge"], map_location="cpu")
    assert manifest["lm"]["context_length"] == bridge["config"]["context_length"]
    for g in manifest["lm"]["gates"]:
        assert g["attn"] == pytest.approx(bridge["model"][f"flamingo_lm.xattn.{g['layer']}.attn_gate"].tanh().item())

    def initializers(name):
        return [numpy_helper.to_array(t) for t in onnx.load(str(bundled / name)).graph.initializer]

    def holds(arrays, weight):  # nn.Linear's [out, in] is MatMul's [in, out]
        want = weight.numpy().T
        return any(a.shape == want.shape and np.array_equal(a, want) for a in arrays)

    assert holds(initializers("resampler.onnx"), bridge["model"]["resampler.layers.0.0.to_q.weight"])
    vision = torch.load(MODELS / SHIPPED["vision"], map_location="cpu")["vision"]
    assert holds(initializers("vision_encoder.onnx"), vision["proj.weight"])


def test_stitch_fit_recovers_a_linear_map_and_scores_it():
    from train.stitch import fit_map, r_squared
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8))
    w_true, b_true = rng.normal(size=(8, 8)), rng.normal(size=8)
    y = x @ w_true + b_true
    w, b = fit_map(x, y, ridge=1e-6)
    assert np.allclose(w, w_true, atol=1e-4) and np.allclose(b, b_true, atol=1e-4)
    assert r_squared(x, y, w, b) > 0.999999
    noisy = y + rng.normal(size=y.shape) * y.std(0)  # noise as large as the signal: about half explained
    assert 0.4 < r_squared(x, noisy, *fit_map(x, noisy, ridge=1e-6)) < 0.6
