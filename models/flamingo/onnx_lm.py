"""The language model's two ONNX graphs, written op by op from a trained FlamingoLM's weights.

    xattn_kv.onnx  media_latents [B, M, l, dv] -> xattn_key_i, xattn_value_i [B, h, M*l, dh]
    lm.onnx        input_ids, media_index [B, s], logits_to_keep [1], xattn K/V, past K/V
                   -> logits [B, min(K, s), vocab], present K/V, the call's own new K/V
                                                                         (docs/MODEL_FORMAT.md)

Why not torch.onnx.export: traced through torch 1.13 the same LM became 1,435 nodes (454 Constant,
138 Shape, ... of dynamic-shape bookkeeping) for 53 MatMuls, and onnxruntime-web pays a fixed cost
per node on every decode step. Written by hand, a decoder layer with its gated block is about 25 nodes:
  - head splits are Reshapes with literal sizes (0 copies a dimension), no Shape arithmetic;
  - RoPE is com.microsoft.RotaryEmbedding (non-interleaved: rotate_half), one node each for q and k,
    given cos/sin rows of the call's own positions only (position_ids 0), so no table has a length limit;
  - a residual add followed by a LayerNorm is one SkipLayerNormalization (with the MLP's output bias
    folded in as its bias): ORT's optimiser fuses that on GPU providers only, and the WASM EP pays per node;
  - attention is com.microsoft.MultiHeadAttention (past/present K/V; cross-attention with a bias), which the
    CPU, WASM and WebGPU execution providers all implement;
  - self-attention's causal mask is MHA's own (unidirectional=1, offset by the past), no bias tensor;
    the per-image cross-attention bias (Flamingo's phi, from media_index) and the RoPE angles are
    built once and shared by every layer;
  - tanh(alpha) and tanh(beta) are folded into the gated blocks' last projections, and the
    softmax scale is MHA's default 1/sqrt(head_dim), as in the PyTorch model.
The einsum letters of model.py apply. The PyTorch model stays the reference: models/tools/parity.py
compares these graphs with it through ONNX Runtime.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from .external_data import Inline
from .model import FlamingoLM, GatedXAttnDenseBlock

OPSET = 17
MS = "com.microsoft"
# Added to the scores of keys a query may not see. Not -inf: a row that may see nothing (text
# before the first image) must stay finite; small enough to stay finite in float16 as well.
MASKED = -10000.0


class GraphBuilder:
    """A little helper around onnx.helper: named initializers, one node per call. Each constant is
    handed to `tensors` as it is made: kept inline (the default), or written straight to the graph's
    external data shards by an external_data.ShardWriter (OpenFlamingo's 5 GB lm.onnx)."""

    def __init__(self, tensors=None):
        self.nodes, self.inits, self.count = [], [], 0
        self.tensors = tensors or Inline()

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, value, hint: str = "c", dtype=np.float32) -> str:
        name = self.name(hint)
        self.inits.append(self.tensors.tensor(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs, hint: str | None = None, outputs: int | list[str] = 1, domain: str = "",
           **attrs):
        outs = outputs if isinstance(outputs, list) else [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, domain=domain or None, **attrs))
        return outs[0] if len(outs) == 1 else outs

    def rename(self, old: str, new: str) -> str:
        """Gives the value `old` (a node's output) the name `new`, everywhere it is used."""
        for node in self.nodes:
            for j, name in enumerate(node.output):
                if name == old:
                    node.output[j] = new
            for j, name in enumerate(node.input):
                if name == old:
                    node.input[j] = new
        return new

    def model(self, name: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                                  producer_name="flamingo-web")
        onnx.checker.check_model(model)
        return model


def weight(linear: torch.nn.Linear) -> np.ndarray:
    """nn.Linear stores [out, in]; MatMul wants [in, out]."""
    return linear.weight.detach().numpy().T.copy()


def layer_norm(g: GraphBuilder, x: str, ln: torch.nn.LayerNorm) -> str:
    return g.op("LayerNormalization", [x, g.const(ln.weight.detach().numpy(), "ln_w"),
                                       g.const(ln.bias.detach().numpy(), "ln_b")], axis=-1, epsilon=ln.eps)


