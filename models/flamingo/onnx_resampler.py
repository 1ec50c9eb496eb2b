"""resampler.onnx, written op by op from a trained PerceiverResampler's weights.

    image_features [B, T, n, dv] -> latents [B, l, dv], latent_attention [B, h, l, T*n + l]
                                                                         (docs/MODEL_FORMAT.md)

Why not torch.onnx.export: traced through torch 1.13 the bundled resampler (2 layers, 14 MatMuls) became
349 nodes, most of them Constant, Shape, Gather and Unsqueeze bookkeeping of the dynamic B and T, and an
InferenceSession pays for every node when it is created: on every visit to the app. Here, as in
onnx_lm.py: head splits are Reshapes with literal sizes, the residual add and the LayerNorm after it are one
SkipLayerNormalization, GELU is one node, and the time groups' mask is built once for both layers. The
arithmetic is model.PerceiverResampler's, op for op (scores = q k^T * scale, masked with -inf, softmax);
models/tools/parity.py compares the graph with it through ONNX Runtime.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .model import PerceiverResampler
from .onnx_lm import GraphBuilder, Residual, gelu, layer_norm, to_heads, weight

i64 = np.int64


def time_group_mask(g: GraphBuilder, T: str, resampler: PerceiverResampler, n: int) -> str:
    """PerceiverResampler.allowed as ops on the frame count T (a scalar): bool [l, T*n + l]."""
    G, l = resampler.time_groups, resampler.latents.shape[0]
    group = np.arange(l) * G // l  # the group of each latent
    lo = g.op("Div", [g.op("Mul", [g.const(group, "group", i64), T]), g.const(G, "G", i64)])  # [l]
    hi = g.op("Sub", [g.op("Div", [g.op("Mul", [g.const(group + 1, "group_end", i64), T]), g.const(G, "G", i64)]),
                      g.const(1, "one", i64)])
    hi = g.op("Max", [lo, hi])
    frame = g.op("Div", [g.op("Range", [g.const(0, "zero", i64), g.op("Mul", [T, g.const(n, "n", i64)]),
                                        g.const(1, "one", i64)]), g.const(n, "n", i64)])  # [T*n]: each key's frame
    row, col = g.const([1], "ax", i64), g.const([0], "ax", i64)
    lo_r, hi_r, lo_c, hi_c = (g.op("Unsqueeze", [v, ax]) for v, ax in ((lo, row), (hi, row), (lo, col), (hi, col)))
    frame_c = g.op("Unsqueeze", [frame, col])
    see_frames = g.op("And", [g.op("GreaterOrEqual", [frame_c, lo_r]), g.op("LessOrEqual", [frame_c, hi_r])])
    see_latents = g.op("And", [g.op("LessOrEqual", [lo_r, hi_c]), g.op("LessOrEqual", [lo_c, hi_r])])
    return g.op("Concat", [see_frames, see_latents], axis=1)


def build_resampler(resampler: PerceiverResampler, n_tokens: int) -> onnx.ModelProto:
    l, d = resampler.latents.shape
    g = GraphBuilder()
    shape = g.op("Shape", ["image_features"])
    B = g.op("Slice", [shape, g.const([0], "start", i64), g.const([1], "end", i64)])  # [1]
    T1 = g.op("Slice", [shape, g.const([1], "start", i64), g.const([2], "end", i64)])  # [1]
    # features + time_emb[:T] (one row per frame), all frames' grid cells in one sequence [B, T*n, d]
    time_emb = g.const(resampler.time_emb.detach().numpy()[:, None, :], "time_emb")  # [max_frames, 1, d]
    rows = g.op("Slice", [time_emb, g.const([0], "start", i64), T1, g.const([0], "ax", i64)])
    x = g.op("Reshape", [g.op("Add", ["image_features", rows]), g.const([0, -1, d], "shape", i64)])
    latents = g.op("Expand", [g.const(resampler.latents.detach().numpy()[None], "latents"),
                              g.op("Concat", [B, g.const([1, 1], "ones", i64)], axis=0)])  # [B, l, d]
    T = g.op("Squeeze", [T1, g.const([0], "ax", i64)])
    allowed = time_group_mask(g, T, resampler, n_tokens) if resampler.time_groups > 1 else None

    y = Residual(g, latents)
    for j, (attn, ff) in enumerate(resampler.layers):
        heads, dh = attn.heads, d // attn.heads
        h = y.norm(attn.norm_latents)
        q = to_heads(g, g.op("MatMul", [h, g.const(weight(attn.to_q), "w_q")]), heads, dh)
        # keys and values of [features ; latents] (where Flamingo departs from the Perceiver)
        kv_in = g.op("Concat", [layer_norm(g, x, attn.norm_media), h], axis=1)
        k, v = g.op("Split", [g.op("MatMul", [kv_in, g.const(weight(attn.to_kv), "w_kv")]),
                              g.const([d, d], "split", i64)], outputs=2, axis=-1)
        k_t = g.op("Transpose", [g.op("Reshape", [k, g.const([0, 0, heads, dh], "shape", i64)])], perm=[0, 2, 3, 1])
        scores = g.op("Mul", [g.op("MatMul", [q, k_t]), g.const(attn.scale, "scale")])  # [B, h, l, T*n + l]
        if allowed is not None:
            scores = g.op("Where", [allowed, scores, g.const(-np.inf, "minus_inf")])
        last = j == len(resampler.layers) - 1
        probs = g.op("Softmax", [scores], outputs=["latent_attention"] if last else 1, axis=-1)
        out = g.op("Transpose", [g.op("MatMul", [probs, to_heads(g, v, heads, dh)])], perm=[0, 2, 1, 3])
        out = g.op("Reshape", [out, g.const([0, 0, d], "shape", i64)])
        y.add(g.op("MatMul", [out, g.const(weight(attn.to_out), "w_out")]))
        # feed_forward: LayerNorm, Linear, GELU, Linear (no biases)
        h = gelu(g, g.op("MatMul", [y.norm(ff[0]), g.const(weight(ff[1]), "w_ff")]))
        y.add(g.op("MatMul", [h, g.const(weight(ff[3]), "w_ff_out")]))
    g.rename(y.norm(resampler.norm), "latents")

    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("image_features", f, ["batch", "frames", n_tokens, d])]
    outputs = [helper.make_tensor_value_info("latents", f, ["batch", l, d]),
               helper.make_tensor_value_info("latent_attention", f, ["batch", resampler.layers[-1][0].heads, l, "keys"])]
    return g.model("resampler", inputs, outputs)
