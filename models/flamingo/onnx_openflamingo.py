"""OpenFlamingo's language model as our two LM graphs (docs/MODEL_FORMAT.md), op by op.

The same contracts as onnx_lm.py (which writes them for our own FlamingoLM), for two layouts.
MPT (MosaicGPT):
  - positions are ALiBi, not RoPE: a bias slope_h * (key position - query position) added to the
    scores, built once with the causal mask and shared by every layer (MosaicGPT measures from the
    last key instead: a constant per query row, which the softmax does not see);
  - queries and keys get MPT's LayerNorms (q_ln, k_ln) over all heads at once, before the split;
  - no biases; LayerNorms have a weight only; the output is tied to wte.
GPT-NeoX:
  - query_key_value's columns are per head [q ; k ; v]: regrouped into q, k, v of all heads;
  - rotary embeddings on the first rotary_ndims of each head: as in onnx_lm.py, rot(q) is one more
    slice of the same MatMul (W R, b R), and the table has cos 1, sin 0 on the other dims;
  - attention and MLP read the same input (parallel residual); biases; the output is embed_out.
Both: the gated blocks have their own heads (OpenFlamingo: 8 x 64, whatever the LM's width), and the
per-image mask is media_index (mask.py), an input; OpenFlamingo's cumsum is not in the graph.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .onnx_lm import MASKED, MS, OPSET, GraphBuilder, new_kv_outputs
from .openflamingo import GatedCrossAttentionBlock, OpenFlamingo

i64 = np.int64


def rotate_half_matrix(head_dim: int, heads: int) -> np.ndarray:
    """R with (x @ R) == rotate_half(x) per head: [x1, x2] -> [-x2, x1]."""
    half = head_dim // 2
    r = np.zeros((head_dim, head_dim), np.float32)
    r[half:, :half] = -np.eye(half)
    r[:half, half:] = np.eye(half)
    return np.kron(np.eye(heads, dtype=np.float32), r)


def w(linear) -> np.ndarray:
    """nn.Linear [out, in] -> MatMul's [in, out]."""
    return linear.weight.detach().numpy().T.copy()


def layer_norm(g: GraphBuilder, x: str, ln) -> str:
    weight = ln.weight.detach().numpy()
    bias = ln.bias.detach().numpy() if getattr(ln, "bias", None) is not None else np.zeros_like(weight)
    return g.op("LayerNormalization", [x, g.const(weight, "ln_w"), g.const(bias, "ln_b")], axis=-1,
                epsilon=getattr(ln, "eps", 1e-5))


def gelu(g: GraphBuilder, x: str) -> str:
    return g.op("Gelu", [x], domain=MS)  # exact (erf) GELU


def build_xattn_kv(model: OpenFlamingo, tensors=None) -> onnx.ModelProto:
    """`tensors`: where the weights go as they are made (GraphBuilder; a ShardWriter streams them)."""
    cfg = model.cfg
    g = GraphBuilder(tensors)
    inner, H, dh = cfg.xattn_heads * cfg.xattn_dim_head, cfg.xattn_heads, cfg.xattn_dim_head
    x = g.op("Reshape", ["media_latents", g.const([0, -1, cfg.vision_width], "shape", i64)])  # [B, M*l, dv]
    outputs = []
    for i in cfg.xattn_layers:
        attn = model.lang_encoder.parts()[1][i].gated_cross_attn_layer.attn
        kv = g.op("MatMul", [x, g.const(w(attn.to_kv), "w_kv")])
        k, v = g.op("Split", [kv, g.const([inner, inner], "split", i64)], outputs=2, axis=-1)
        for name, t in ((f"xattn_key_{i}", k), (f"xattn_value_{i}", v)):
            r = g.op("Reshape", [t, g.const([0, 0, H, dh], "shape", i64)])
            g.op("Transpose", [r], outputs=[name], perm=[0, 2, 1, 3])
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", H, "media_latents", dh]))
    inputs = [helper.make_tensor_value_info("media_latents", TensorProto.FLOAT,
                                            ["batch", "media", cfg.n_latents, cfg.vision_width])]
    return unchecked_model(g, "xattn_kv", inputs, outputs)