class Residual:
    """The residual stream: `add` leaves its sum pending, so that the next `norm` writes the add and the
    LayerNorm as one SkipLayerNormalization (input + skip + bias, normalised; the sum is its 4th output)."""

    def __init__(self, g: GraphBuilder, x: str):
        self.g, self.x, self.pending = g, x, None

    def add(self, delta: str, bias: np.ndarray | None = None) -> None:
        self.value()
        self.pending = (delta, bias)

    def norm(self, ln: torch.nn.LayerNorm) -> str:
        if self.pending is None:
            return layer_norm(self.g, self.x, ln)
        g, (delta, bias) = self.g, self.pending
        inputs = [self.x, delta, g.const(ln.weight.detach().numpy(), "ln_w"), g.const(ln.bias.detach().numpy(), "ln_b")]
        if bias is not None:
            inputs.append(g.const(bias, "b"))
        self.x = g.name("residual")
        self.pending = None
        return g.op("SkipLayerNormalization", inputs, outputs=[g.name("skip_ln"), "", "", self.x], domain=MS,
                    epsilon=ln.eps)[0]

    def value(self) -> str:
        if self.pending is not None:
            delta, bias = self.pending
            self.pending = None
            if bias is not None:
                delta = self.g.op("Add", [delta, self.g.const(bias, "b")])
            self.x = self.g.op("Add", [self.x, delta])
        return self.x


def linear(g: GraphBuilder, x: str, w: np.ndarray, b: np.ndarray | None = None) -> str:
    y = g.op("MatMul", [x, g.const(w, "w")])
    return g.op("Add", [y, g.const(b, "b")]) if b is not None else y


def gelu(g: GraphBuilder, x: str) -> str:
    return g.op("Gelu", [x], domain=MS)  # exact (erf) GELU, as nn.GELU()


def to_heads(g: GraphBuilder, x: str, heads: int, head_dim: int) -> str:
    """[B, n, h*dh] -> [B, h, n, dh]."""
    x = g.op("Reshape", [x, g.const([0, 0, heads, head_dim], "shape", np.int64)])
    return g.op("Transpose", [x], perm=[0, 2, 1, 3])


# ----------------------------------------------------------------------------- xattn_kv.onnx

def build_xattn_kv(flm: FlamingoLM) -> onnx.ModelProto:
    cfg = flm.cfg
    g = GraphBuilder()
    x = g.op("Reshape", ["media_latents", g.const([0, -1, cfg.d_vision], "shape", np.int64)])  # [B, M*l, dv]
    outputs = []
    for i in cfg.xattn_layers:
        xattn = flm.xattn[i].xattn
        kv = g.op("MatMul", [x, g.const(weight(xattn.to_kv), "w_kv")])
        k, v = g.op("Split", [kv, g.const([cfg.d_model, cfg.d_model], "split", np.int64)], outputs=2, axis=-1)
        for name, t in ((f"xattn_key_{i}", k), (f"xattn_value_{i}", v)):
            r = g.op("Reshape", [t, g.const([0, 0, cfg.n_heads, cfg.head_dim], "shape", np.int64)])
            g.op("Transpose", [r], outputs=[name], perm=[0, 2, 1, 3])
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", cfg.n_heads, "media_latents",
                                                                                   cfg.head_dim]))
    inputs = [helper.make_tensor_value_info("media_latents", TensorProto.FLOAT,
                                            ["batch", "media", cfg.n_latents, cfg.d_vision])]
    return g.model("xattn_kv", inputs, outputs)


# ----------------------------------------------------------------------------- lm.onnx

