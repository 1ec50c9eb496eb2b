"""OpenFlamingo conversion (flamingo/convert_openflamingo.py) at reduced sizes, without real weights.

Here: the three files a user has load at OpenFlamingo's key names, with strict=False's rules; the
reference (flamingo/openflamingo.py) behaves as the paper and OpenFlamingo say (closed gates leave
MPT alone, the block placement rule, the only-the-last-image mask equal to mask.py's index); and the
converted folder has our graph contracts. That the graphs compute the reference's logits and greedy
tokens is checked through ONNX Runtime in src/engine/openflamingo.test.ts (no onnxruntime for
Python here). The fixture is also the sensitive one: a wrong mask rule would move its logits.
"""
import io
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # models/: tools.openflamingo_parity
import tools.openflamingo_parity as fixture  # noqa: E402
from flamingo.byte_bpe import ByteLevelTokenizer, pre_tokenize  # noqa: E402
from flamingo.convert_openflamingo import ConversionError, ResamplerGraph, VisionGraph, build_model, convert  # noqa: E402
from flamingo.mask import media_index  # noqa: E402
from flamingo.onnx_openflamingo import build_lm, build_xattn_kv  # noqa: E402
from flamingo.openflamingo import split_state_dict  # noqa: E402
from flamingo.quantize import VARIANTS, make_variant  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    return fixture.tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return fixture.tiny_model(tokenizer, seed=7)


def prompt_and_images(tokenizer, seed=0):
    tok = ByteLevelTokenizer(tokenizer)
    ids = torch.tensor([tok.encode(fixture.PROMPT)])
    vision_x = torch.randn(1, 2, 1, 3, 42, 42, generator=torch.Generator().manual_seed(seed))
    return ids, vision_x


KEYS = {  # a few of each file's real key names, per language model layout
    "mpt": ("lang_encoder.transformer.blocks.1.gated_cross_attn_layer.attn.to_kv.weight",
            "transformer.blocks.0.attn.Wqkv.weight", "transformer.blocks.0.attn.q_ln.weight"),
    "gpt_neox": ("lang_encoder.gpt_neox.layers.1.gated_cross_attn_layer.attn.to_kv.weight",
                 "gpt_neox.layers.0.attention.query_key_value.bias", "embed_out.weight"),
}


@pytest.mark.parametrize("arch", ["mpt", "gpt_neox"])
def test_the_three_files_load_at_openflamingos_key_names(tokenizer, arch):
    model = fixture.tiny_model(tokenizer, arch=arch)
    checkpoint, clip, lm = fixture.user_files(model)
    gated, lm_key, other_lm_key = KEYS[arch]
    assert all(k.startswith("perceiver.") or ".gated_cross_attn_layer." in k or k.endswith(("wte.weight", "embed_in.weight", "embed_out.weight"))
               for k in checkpoint)
    assert gated in checkpoint and lm_key in lm and other_lm_key in lm and "visual.conv1.weight" in clip
    loaded = build_model(checkpoint, clip, lm, fixture.LM_CONFIG[arch], model.media_token_id, **fixture.HEADS)
    assert loaded.cfg == model.cfg
    for k, v in model.state_dict().items():  # the checkpoint's embeddings win over the LM's; CLIP's text tower is ignored
        assert torch.equal(loaded.state_dict()[k], v), k


def test_a_missing_weight_is_named(model):
    checkpoint, clip, mpt = fixture.user_files(model)
    del mpt["transformer.blocks.2.attn.k_ln.weight"]
    with pytest.raises(ConversionError, match=r"blocks\.2\.decoder_layer\.attn\.k_ln\.weight"):
        build_model(checkpoint, clip, mpt, fixture.MPT_CONFIG, model.media_token_id, **fixture.HEADS)