def build_lm(model: OpenFlamingo, tensors=None) -> onnx.ModelProto:
    cfg = model.cfg
    wte, layers, norm_f, out_weight = model.lang_encoder.parts()
    d, H = cfg.d_model, cfg.n_heads
    dh = d // H
    g = GraphBuilder(tensors)

    s = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const(1, "one", i64)], axis=0)
    P = g.op("Gather", [g.op("Shape", ["past_key_0"]), g.const(2, "two", i64)], axis=0)
    T = g.op("Add", [P, s])
    qpos = g.op("Range", [P, T, g.const(1, "one", i64)])  # absolute positions of the new tokens [s]
    kpos = g.op("Range", [g.const(0, "zero", i64), T, g.const(1, "one", i64)])  # [T]

    # The causal bias [1, 1, s, T] (MPT: plus ALiBi, [1, H, s, T]), once for all layers.
    distance = g.op("Sub", [g.op("Unsqueeze", [kpos, g.const([0], "ax", i64)]),
                            g.op("Unsqueeze", [qpos, g.const([1], "ax", i64)])])  # key - query [s, T]
    sees = g.op("LessOrEqual", [distance, g.const(0, "zero", i64)])
    bias = g.op("Where", [sees, g.const(0.0, "zero_f"), g.const(MASKED, "masked")])
    rope = None
    if cfg.lm_arch == "mpt":
        slopes = layers[0].decoder_layer.attn.slopes.numpy().reshape(H, 1, 1)
        alibi = g.op("Mul", [g.op("Cast", [distance], to=TensorProto.FLOAT), g.const(slopes, "slopes")])  # [H, s, T]
        bias = g.op("Add", [alibi, bias])
    else:  # rotary angles [s, H*dh]: the inverse frequencies on each head's first rotary_ndims, 0 elsewhere
        inv_freq = layers[0].decoder_layer.attention.inv_freq.numpy()
        per_head = np.zeros(dh, np.float32)
        per_head[:cfg.rotary_ndims] = np.concatenate([inv_freq, inv_freq])
        pos = g.op("Unsqueeze", [g.op("Cast", [qpos], to=TensorProto.FLOAT), g.const([1], "ax", i64)])
        angles = g.op("Mul", [pos, g.const(np.tile(per_head, H), "inv_freq")])
        rope = g.op("Cos", [angles]), g.op("Sin", [angles])
    bias = g.op("Unsqueeze", [bias, g.const([0, 1] if rope else [0], "ax", i64)])

    # Flamingo's per-image mask from media_index, as in onnx_lm.py.
    xbias = has_media = ""
    if cfg.xattn_layers:
        n_media_latents = g.op("Gather", [g.op("Shape", [f"xattn_key_{cfg.xattn_layers[0]}"]), g.const(2, "two", i64)],
                               axis=0)
        latent_media = g.op("Div", [g.op("Range", [g.const(0, "zero", i64), n_media_latents, g.const(1, "one", i64)]),
                                    g.const(cfg.n_latents, "l", i64)])
        midx = g.op("Unsqueeze", ["media_index", g.const([2], "ax", i64)])  # [B, s, 1]
        allowed = g.op("Equal", [midx, latent_media])
        xbias = g.op("Where", [allowed, g.const(0.0, "zero_f"), g.const(MASKED, "masked")])
        xbias = g.op("Unsqueeze", [xbias, g.const([1], "ax", i64)])  # [B, 1, s, M*l]
        has_media = g.op("Cast", [g.op("GreaterOrEqual", [midx, g.const(0, "zero", i64)])], to=TensorProto.FLOAT)

    x = g.op("Gather", [g.const(wte.weight.detach().numpy(), "wte"), "input_ids"], axis=0)  # [B, s, d]
    present = []
    for i, layer in enumerate(layers):
        if layer.gated_cross_attn_layer is not None:
            x = gated_xattn_dense(g, x, layer.gated_cross_attn_layer, i, xbias, has_media, cfg.xattn_heads)
        attend = lambda q, k, v, i=i: g.op(  # noqa: E731
            "MultiHeadAttention", [q, g.rename(k, f"new_key_{i}"), g.rename(v, f"new_value_{i}"), "", "", bias,
                                   f"past_key_{i}", f"past_value_{i}"],
            outputs=[g.name("attn"), f"present_key_{i}", f"present_value_{i}"], domain=MS, num_heads=H)[0]
        if cfg.lm_arch == "mpt":
            x = mpt_layer(g, x, layer.decoder_layer, attend)
        else:
            x = neox_layer(g, x, layer.decoder_layer, attend, rope, cfg)
        present += [f"present_key_{i}", f"present_value_{i}"]

    start = g.op("Neg", ["logits_to_keep"])
    x = g.op("Slice", [x, start, g.const([np.iinfo(np.int64).max], "end", i64), g.const([1], "ax", i64)])
    x = layer_norm(g, x, norm_f)
    g.op("MatMul", [x, g.const(out_weight.detach().numpy().T.copy(), "lm_head")], outputs=["logits"])

    f = TensorProto.FLOAT
    xh, xdh = cfg.xattn_heads, cfg.xattn_dim_head
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("media_index", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("logits_to_keep", TensorProto.INT64, [1])]
    inputs += [helper.make_tensor_value_info(f"xattn_{kv}_{i}", f, ["batch", xh, "media_latents", xdh])
               for i in cfg.xattn_layers for kv in ("key", "value")]
    inputs += [helper.make_tensor_value_info(f"past_{kv}_{i}", f, ["batch", H, "past", dh])
               for i in range(cfg.n_layers) for kv in ("key", "value")]
    outputs = [helper.make_tensor_value_info("logits", f, ["batch", "kept", cfg.vocab_size])]
    outputs += [helper.make_tensor_value_info(name, f, ["batch", H, "total", dh]) for name in present]
    outputs += [helper.make_tensor_value_info(f"xattn_query_{i}", f, ["batch", "seq", xh * xdh]) for i in cfg.xattn_layers]
    outputs += new_kv_outputs(cfg.n_layers, H * dh)
    return unchecked_model(g, "lm", inputs, outputs)