def build_lm(flm: FlamingoLM) -> onnx.ModelProto:
    cfg = flm.cfg
    lm = flm.lm
    d, H, dh = cfg.d_model, cfg.n_heads, cfg.head_dim
    g = GraphBuilder()
    i64 = np.int64

    # Sequence bookkeeping, once: s (new tokens), P (past), T = P + s.
    s = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(1, "one", i64)], axis=0)
    P = g.op("Gather", [g.op("Shape", ["past_key_0"]), g.const(2, "two", i64)], axis=0)
    T = g.op("Add", [P, s])
    qpos = g.op("Range", [P, T, g.const(1, "one", i64)])  # absolute positions of the new tokens [s]

    # RoPE's cos/sin rows [s, dh/2] of the new tokens' positions, shared by q and k of every layer;
    # RotaryEmbedding reads row position_ids + t for token t, so its position_ids is 0.
    inv_freq = lm.inv_freq.detach().numpy().astype(np.float32)
    angles = g.op("Mul", [g.op("Unsqueeze", [g.op("Cast", [qpos], to=TensorProto.FLOAT), g.const([1], "ax", i64)]),
                          g.const(inv_freq, "inv_freq")])
    cos, sin = g.op("Cos", [angles]), g.op("Sin", [angles])
    first_row = g.const([0], "position_ids", i64)

    # Flamingo's per-image mask as a bias [B, 1, s, M*l]: token t sees the latents of image
    # media_index[t] only; tokens before the first image (-1) see none, and their cross-attention
    # output is zeroed by has_media [B, s, 1].
    xbias = has_media = ""
    if cfg.xattn_layers:
        first_xattn = cfg.xattn_layers[0]
        n_media_latents = g.op("Gather", [g.op("Shape", [f"xattn_key_{first_xattn}"]), g.const(2, "two", i64)], axis=0)
        latent_media = g.op("Div", [g.op("Range", [g.const(0, "zero", i64), n_media_latents, g.const(1, "one", i64)]),
                                    g.const(cfg.n_latents, "l", i64)])  # [M*l]: the image of each latent
        midx = g.op("Unsqueeze", ["media_index", g.const([2], "ax", i64)])  # [B, s, 1]
        allowed = g.op("Equal", [midx, latent_media])  # [B, s, M*l]
        xbias = g.op("Where", [allowed, g.const(0.0, "zero_f"), g.const(MASKED, "masked")])
        xbias = g.op("Unsqueeze", [xbias, g.const([1], "ax", i64)])  # [B, 1, s, M*l]
        has_media = g.op("Cast", [g.op("GreaterOrEqual", [midx, g.const(0, "zero", i64)])], to=TensorProto.FLOAT)

    x = Residual(g, g.op("Gather", [g.const(lm.wte.weight.detach().numpy(), "wte"), "input_ids"], axis=0))  # [B, s, d]
    present = []
    for i, (block, gated) in enumerate(zip(lm.blocks, flm.xattn)):
        if isinstance(gated, GatedXAttnDenseBlock):
            gated_xattn_dense(g, x, gated, i, xbias, has_media, H)
        # self-attention: one MatMul gives q, k, v
        h = x.norm(block.ln1)
        q, k, v = g.op("Split", [g.op("MatMul", [h, g.const(weight(block.attn.qkv), "w_qkv")]),
                                 g.const([d] * 3, "split", i64)], outputs=3, axis=-1)
        q, k = (g.op("RotaryEmbedding", [t, first_row, cos, sin], domain=MS, num_heads=H, interleaved=0) for t in (q, k))
        k, v = g.rename(k, f"new_key_{i}"), g.rename(v, f"new_value_{i}")
        # unidirectional: new token t (absolute position P + t) sees keys 0 .. P + t, the causal mask
        attn = g.op("MultiHeadAttention", [q, k, v, "", "", "", f"past_key_{i}", f"past_value_{i}"],
                    outputs=[g.name("attn"), f"present_key_{i}", f"present_value_{i}"], domain=MS, num_heads=H,
                    unidirectional=1)[0]
        present += [f"present_key_{i}", f"present_value_{i}"]
        x.add(linear(g, attn, weight(block.attn.out)))
        # MLP (its output bias goes into the next SkipLayerNormalization)
        m = block.mlp
        h = gelu(g, linear(g, x.norm(block.ln2), weight(m[0]), m[0].bias.detach().numpy()))
        x.add(linear(g, h, weight(m[2])), m[2].bias.detach().numpy())

    # logits for the last K positions only: generation needs one row, scoring all of them
    start = g.op("Neg", ["logits_to_keep"])
    x = g.op("Slice", [x.value(), start, g.const([np.iinfo(np.int64).max], "end", i64), g.const([1], "ax", i64)])
    x = layer_norm(g, x, lm.ln_f)
    g.op("MatMul", [x, g.const(lm.lm_head.weight.detach().numpy().T.copy(), "lm_head")], outputs=["logits"])

    f = TensorProto.FLOAT
    kv_shape = lambda n: ["batch", H, n, dh]  # noqa: E731
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("media_index", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("logits_to_keep", TensorProto.INT64, [1])]
    inputs += [helper.make_tensor_value_info(f"xattn_{kv}_{i}", f, kv_shape("media_latents"))
               for i in cfg.xattn_layers for kv in ("key", "value")]
    inputs += [helper.make_tensor_value_info(f"past_{kv}_{i}", f, kv_shape("past"))
               for i in range(cfg.n_layers) for kv in ("key", "value")]
    outputs = [helper.make_tensor_value_info("logits", f, ["batch", "kept", cfg.vocab_size])]
    outputs += [helper.make_tensor_value_info(name, f, kv_shape("total")) for name in present]
    outputs += [helper.make_tensor_value_info(f"xattn_query_{i}", f, ["batch", "seq", d]) for i in cfg.xattn_layers]
    outputs += new_kv_outputs(cfg.n_layers, d)
    return g.model("lm", inputs, outputs)