def test_weights_of_another_layout_are_refused_not_dropped(model):
    checkpoint, clip, mpt = fixture.user_files(model)
    mpt["transformer.blocks.0.ln_1.bias"] = torch.zeros(64)  # MPT-1B has no biases
    with pytest.raises(ConversionError, match="no place for"):
        build_model(checkpoint, clip, mpt, fixture.MPT_CONFIG, model.media_token_id, **fixture.HEADS)


def test_gated_blocks_sit_before_layer_i_when_i_plus_1_divides_by_n(tokenizer):
    for every, layers in ((1, [0, 1, 2, 3]), (2, [1, 3]), (4, [3])):
        m = fixture.tiny_model(tokenizer, every=every)
        assert m.cfg.xattn_layers == layers
        blocks = m.lang_encoder.transformer.blocks
        assert [i for i, b in enumerate(blocks) if b.gated_cross_attn_layer is not None] == layers
        loaded = build_model(*fixture.user_files(m), fixture.MPT_CONFIG, m.media_token_id, **fixture.HEADS)
        assert loaded.cfg.cross_attn_every_n_layers == every


@pytest.mark.parametrize("arch", ["mpt", "gpt_neox"])
def test_closed_gates_leave_the_language_model_unchanged(tokenizer, arch):
    """tanh(0) = 0: at initialisation OpenFlamingo *is* its language model, images or not."""
    m = fixture.tiny_model(tokenizer, gates=(0.0, 0.0), arch=arch)
    ids, vision_x = prompt_and_images(tokenizer)
    with torch.no_grad():
        with_images = m(vision_x, ids)
        wte, layers, norm, out = m.lang_encoder.parts()
        x = wte(ids)
        for layer in layers:
            x = layer.decoder_layer(x)
        lm_alone = torch.nn.functional.linear(norm(x), out)
    assert torch.allclose(with_images, lm_alone, atol=1e-6, rtol=0)



def test_the_reference_mask_is_media_index(model, tokenizer):
    """OpenFlamingo's 1-based cumsum of <image> tokens is mask.py's media_index + 1."""
    ids, _ = prompt_and_images(tokenizer)
    text_time = (ids == model.media_token_id).cumsum(-1)
    assert torch.equal(text_time - 1, media_index(ids, model.media_token_id))
    assert text_time[0, 0] == 0  # the prompt starts with text before any image


def test_text_before_the_first_image_and_only_the_last_image(model, tokenizer):
    ids, vision_x = prompt_and_images(tokenizer)
    other_first = vision_x.clone()
    other_first[:, 0] = torch.randn_like(other_first[:, 0])
    with torch.no_grad():
        base, changed = model(vision_x, ids)[0], model(other_first, ids)[0]
    first_image = int((ids[0] == model.media_token_id).nonzero()[0])
    assert torch.equal(base[:first_image], changed[:first_image])  # nothing before it sees any image
    assert (base[first_image:] - changed[first_image:]).abs().max() > 1e-3  # the images do matter here
    # the mask is what the logits hinge on: letting tokens see every earlier image moves them
    blocks = [b.gated_cross_attn_layer.attn for b in model.lang_encoder.transformer.blocks if b.gated_cross_attn_layer]
    originals = [b.forward for b in blocks]
    try:
        for b in blocks:
            b.forward = lambda y, media, loc, b=b: all_previous_images(b, y, media, loc)
        with torch.no_grad():
            all_previous = model(vision_x, ids)[0]
    finally:
        for b, f in zip(blocks, originals):
            b.forward = f
    assert (all_previous - base).abs().max() > 1e-2


def all_previous_images(attn, y, media, media_locations):
    """The ablation's mask ('all previous images', 60.8 vs 68.4 in the paper), for the test above."""
    b, T, l = media.shape[:3]
    q = attn.to_q(attn.norm(y))
    k, v = attn.to_kv(media.flatten(1, 2)).chunk(2, dim=-1)
    q, k, v = (t.unflatten(-1, (attn.heads, -1)).transpose(1, 2) for t in (q, k, v))
    sim = q * attn.scale @ k.transpose(-1, -2)
    text_time = media_locations.cumsum(-1)
    media_time = torch.arange(T).repeat_interleave(l) + 1
    sim = sim.masked_fill(~(text_time[:, None, :, None] >= media_time), -torch.finfo(sim.dtype).max)
    out = sim.softmax(-1).masked_fill((text_time == 0)[:, None, :, None], 0.0) @ v
    return attn.to_out(out.transpose(1, 2).flatten(-2))


