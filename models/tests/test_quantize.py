"""The quantiser (flamingo/quantize.py): block codes within their scale's bound, and graphs that stay
valid ONNX with the same inputs and outputs. That the variants compute the same answers is checked
through ONNX Runtime in src/cli/variants.test.ts (no onnxruntime for Python here)."""
import hashlib
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from flamingo.export import export_graphs
from flamingo.model import Flamingo, FlamingoConfig
from flamingo.quantize import (VARIANTS, dequantize_blocks, pack, quantize_blocks, to_float16, to_matmul_nbits,
                               unpack, write_variants)


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("K", [128, 100, 16])  # a multiple of the block, a ragged last block, less than a block
def test_dequantised_weights_are_within_half_a_block_scale(bits, symmetric, K):
    rng = np.random.default_rng(K + bits)
    N, block = 24, 32
    w = rng.normal(0, 0.05, (K, N)).astype(np.float32)
    w[3, 5] = 0.9  # an outlier widens its block's scale only
    B, scales, zp = quantize_blocks(w, bits, block, symmetric)
    k_blocks = -(-K // block)
    assert B.shape == (N, k_blocks, block * bits // 8) and B.dtype == np.uint8
    assert scales.shape == (N, k_blocks) and scales.dtype == np.float32
    assert (zp is None) == symmetric
    if zp is not None:
        assert zp.shape == (N, -(-k_blocks * bits // 8)) and zp.dtype == np.uint8
    back = dequantize_blocks(B, scales, zp, K, bits, block)
    per_weight_scale = scales.T[np.arange(K) // block]  # [K, N]: each weight's block scale
    assert np.all(np.abs(back - w) <= per_weight_scale / 2 * (1 + 1e-5) + 1e-12)
    assert np.abs(back - w)[3, 5] <= scales[5, 0] / 2 * (1 + 1e-5)


def test_zero_weights_stay_zero_and_codes_pack_low_nibble_first():
    w = np.zeros((32, 2), np.float32)
    w[0, 0], w[1, 0] = -1.0, 1.0
    B, scales, zp = quantize_blocks(w, 4, 32, symmetric=False)
    assert np.array_equal(dequantize_blocks(B, scales, zp, 32, 4, 32)[:, 1], np.zeros(32))
    codes = np.array([[1, 2, 3, 4]], np.uint8)
    assert pack(codes, 4).tolist() == [[0x21, 0x43]]
    assert unpack(pack(codes, 4), 4, 4).tolist() == codes.tolist()


def two_layer_graph():
    """x → MatMul(W1) → Relu → MatMul(W1ᵀ-shaped W2) → MatMul(W2 again: shared) plus a RoPE-like
    island: positions (int) → Cast → Sin, added to the stream; W0 is a Constant node."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.1, (64, 32)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.1, (32, 32)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Constant", [], ["w0"], value=numpy_helper.from_array(np.eye(64, dtype=np.float32))),
        helper.make_node("MatMul", ["x", "w0"], ["h0"]),
        helper.make_node("MatMul", ["h0", "w1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
        helper.make_node("MatMul", ["h3", "w2"], ["h4"]),
        helper.make_node("Cast", ["pos"], ["posf"], to=TensorProto.FLOAT),
        helper.make_node("Sin", ["posf"], ["angle"]),
        helper.make_node("Add", ["h4", "angle"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 64]),
         helper.make_tensor_value_info("pos", TensorProto.INT64, ["s", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 32])],
        initializer=[w1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_every_constant_weight_matmul_becomes_matmulnbits():
    model = two_layer_graph()
    q, replaced = to_matmul_nbits(model, bits=4, block_size=32)
    onnx.checker.check_model(q, full_check=True)
    assert replaced == 4
    ops = [n.op_type for n in q.graph.node]
    assert "MatMul" not in ops and ops.count("MatMulNBits") == 4
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    assert "w1" not in inits and "w2" not in inits  # the float32 weights are gone
    nbits = [n for n in q.graph.node if n.op_type == "MatMulNBits"]
    assert nbits[2].input[1:] == nbits[3].input[1:]  # a shared weight is stored once
    for node in nbits:
        assert node.domain == "com.microsoft"
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["bits"] == 4 and attrs["block_size"] == 32
        B, scales, zp = (inits[name] for name in node.input[1:])
        assert B.shape == (attrs["N"], -(-attrs["K"] // 32), 16)
    w1 = numpy_helper.to_array(model.graph.initializer[0])
    B, scales, zp = (inits[name] for name in nbits[1].input[1:])
    assert np.abs(dequantize_blocks(B, scales, zp, 64, 4, 32) - w1).max() <= scales.max() / 2 * (1 + 1e-5)
    assert [i.name for i in q.graph.input] == ["x", "pos"] and [o.name for o in q.graph.output] == ["y"]


def test_float16_keeps_float32_inputs_outputs_and_position_islands():
    half = to_float16(two_layer_graph())
    onnx.checker.check_model(half, full_check=True)
    types = {v.name: v.type.tensor_type.elem_type for v in list(half.graph.input) + list(half.graph.output)}
    assert types == {"x": TensorProto.FLOAT, "pos": TensorProto.INT64, "y": TensorProto.FLOAT}
    inits = {i.name: i.data_type for i in half.graph.initializer if i.dims}
    assert inits and all(t == TensorProto.FLOAT16 for t in inits.values())  # every weight in float16
    inferred = onnx.shape_inference.infer_shapes(half, strict_mode=True)
    elem = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    assert elem["angle"] == TensorProto.FLOAT  # the sine of a position is taken in float32
    assert elem["h4"] == TensorProto.FLOAT16
    assert sum(n.op_type == "Cast" for n in half.graph.node) == 4  # x in, posf, angle→stream, y out


def tiny_flamingo():
    torch.manual_seed(0)
    cfg = FlamingoConfig(vocab_size=64, d_model=64, n_heads=4, n_layers=2, d_vision=32, n_latents=4,
                         vision_channels=(8, 16, 16, 32))
    return Flamingo(cfg).eval()


def test_variants_of_an_exported_model_folder(tmp_path):
    """Graphs it was not written for (a fresh export of another size) get valid variants, listed in the
    manifest as docs/MODEL_FORMAT.md says."""
    export_graphs(tiny_flamingo(), tmp_path)
    files = {}
    for role in ("vision_encoder", "resampler", "lm"):
        data = (tmp_path / f"{role}.onnx").read_bytes()
        files[role] = {"path": f"{role}.onnx", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "flamingo-web/1", "files": files}))
    manifest = write_variants(tmp_path)
    assert list(manifest["variants"]) == [v.name for v in VARIANTS]
    for name, variant in manifest["variants"].items():
        assert set(variant) <= {"description", "backends", "requires", "files"}
        assert isinstance(variant["backends"], list) and variant["files"]  # q4: no backend, by name only
        for role, entry in variant["files"].items():
            data = (tmp_path / entry["path"]).read_bytes()
            assert entry == {"path": f"{role}.{name}.onnx", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            graph = onnx.load(str(tmp_path / entry["path"]))
            onnx.checker.check_model(graph)
            original = onnx.load(str(tmp_path / f"{role}.onnx"))
            assert [i.name for i in graph.graph.input] == [i.name for i in original.graph.input]
            assert [o.name for o in graph.graph.output] == [o.name for o in original.graph.output]
    assert manifest["variants"]["fp16"]["requires"] == ["shader-f16"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_a_tied_head_through_transpose_is_quantised_and_masks_stay_finite_in_float16():
    """MatMul(x, Transpose(wte)) reads a constant too; an additive −1e9 mask from integers keeps
    its meaning in float16 (clipped, not −inf)."""
    rng = np.random.default_rng(1)
    wte = numpy_helper.from_array(rng.normal(0, 0.1, (48, 32)).astype(np.float32), "wte")
    nodes = [
        helper.make_node("Transpose", ["wte"], ["wte_t"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wte_t"], ["logits"]),
        helper.make_node("Cast", ["allowed"], ["allowed_f"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["allowed_f", "one"], ["blocked"]),
        helper.make_node("Mul", ["blocked", "big"], ["mask"]),
        helper.make_node("Add", ["logits", "mask"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "tied",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["s", 32]),
         helper.make_tensor_value_info("allowed", TensorProto.BOOL, ["s", 48])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["s", 48])],
        initializer=[wte, numpy_helper.from_array(np.array(1.0, np.float32), "one"),
                     numpy_helper.from_array(np.array(1e9, np.float32), "big")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    q, replaced = to_matmul_nbits(model)
    onnx.checker.check_model(q, full_check=True)
    assert replaced == 1 and "Transpose" not in [n.op_type for n in q.graph.node]
    half = to_float16(model)
    onnx.checker.check_model(half, full_check=True)
    clip = next(n for n in half.graph.node if n.op_type == "Clip")
    assert clip.input[0] == "mask"  # the mask is made in float32, then clipped into float16's range
    bound = {i.name: float(numpy_helper.to_array(i)) for i in half.graph.initializer if i.name in clip.input[1:]}
    assert sorted(bound.values()) == [-32768.0, 32768.0]


def test_float16_follows_ops_shape_inference_does_not_know():
    """com.microsoft ops (MultiHeadAttention in lm.onnx) have no ONNX schema: float in, float out."""
    nodes = [
        helper.make_node("Gelu", ["x"], ["g"], domain="com.microsoft"),
        helper.make_node("Cast", ["pos"], ["posf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["g", "posf"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "contrib",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["s", 8]),
         helper.make_tensor_value_info("pos", TensorProto.INT64, ["s", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["s", 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    half = to_float16(model)
    mul = next(n for n in half.graph.node if n.op_type == "Mul")
    assert mul.input[0] == "g" and mul.input[1] != "posf"  # the Gelu's output is float16: posf is cast to meet it
    assert half.graph.node[-1].op_type == "Cast" and half.graph.node[-1].output[0] == "y"
