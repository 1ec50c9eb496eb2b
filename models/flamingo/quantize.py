"""Quantised variants of a model folder: the same graphs, other encodings of the weights.

    /usr/bin/python3 -m flamingo.quantize ../public/models/emojiworld

Writes `<graph>.<variant>.onnx` next to every float32 graph the manifest names and lists them
under `variants` in manifest.json (docs/MODEL_FORMAT.md, "Variants"). Generic over graphs: it
reads no role names, only the ops.

- `q4`: every MatMul whose right-hand side is a constant 2-D float weight [K, N] becomes
  com.microsoft MatMulNBits, 4 bits, blocks of 32 along K, asymmetric (a 4-bit zero point per
  block, packed two to a byte) with a float32 scale per block. Everything else (Conv, the token
  embedding, LayerNorm) stays float32, and so does the arithmetic; a graph that would shrink by less
  than 10 % keeps its float32 file (the vision encoder). For WASM and WebGPU: both run
  MatMulNBits (onnxruntime-web's WebGPU kernel takes 2 or 4 bits and packed zero points only,
  so not 8 bits).
- `fp16`: float16 weights and arithmetic, inputs and outputs still float32 (a Cast at each), so
  the engine feeds the same tensors. For WebGPU adapters with `shader-f16`.

MatMulNBits layout (ONNX Runtime's ContribOperators.md): B uint8 [N, k_blocks, block_size·bits/8],
codes packed low bits first along K; scales [N, k_blocks] in A's type; zero_points uint8
[N, ceil(k_blocks·bits/8)], packed the same way (absent: 2^(bits-1));
dequantised weight = (code − zero_point) · scale, and Y = A · dequant(B)ᵀ.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .external_data import SHARD_BYTES, Inline, ShardWriter, file_entry, initializer_bytes, read_array

MS_DOMAIN = "com.microsoft"
# Constants and float32 islands enter float16 clipped to ±2^15, not to the format's 65504: a −1e9
# mask added to a score must stay finite (an all-masked row of −inf would softmax to NaN).
FP16_CLIP = 32768.0


# ---------------------------------------------------------------- block quantisation (numpy)

def quantize_blocks(w: np.ndarray, bits: int = 4, block_size: int = 32, symmetric: bool = False):
    """w: [K, N] float (a MatMul's right-hand side). Returns (B, scales, zero_points or None) in
    MatMulNBits' layout. Within a block, |w − dequant| ≤ scale / 2."""
    assert bits in (4, 8) and block_size >= 16 and block_size & (block_size - 1) == 0
    K, N = w.shape
    k_blocks = -(-K // block_size)
    wt = np.zeros((N, k_blocks * block_size), np.float32)
    wt[:, :K] = w.T  # padding past K is zero: it costs nothing and dequantises to nothing used
    blocks = wt.reshape(N, k_blocks, block_size)
    levels = (1 << bits) - 1
    if symmetric:  # codes −(2^(b−1)−1) … 2^(b−1)−1 around the default zero point 2^(b−1)
        half = (1 << (bits - 1)) - 1
        scales = np.abs(blocks).max(-1) / half
        zero = np.full(scales.shape, 1 << (bits - 1), np.int32)
    else:  # the block's [min, max], widened to hold 0 so that a zero weight stays exactly zero
        lo = np.minimum(blocks.min(-1), 0.0)
        hi = np.maximum(blocks.max(-1), 0.0)
        scales = (hi - lo) / levels
        zero = np.clip(np.round(-lo / np.where(scales > 0, scales, 1.0)), 0, levels).astype(np.int32)
    scales = scales.astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0)[..., None]
    codes = np.clip(np.round(blocks / safe) + zero[..., None], 0, levels).astype(np.uint8)
    packed = pack(codes, bits)
    zero_points = None if symmetric else pack(zero.astype(np.uint8), bits)
    return packed, scales, zero_points


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes along the last axis, low bits first (two 4-bit codes per byte, the first in the low nibble)."""
    if bits == 8:
        return codes.astype(np.uint8)
    if codes.shape[-1] % 2:
        codes = np.concatenate([codes, np.zeros(codes.shape[:-1] + (1,), codes.dtype)], -1)
    return (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)


def unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    if bits == 8:
        return packed[..., :count].astype(np.int32)
    codes = np.stack([packed & 0x0F, packed >> 4], -1).reshape(packed.shape[:-1] + (-1,))
    return codes[..., :count].astype(np.int32)


def dequantize_blocks(B, scales, zero_points, K: int, bits: int, block_size: int) -> np.ndarray:
    """The inverse of quantize_blocks, as MatMulNBits computes it: [K, N] float32."""
    N, k_blocks, _ = B.shape
    codes = unpack(B, bits, block_size)  # [N, k_blocks, block_size]
    zero = (np.full((N, k_blocks), 1 << (bits - 1)) if zero_points is None
            else unpack(zero_points, bits, k_blocks))
    w = (codes - zero[..., None]) * scales[..., None]
    return w.reshape(N, k_blocks * block_size)[:, :K].T.astype(np.float32)


# ---------------------------------------------------------------- graph helpers

class Constants:
    """Constant tensors of a graph by name: initializers and Constant nodes' values, read when asked
    for (one at a time: an initializer in external data is read from its shard in `base_dir`)."""

    def __init__(self, graph: onnx.GraphProto, base_dir=None):
        self.base_dir = base_dir
        self.tensors = {i.name: i for i in graph.initializer}
        self.producers = {o: node for node in graph.node for o in node.output}
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                self.tensors[node.output[0]] = node.attribute[0].t

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def value(self, name: str) -> np.ndarray:
        return read_array(self.tensors[name], self.base_dir)

    def get(self, name: str):
        """The value, also through a Transpose of a constant (a tied head: MatMul(x, Transpose(wte)))."""
        if name in self.tensors:
            return self.value(name)
        node = self.producers.get(name)
        if node is not None and node.op_type == "Transpose" and node.input[0] in self.tensors:
            perm = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "perm"), None)
            return np.transpose(self.value(node.input[0]), perm)
        return None


def consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    uses: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    return uses


def remove_unused(graph: onnx.GraphProto) -> None:
    """Drops nodes whose outputs nothing reads any more (ONNX ops have no side effects), then such initializers."""
    while True:
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        for node in dead:
            graph.node.remove(node)
        if not dead:
            break
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def unique_name(taken: set[str], base: str) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def all_names(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


def check_no_subgraphs(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"node {node.name or node.op_type} has a subgraph ({node.op_type}): not supported")


def with_ms_opset(model: onnx.ModelProto) -> None:
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))


# ---------------------------------------------------------------- q4: MatMul → MatMulNBits

def to_matmul_nbits(model: onnx.ModelProto, bits: int = 4, block_size: int = 32, symmetric: bool = False,
                    base_dir=None, tensors=None) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` with every constant-weight MatMul as MatMulNBits; and how many were replaced.
    Weights in external data are read from `base_dir` one at a time; the new ones go to `tensors`
    (inline by default; a ShardWriter writes each to the variant's shards as it is made)."""
    tensors = tensors or Inline()
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    check_no_subgraphs(graph)
    constants = Constants(graph, base_dir)
    taken = all_names(graph)
    packed: dict[str, tuple[str, ...]] = {}  # a weight shared by several MatMuls is stored once
    new_inits = []
    nodes = []
    replaced = 0
    for node in graph.node:
        w = constants.get(node.input[1]) if node.op_type == "MatMul" and node.domain in ("", "ai.onnx") else None
        if w is None or w.ndim != 2 or w.dtype != np.float32:
            nodes.append(node)
            continue
        K, N = w.shape
        if node.input[1] not in packed:
            B, scales, zp = quantize_blocks(w, bits, block_size, symmetric)
            stem = node.input[1].replace("::", "_")
            names = [unique_name(taken, f"{stem}_q{bits}"), unique_name(taken, f"{stem}_scales")]
            new_inits += [tensors.tensor(B, names[0]), tensors.tensor(scales, names[1])]
            if zp is not None:
                names.append(unique_name(taken, f"{stem}_zero_points"))
                new_inits.append(tensors.tensor(zp, names[2]))
            packed[node.input[1]] = tuple(names)
        nbits = helper.make_node("MatMulNBits", [node.input[0], *packed[node.input[1]]], list(node.output),
                                 name=unique_name(taken, f"{node.name or 'MatMul'}_Q{bits}"), domain=MS_DOMAIN,
                                 K=K, N=N, bits=bits, block_size=block_size)
        nodes.append(nbits)
        replaced += 1
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(new_inits)
    if replaced:
        with_ms_opset(model)
        remove_unused(graph)
    return model, replaced


# ---------------------------------------------------------------- fp16

FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16


def float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of every float32 tensor in the graph (by ONNX shape inference, plus what it misses)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    floats = {v.name for v in list(g.value_info) + list(g.input) + list(g.output)
              if v.type.tensor_type.elem_type == FLOAT}
    floats |= {i.name for i in g.initializer if i.data_type == FLOAT}
    typed = {v.name for v in list(g.value_info) + list(g.input) + list(g.output)
             if v.type.tensor_type.elem_type} | {i.name for i in g.initializer}
    for node in g.node:
        # Ops shape inference does not know (com.microsoft MultiHeadAttention): float in, float out.
        if any(name in floats for name in node.input):
            floats.update(o for o in node.output if o and o not in typed)
        if node.op_type == "Constant" and node.attribute[0].name == "value" and node.attribute[0].t.data_type == FLOAT:
            floats.add(node.output[0])
        to = cast_to(node)
        if to is not None and to.i == FLOAT:
            floats.add(node.output[0])
    return floats


def cast_to(node: onnx.NodeProto):
    """A Cast node's `to` attribute (mutable), else None."""
    if node.op_type != "Cast":
        return None
    return next(a for a in node.attribute if a.name == "to")


def to_float16(model: onnx.ModelProto, base_dir=None, tensors=None) -> onnx.ModelProto:
    """A float16 copy of `model` whose inputs and outputs are still float32.

    The stream runs in float16: tensors computed from a float input of the graph or from weights.
    Float made from integers (a Cast of positions, a ConstantOfShape) starts a float32 island that
    lasts until it meets the stream (RoPE angles, masks), so that a position like 255 is not
    rounded before its sine is taken; there it is clipped to ±2^15 (a −1e9 mask stays finite,
    even with a score added) and cast. Constants read by the stream are stored in float16, each
    read (from `base_dir` when external) and handed to `tensors` one at a time, as in to_matmul_nbits.
    """
    tensors = tensors or Inline()
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    check_no_subgraphs(graph)
    floats = float_tensors(model)
    constants = Constants(graph, base_dir)
    taken = all_names(graph)

    # 1. Inputs: cast once, and the graph reads the float16 copy.
    stream: set[str] = set()
    renamed: dict[str, str] = {}
    head: list[onnx.NodeProto] = []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type == FLOAT and inp.name not in constants:
            half = unique_name(taken, f"{inp.name}_fp16")
            head.append(helper.make_node("Cast", [inp.name], [half], name=unique_name(taken, f"Cast_{inp.name}"), to=HALF))
            renamed[inp.name] = half
            stream.add(half)
            floats.add(half)

    # 2. Walk the nodes in order. A node that reads the stream, or only constants (the token
    # embedding's Gather), is in float16; float made from integers starts a float32 island.
    island: set[str] = set()
    half_of: dict[str, str] = {}  # a constant or an island tensor → its float16 copy, made once
    new_inits = []
    body: list[onnx.NodeProto] = []
    for node in graph.node:
        for j, name in enumerate(node.input):
            if name in renamed:
                node.input[j] = renamed[name]
        float_in = [name for name in node.input if name in floats]
        float_out = [name for name in node.output if name in floats]
        if node.op_type == "Constant" or not float_out and not any(name in stream for name in float_in):
            body.append(node)
            continue
        if not any(name in stream for name in float_in) and (
                any(name in island for name in float_in) or not float_in):
            island.update(float_out)
            body.append(node)
            continue
        for j, name in enumerate(node.input):
            if not name or name in stream or name not in floats:
                continue
            if name in half_of:
                pass
            elif name in constants:  # a constant read by the stream: stored in float16
                value = np.clip(constants.value(name), -FP16_CLIP, FP16_CLIP).astype(np.float16)
                half_of[name] = unique_name(taken, f"{name}_fp16")
                new_inits.append(tensors.tensor(value, half_of[name]))
            else:  # an island's float32, clipped so that a -1e9 mask stays finite
                clipped = unique_name(taken, f"{name}_clipped")
                half = unique_name(taken, f"{name}_fp16")
                lo, hi = (unique_name(taken, f"{name}_{s}") for s in ("min", "max"))
                new_inits += [numpy_helper.from_array(np.array(-FP16_CLIP, np.float32), lo),
                              numpy_helper.from_array(np.array(FP16_CLIP, np.float32), hi)]
                body.append(helper.make_node("Clip", [name, lo, hi], [clipped], name=unique_name(taken, f"Clip_{name}")))
                body.append(helper.make_node("Cast", [clipped], [half], name=unique_name(taken, f"Cast_{name}"), to=HALF))
                half_of[name] = half
            node.input[j] = half_of[name]
        to = cast_to(node)
        if to is not None and to.i == FLOAT:
            to.i = HALF
        stream.update(float_out)
        body.append(node)

    # 3. Outputs: the stream's float16 result, cast back under the output's own name.
    tail: list[onnx.NodeProto] = []
    for out in graph.output:
        if out.name not in stream:
            continue
        half = unique_name(taken, f"{out.name}_fp16")
        for node in body:
            for j, name in enumerate(node.output):
                if name == out.name:
                    node.output[j] = half
            for j, name in enumerate(node.input):
                if name == out.name:
                    node.input[j] = half
        tail.append(helper.make_node("Cast", [half], [out.name], name=unique_name(taken, f"Cast_{out.name}"), to=FLOAT))

    del graph.node[:]
    graph.node.extend(head + body + tail)
    graph.initializer.extend(new_inits)
    del graph.value_info[:]  # float types changed inside; ONNX Runtime infers them again
    remove_unused(graph)
    return model


# ---------------------------------------------------------------- variants of a model folder

@dataclass(frozen=True)
class Variant:
    name: str
    backends: tuple[str, ...]
    requires: tuple[str, ...] = ()
    bits: int = 0  # 0: no MatMulNBits
    float16: bool = False

    def description(self, block_size: int, symmetric: bool) -> str:
        if self.float16:
            return "float16 weights and arithmetic (inputs and outputs float32)"
        kind = "symmetric" if symmetric else "asymmetric"
        return (f"{self.bits}-bit block-quantised MatMul weights (MatMulNBits, blocks of {block_size}, {kind}), "
                "other weights and arithmetic float32")


BLOCK_SIZE = 32
SYMMETRIC = False
# Manifest order is the worker's preference (first that fits the backend and adapter wins);
# chosen from the measurements in MODEL_CARD.md, "Variants". q4 is meant for no backend: auto never
# picks it (it changes about a quarter of float32's answers for 60 % fewer bytes); ?variant=q4 asks for it.
VARIANTS = (
    Variant("fp16", ("webgpu",), ("shader-f16",), float16=True),
    Variant("q4", (), bits=4),
)


# A weight-quantised graph that saves less than this share of its bytes is not worth a second
# download (the vision encoder is convolutions but for one MatMul): the variant keeps float32's.
MIN_SAVING = 0.1


def make_variant(model: onnx.ModelProto, variant: Variant, block_size: int = BLOCK_SIZE,
                 symmetric: bool = SYMMETRIC, base_dir=None, tensors=None) -> onnx.ModelProto | None:
    """The variant of one graph, or None when the float32 graph serves as well (tensors as in
    to_matmul_nbits; the caller checks the saved file)."""
    changed = False
    if variant.bits:
        before = initializer_bytes(model)
        model, replaced = to_matmul_nbits(model, variant.bits, block_size, symmetric, base_dir, tensors)
        changed = replaced > 0 and initializer_bytes(model) <= (1 - MIN_SAVING) * before
    if variant.float16:
        model, changed = to_float16(model, base_dir, tensors), True
    return model if changed else None


def write_variants(model_dir: Path, variants=VARIANTS, block_size: int = BLOCK_SIZE,
                   symmetric: bool = SYMMETRIC, shard_bytes: int = SHARD_BYTES) -> dict:
    """Writes each variant's graphs next to the float32 ones and lists them in manifest.json. Tensor
    by tensor: each weight is read from the float32 files, converted and written to the variant's
    shards before the next is read, so that no whole model is ever in memory."""
    model_dir = Path(model_dir)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    graphs = {role: f["path"] for role, f in manifest["files"].items() if f["path"].endswith(".onnx")}
    listed = {}
    for variant in variants:
        files = {}
        for role, path in graphs.items():
            source = onnx.load(str(model_dir / path), load_external_data=False)
            target = model_dir / f"{Path(path).stem}.{variant.name}.onnx"
            writer = ShardWriter(target, shard_bytes)  # weights past the shard size as external data
            out = make_variant(source, variant, block_size, symmetric, model_dir, writer)
            if out is None:
                writer.discard()
                continue
            writer.adopt(out, model_dir)  # the float32 weights it keeps (the embedding, norms), copied over
            shards = writer.save(out)
            files[role] = file_entry(target)
            if shards:
                files[role]["external_data"] = [file_entry(p) for p in shards]
        entry = {"description": variant.description(block_size, symmetric), "backends": list(variant.backends)}
        if variant.requires:
            entry["requires"] = list(variant.requires)
        entry["files"] = files
        listed[variant.name] = entry
    manifest["variants"] = listed
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", help="a model folder with manifest.json and float32 graphs")
    ap.add_argument("--variants", default=",".join(v.name for v in VARIANTS),
                    help="which to write, in manifest order (default: all)")
    ap.add_argument("--block_size", type=int, default=BLOCK_SIZE)
    ap.add_argument("--symmetric", action="store_true", default=SYMMETRIC, help="no zero points (default: asymmetric)")
    ap.add_argument("--bits", type=int, choices=(4, 8), help="override the q4 variant's bits (an experiment; WebGPU takes 4)")
    args = ap.parse_args()
    by_name = {v.name: v for v in VARIANTS}
    chosen = []
    for name in args.variants.split(","):
        if name not in by_name:
            ap.error(f"unknown variant {name!r} (known: {', '.join(by_name)})")
        v = by_name[name]
        if args.bits and v.bits:
            v = Variant(v.name, v.backends, v.requires, args.bits, v.float16)
        chosen.append(v)
    manifest = write_variants(Path(args.model_dir), chosen, args.block_size, args.symmetric)
    for name, v in manifest["variants"].items():
        size = sum(f["bytes"] for f in v["files"].values())
        print(f"{name}: {', '.join(f['path'] for f in v['files'].values())} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