def mpt_layer(g: GraphBuilder, x: str, block, attend) -> str:
    d = block.attn.Wqkv.weight.shape[1]
    qkv = g.op("MatMul", [layer_norm(g, x, block.ln_1), g.const(w(block.attn.Wqkv), "w_qkv")])
    q, k, v = g.op("Split", [qkv, g.const([d] * 3, "split", i64)], outputs=3, axis=-1)
    q, k = layer_norm(g, q, block.attn.q_ln), layer_norm(g, k, block.attn.k_ln)
    x = g.op("Add", [x, g.op("MatMul", [attend(q, k, v), g.const(w(block.attn.out_proj), "w_out")])])
    h = gelu(g, g.op("MatMul", [layer_norm(g, x, block.ln_2), g.const(w(block.mlp.mlp_up), "w_up")]))
    return g.op("Add", [x, g.op("MatMul", [h, g.const(w(block.mlp.mlp_down), "w_down")])])


def neox_layer(g: GraphBuilder, x: str, block, attend, rope, cfg) -> str:
    d, H, dh, r = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.rotary_ndims
    attn = block.attention
    # [d, H, (q k v), dh] -> q, k, v each [d, H*dh]; the bias likewise
    wqkv = w(attn.query_key_value).reshape(d, H, 3, dh)
    bqkv = attn.query_key_value.bias.detach().numpy().reshape(H, 3, dh)
    wq, wk, wv = (wqkv[:, :, j].reshape(d, d) for j in range(3))
    bq, bk, bv = (bqkv[:, j].reshape(d) for j in range(3))
    rot = np.zeros((dh, dh), np.float32)
    rot[:r, :r] = rotate_half_matrix(r, 1)  # rotate_half on the rotary dims, 0 on the others
    rot = np.kron(np.eye(H, dtype=np.float32), rot)
    weight = np.concatenate([wq, wk, wv, wq @ rot, wk @ rot], axis=1)
    bias = np.concatenate([bq, bk, bv, bq @ rot, bk @ rot])
    h = layer_norm(g, x, block.input_layernorm)
    proj = g.op("Add", [g.op("MatMul", [h, g.const(weight, "w_qkv")]), g.const(bias, "b_qkv")])
    q, k, v, q_rot, k_rot = g.op("Split", [proj, g.const([d] * 5, "split", i64)], outputs=5, axis=-1)
    cos, sin = rope
    q = g.op("Add", [g.op("Mul", [q, cos]), g.op("Mul", [q_rot, sin])])
    k = g.op("Add", [g.op("Mul", [k, cos]), g.op("Mul", [k_rot, sin])])
    a = linear_b(g, attend(q, k, v), attn.dense)
    mlp_in = x if block.parallel_residual else g.op("Add", [x, a])
    m = gelu(g, linear_b(g, layer_norm(g, mlp_in, block.post_attention_layernorm), block.mlp.dense_h_to_4h))
    m = linear_b(g, m, block.mlp.dense_4h_to_h)
    return g.op("Add", [g.op("Add", [x, a]), m]) if block.parallel_residual else g.op("Add", [mlp_in, m])