def new_kv_outputs(layers: int, width: int) -> list:
    """new_key_i, new_value_i [B, s, heads*head_dim]: the keys (position applied) and values of this call's own
    tokens, the rows present_* appends to past_*. A CPU or WASM decode step fetches these instead of present_*
    and appends them to its own cache (src/engine/kvCache.ts): outputs are copied out of the WASM heap into new
    arrays on every run, so the whole cache as an output costs a step more than its arithmetic."""
    return [helper.make_tensor_value_info(f"new_{kv}_{i}", TensorProto.FLOAT, ["batch", "seq", width])
            for i in range(layers) for kv in ("key", "value")]


def gated_xattn_dense(g: GraphBuilder, y: Residual, block: GatedXAttnDenseBlock, i: int, xbias: str, has_media: str,
                      heads: int) -> None:
    """y += tanh(alpha) * xattn(y, media); y += tanh(beta) * ffw(y), gates folded into the weights."""
    alpha, beta = (float(t) for t in block.gates())
    xa = block.xattn
    # The query is also a graph output (xattn_query_i), for the pictures: which latents a token
    # looked at is softmax(q k^T / sqrt(dh)) over its image's latents, computed where it is asked for.
    q = g.op("MatMul", [y.norm(xa.norm), g.const(weight(xa.to_q), "w_q")], outputs=[f"xattn_query_{i}"])
    out = g.op("MultiHeadAttention", [q, f"xattn_key_{i}", f"xattn_value_{i}", "", "", xbias], domain=MS,
               num_heads=heads)
    out = g.op("Mul", [out, has_media])  # text before any image: exactly 0
    y.add(g.op("MatMul", [out, g.const(alpha * weight(xa.to_out), "w_out")]))
    ff = block.ff  # LayerNorm, Linear, GELU, Linear (no biases)
    h = gelu(g, g.op("MatMul", [y.norm(ff[0]), g.const(weight(ff[1]), "w_ff")]))
    y.add(g.op("MatMul", [h, g.const(beta * weight(ff[3]), "w_ff_out")]))


def gate_values(flm: FlamingoLM) -> list[dict]:
    """tanh(alpha), tanh(beta) per gated layer, for the manifest (the pictures show them)."""
    return [{"layer": i, "attn": float(flm.xattn[i].gates()[0]), "ff": float(flm.xattn[i].gates()[1])}
            for i in flm.cfg.xattn_layers]