def test_converted_folder_has_our_graph_contracts(model, tokenizer, tmp_path):
    manifest = convert(*fixture.user_files(model), fixture.MPT_CONFIG, tokenizer, tmp_path,
                       {"name": "t"}, 2 ** 30, **fixture.HEADS)
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    lm = manifest["lm"]
    assert lm["xattn_layers"] == [1, 3] and lm["positions"] == "alibi"
    assert (lm["xattn_heads"], lm["xattn_head_dim"], lm["heads"], lm["head_dim"]) == (2, 16, 4, 16)
    assert "bos" not in manifest["special_tokens"]
    assert manifest["vision"]["n_tokens"] == 9 and manifest["vision"]["d_vision"] == 32  # 3x3 patches, no CLS
    names = lambda vs: [v.name for v in vs]  # noqa: E731
    graphs = {role: onnx.load(tmp_path / f"{role}.onnx") for role in ("vision_encoder", "resampler", "xattn_kv", "lm")}
    assert names(graphs["resampler"].graph.output) == ["latents", "latent_attention"]
    assert names(graphs["xattn_kv"].graph.output) == ["xattn_key_1", "xattn_value_1", "xattn_key_3", "xattn_value_3"]
    lm_inputs = names(graphs["lm"].graph.input)
    assert lm_inputs[:3] == ["input_ids", "media_index", "logits_to_keep"]
    assert lm_inputs[3:7] == ["xattn_key_1", "xattn_value_1", "xattn_key_3", "xattn_value_3"]
    assert lm_inputs[7:] == [f"past_{kv}_{i}" for i in range(4) for kv in ("key", "value")]
    assert "CumSum" not in {n.op_type for g in graphs.values() for n in g.graph.node}  # open_flamingo#256
    tok = json.loads((tmp_path / "tokenizer.json").read_text())
    added = {t["content"]: t["id"] for t in tok["added_tokens"]}
    eot = added["<|endoftext|>"]  # OpenFlamingo's three follow the tokenizer's own, in its order
    assert [added[t] for t in ("<|endofchunk|>", "<image>", "<PAD>")] == [eot + 1, eot + 2, eot + 3]


def test_weights_past_the_shard_size_go_to_external_data_shards(model, tokenizer, tmp_path):
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    convert(*fixture.user_files(model), fixture.MPT_CONFIG, tokenizer, whole, {}, 2 ** 30, **fixture.HEADS)
    manifest = convert(*fixture.user_files(model), fixture.MPT_CONFIG, tokenizer, sharded, {}, 200_000, **fixture.HEADS)
    shards = manifest["files"]["lm"]["external_data"]
    assert len(shards) >= 5 and [s["path"] for s in shards] == [f"lm.onnx.data-{k:02d}" for k in range(len(shards))]
    wte = 4 * model.cfg.vocab_size * model.cfg.d_model  # the largest tensor: a shard of its own may exceed the size
    assert all(s["bytes"] <= max(200_000, wte + 64) for s in shards)
    assert all((sharded / s["path"]).stat().st_size == s["bytes"] for s in shards)
    assert manifest["files"]["lm"]["bytes"] < 100_000  # the graph file: nodes and small constants only
    assert "external_data" not in manifest["files"]["xattn_kv"]  # under the size: one file as before
    a = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(whole / "lm.onnx")).graph.initializer}
    b = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(sharded / "lm.onnx")).graph.initializer}
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    req = manifest["requirements"]
    assert req["storage_bytes"] == sum(f["bytes"] + sum(s["bytes"] for s in f.get("external_data", []))
                                       for f in manifest["files"].values())
    assert req["memory_bytes"] > req["storage_bytes"] and req["largest_tensor_bytes"] == wte
    q4, fp16 = manifest["variants"]["q4"], manifest["variants"]["fp16"]
    assert "lm" in q4["files"] and "lm" in fp16["files"]
    assert q4["requirements"]["storage_bytes"] < req["storage_bytes"]
    assert fp16["requirements"]["largest_tensor_bytes"] == wte // 2
    assert all((sharded / s["path"]).exists() for s in fp16["files"]["lm"].get("external_data", []))