def linear_b(g: GraphBuilder, x: str, linear) -> str:
    return g.op("Add", [g.op("MatMul", [x, g.const(w(linear), "w")]), g.const(linear.bias.detach().numpy(), "b")])


def unchecked_model(g: GraphBuilder, name: str, inputs, outputs) -> onnx.ModelProto:
    """GraphBuilder.model without the checker, which cannot take a proto past 2 GB (MPT-1B's lm is
    5 GB) nor find the shards of a streamed one: external_data.ShardWriter.save checks the saved file."""
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                             producer_name="flamingo-web")


def gated_xattn_dense(g: GraphBuilder, y: str, block: GatedCrossAttentionBlock, i: int, xbias: str, has_media: str,
                      heads: int) -> str:
    """y += tanh(alpha) * xattn(y, media); y += tanh(beta) * ffw(y), the gates folded into the weights."""
    alpha, beta = float(block.attn_gate.tanh()), float(block.ff_gate.tanh())
    xa = block.attn
    q = g.op("MatMul", [layer_norm(g, y, xa.norm), g.const(w(xa.to_q), "w_q")], outputs=[f"xattn_query_{i}"])
    # MHA's default scale, 1/sqrt(head_dim), is OpenFlamingo's dim_head ** -0.5
    out = g.op("MultiHeadAttention", [q, f"xattn_key_{i}", f"xattn_value_{i}", "", "", xbias], domain=MS,
               num_heads=heads)
    out = g.op("Mul", [out, has_media])  # text before any image: exactly 0
    y = g.op("Add", [y, g.op("MatMul", [out, g.const(alpha * w(xa.to_out), "w_out")])])
    ff = block.ff
    h = gelu(g, g.op("MatMul", [layer_norm(g, y, ff[0]), g.const(w(ff[1]), "w_ff")]))
    return g.op("Add", [y, g.op("MatMul", [h, g.const(beta * w(ff[3]), "w_ff_out")])])


def gate_values(model: OpenFlamingo) -> list[dict]:
    out = []
    for i in model.cfg.xattn_layers:
        block = model.lang_encoder.parts()[1][i].gated_cross_attn_layer
        out.append({"layer": i, "attn": float(block.attn_gate.tanh()), "ff": float(block.ff_gate.tanh())})
    return out