@pytest.mark.parametrize("text, words", [
    ("Hello world", ["Hello", " world"]),
    ("it's 42!", ["it", "'s", " 42", "!"]),
    ("a  b", ["a", " ", " b"]),
    ("x\n\ny", ["x", "\n", "\n", "y"]),
    ("end  ", ["end", "  "]),
    (" 'quoted'", [" '", "quoted", "'"]),
])
def test_gpt2_pre_tokenizer(text, words):
    assert pre_tokenize(text) == words


def test_the_streamed_conversion_equals_the_graphs_built_in_memory(model, tokenizer, tmp_path):
    """The converter hands each weight to its shard as the graph builder makes it, and makes the
    variants tensor by tensor from the float32 files; built whole in memory instead (weights inline,
    the variants from the loaded float32 graph), every graph has the same nodes and weights."""
    manifest = convert(*fixture.user_files(model), fixture.MPT_CONFIG, tokenizer, tmp_path, {}, 200_000,
                       **fixture.HEADS)
    assert manifest["files"]["lm"]["external_data"] and manifest["variants"]["fp16"]["files"]["lm"]["external_data"]
    in_memory = {"xattn_kv": build_xattn_kv(model), "lm": build_lm(model)}
    for role, graph in (("vision_encoder", VisionGraph(model)), ("resampler", ResamplerGraph(model))):
        traced = onnx.load(tmp_path / f"{role}.onnx", load_external_data=False)
        example = [torch.zeros([d.dim_value or 1 for d in i.type.tensor_type.shape.dim]) for i in traced.graph.input]
        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(graph, tuple(example), buffer, opset_version=17,
                              input_names=[i.name for i in traced.graph.input],
                              output_names=[o.name for o in traced.graph.output])
        in_memory[role] = onnx.load_from_string(buffer.getvalue())
    for role, whole in in_memory.items():
        streamed = onnx.load(str(tmp_path / manifest["files"][role]["path"]))
        if role in ("xattn_kv", "lm"):  # the traced graphs' dynamic axes differ from the example's: weights only
            assert_same_graph(streamed, whole)
        assert_same_weights(streamed, whole)
        for name, variant in manifest["variants"].items():
            expected = make_variant(streamed, next(v for v in VARIANTS if v.name == name))
            if expected is None:
                assert role not in variant["files"]
                continue
            assert_same_graph(onnx.load(str(tmp_path / variant["files"][role]["path"])), expected)
            assert_same_weights(onnx.load(str(tmp_path / variant["files"][role]["path"])), expected)


def assert_same_graph(a: onnx.ModelProto, b: onnx.ModelProto):
    assert [n.SerializeToString() for n in a.graph.node] == [n.SerializeToString() for n in b.graph.node]
    assert [i.SerializeToString() for i in a.graph.input] == [i.SerializeToString() for i in b.graph.input]
    assert [o.SerializeToString() for o in a.graph.output] == [o.SerializeToString() for o in b.graph.output]


def assert_same_weights(a: onnx.ModelProto, b: onnx.ModelProto):
    """The same initializers in the same order, equal values (names of traced graphs aside)."""
    values = lambda m: [onnx.numpy_helper.to_array(t) for t in m.graph.initializer]  # noqa: E731
    assert [t.dims for t in a.graph.initializer] == [t.dims for t in b.graph.initializer]
    assert all(np.array_equal(x, y) for x, y in zip(values(a), values(b)))
