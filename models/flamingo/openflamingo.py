"""OpenFlamingo's forward pass (Awadalla et al. 2023), written from the paper and its documented
behaviour, with its parameter names: a state dict saved by OpenFlamingo loads into `OpenFlamingo`
as it is. This is the reference the converter (convert_openflamingo.py) is tested against; nothing
here is exported directly.

    vision_encoder  open_clip's CLIP ViT (conv1, class_embedding, positional_embedding, ln_pre,
                    transformer.resblocks.N, ln_post, proj); OpenFlamingo takes the patch tokens of
                    the last block: no CLS token, before ln_post (open_clip < 2.23), no proj
    perceiver       PerceiverResampler: 64 latents, 6 layers, 8 heads x 64, no time embeddings
    lang_encoder    MPT (MosaicGPT layout, OpenFlamingo-3B and -9B): transformer.wte,
                    transformer.blocks.N.{ln_1, attn.{Wqkv, q_ln, k_ln, out_proj}, ln_2,
                    mlp.{mlp_up, mlp_down}}, transformer.norm_f; no biases, ALiBi, output tied to wte.
                    Or GPT-NeoX (OpenFlamingo-4B's RedPajama-INCITE): gpt_neox.embed_in,
                    gpt_neox.layers.N.{input_layernorm, attention.{query_key_value, dense},
                    post_attention_layernorm, mlp.{dense_h_to_4h, dense_4h_to_h}},
                    gpt_neox.final_layer_norm, embed_out (untied); biases, rotary embeddings on
                    the first rotary_pct of each head, attention and MLP side by side (parallel residual).
                    Each decoder layer is wrapped as N.{gated_cross_attn_layer, decoder_layer}, the
                    gated block present when (N + 1) % cross_attn_every_n_layers == 0.

The per-image mask is computed as OpenFlamingo does, inside the model: media_locations =
(input_ids == <image>), text_time = cumsum(media_locations) (the boolean cumsum ONNX Runtime rejects,
open_flamingo#256), and a token attends to the latents of image text_time only; text_time == 0
(before any image) gets no cross-attention at all. Einsum letters as in model.py.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

# OpenAI CLIP's normalisation (open_clip's OPENAI_DATASET_MEAN / _STD)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class OpenFlamingoConfig:
    # CLIP ViT (OpenFlamingo: ViT-L/14 at 224 px, OpenAI weights, QuickGELU)
    image_size: int = 224
    patch_size: int = 14
    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    vision_mlp_ratio: float = 4.0
    quick_gelu: bool = True
    vision_embed_dim: int = 768  # proj's output (unused: OpenFlamingo takes the tokens before it)
    # Perceiver Resampler (OpenFlamingo's defaults)
    n_latents: int = 64
    perceiver_depth: int = 6
    perceiver_heads: int = 8
    perceiver_dim_head: int = 64
    # the language model: "mpt" (MPT-1B's numbers below) or "gpt_neox"
    lm_arch: str = "mpt"
    vocab_size: int = 50280  # rows of wte after OpenFlamingo added <|endofchunk|>, <image>, <PAD>
    d_model: int = 2048
    n_layers: int = 24
    n_heads: int = 16
    mlp_ratio: int = 4
    alibi_bias_max: int = 8
    max_seq_len: int = 2048
    # GPT-NeoX only
    rotary_pct: float = 0.25
    rotary_base: float = 10000.0
    parallel_residual: bool = True
    layer_norm_eps: float = 1e-5
    # gated xattn-dense (OpenFlamingo: dim_head 64, 8 heads, ff_mult 4)
    cross_attn_every_n_layers: int = 1
    xattn_heads: int = 8
    xattn_dim_head: int = 64
    xattn_ff_mult: int = 4

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def rotary_ndims(self) -> int:
        return int(self.head_dim * self.rotary_pct)

    @property
    def xattn_layers(self) -> list[int]:
        return [i for i in range(self.n_layers) if (i + 1) % self.cross_attn_every_n_layers == 0]

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- CLIP ViT (open_clip)

class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class CLIPAttention(nn.Module):
    """nn.MultiheadAttention's parameters (in_proj_weight/bias, out_proj), written out."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.randn(3 * d, d) * d ** -0.5)
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, x):  # [b, n, d]
        b, n, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        attn = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(b, n, d))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d: int, heads: int, mlp_ratio: float, quick_gelu: bool):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CLIPAttention(d, heads)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(d, hidden))
        self.mlp.add_module("gelu", QuickGELU() if quick_gelu else nn.GELU())
        self.mlp.add_module("c_proj", nn.Linear(hidden, d))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, d: int, layers: int, heads: int, mlp_ratio: float, quick_gelu: bool):
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(d, heads, mlp_ratio, quick_gelu) for _ in range(layers))

    def forward(self, x):
        for block in self.resblocks:
            x = block(x)
        return x


class VisionTransformer(nn.Module):
    """open_clip's `visual`. forward -> (pooled, tokens); OpenFlamingo uses tokens ([1] of the pair)."""

    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        d = cfg.vision_width
        self.conv1 = nn.Conv2d(3, d, cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(d) * d ** -0.5)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.grid ** 2 + 1, d) * d ** -0.5)
        self.ln_pre = nn.LayerNorm(d)
        self.transformer = Transformer(d, cfg.vision_layers, cfg.vision_heads, cfg.vision_mlp_ratio, cfg.quick_gelu)
        self.ln_post = nn.LayerNorm(d)
        self.proj = nn.Parameter(torch.randn(d, cfg.vision_embed_dim) * d ** -0.5)

    def forward(self, pixel_values):  # [N, 3, S, S]
        x = self.conv1(pixel_values).flatten(2).transpose(1, 2)  # [N, grid^2, d]
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x = self.transformer(x)
        pooled, tokens = x[:, 0], x[:, 1:]
        # open_clip before 2.23: ln_post and proj act on the pooled CLS token only
        return self.ln_post(pooled) @ self.proj, tokens


# ----------------------------------------------------------------------------- Perceiver Resampler

def feed_forward(d: int, mult: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d * mult, bias=False), nn.GELU(), nn.Linear(d * mult, d, bias=False))


class PerceiverAttention(nn.Module):
    def __init__(self, d: int, dim_head: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, dim_head ** -0.5
        inner = dim_head * heads
        self.norm_media, self.norm_latents = nn.LayerNorm(d), nn.LayerNorm(d)
        self.to_q = nn.Linear(d, inner, bias=False)
        self.to_kv = nn.Linear(d, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, d, bias=False)
        self.attention = None  # the last probabilities [b, h, T, l, n + l] (the resampler graph exports them)

    def forward(self, x, latents):  # x [b, T, n, d], latents [b, T, l, d]
        x, latents = self.norm_media(x), self.norm_latents(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([x, latents], dim=-2)).chunk(2, dim=-1)  # keys: [features ; latents]
        q, k, v = (t.reshape(*t.shape[:-1], self.heads, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v))  # b h T n dh
        attn = (q * self.scale @ k.transpose(-1, -2)).softmax(dim=-1)
        self.attention = attn
        return self.to_out((attn @ v).permute(0, 2, 3, 1, 4).flatten(-2))


class PerceiverResampler(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        d = cfg.vision_width
        self.latents = nn.Parameter(torch.randn(cfg.n_latents, d))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(d, cfg.perceiver_dim_head, cfg.perceiver_heads), feed_forward(d, 4)])
            for _ in range(cfg.perceiver_depth))
        self.norm = nn.LayerNorm(d)

    def forward(self, x):  # [b, T media, F frames, v, d] -> [b, T, l, d]
        b, T = x.shape[:2]
        x = x.flatten(2, 3)  # frames' tokens side by side; OpenFlamingo has no frame or time embeddings
        latents = self.latents.expand(b, T, -1, -1)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


# ----------------------------------------------------------------------------- gated xattn-dense

class MaskedCrossAttention(nn.Module):
    def __init__(self, d: int, d_visual: int, dim_head: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, dim_head ** -0.5
        inner = dim_head * heads
        self.norm = nn.LayerNorm(d)
        self.to_q = nn.Linear(d, inner, bias=False)
        self.to_kv = nn.Linear(d_visual, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, d, bias=False)

    def forward(self, y, media, media_locations):
        # y [b, s, d]; media [b, T, l, dv]; media_locations [b, s] bool (the <image> tokens)
        b, T, l = media.shape[:3]
        q = self.to_q(self.norm(y))
        k, v = self.to_kv(media.flatten(1, 2)).chunk(2, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        sim = q * self.scale @ k.transpose(-1, -2)  # [b, h, s, T*l]
        text_time = media_locations.cumsum(dim=-1)  # 1-based: the last image at or before each token
        media_time = torch.arange(T, device=y.device).repeat_interleave(l) + 1
        only_last_image = text_time[:, None, :, None] == media_time[None, None, None, :]
        sim = sim.masked_fill(~only_last_image, -torch.finfo(sim.dtype).max)
        attn = sim.softmax(dim=-1)
        attn = attn.masked_fill((text_time == 0)[:, None, :, None], 0.0)  # text before any image: nothing
        return self.to_out((attn @ v).transpose(1, 2).flatten(-2))


class GatedCrossAttentionBlock(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        self.attn = MaskedCrossAttention(cfg.d_model, cfg.vision_width, cfg.xattn_dim_head, cfg.xattn_heads)
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.ff = feed_forward(cfg.d_model, cfg.xattn_ff_mult)
        self.ff_gate = nn.Parameter(torch.zeros(1))

    def forward(self, y, media, media_locations):
        y = self.attn(y, media, media_locations) * self.attn_gate.tanh() + y
        return self.ff(y) * self.ff_gate.tanh() + y


# ----------------------------------------------------------------------------- MPT (MosaicGPT)

class LayerNormNoBias(nn.Module):
    """MPT's LayerNorm with no_bias: a weight, no bias."""

    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


def alibi_slopes(heads: int, alibi_bias_max: int) -> torch.Tensor:
    """MosaicGPT's slopes: 2^(-alibi_bias_max * h / heads), h = 1 .. heads."""
    return 2.0 ** (-alibi_bias_max * torch.arange(1, heads + 1, dtype=torch.float32) / heads)


class MPTAttention(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        d = cfg.d_model
        self.heads = cfg.n_heads
        self.Wqkv = nn.Linear(d, 3 * d, bias=False)
        self.q_ln, self.k_ln = LayerNormNoBias(d), LayerNormNoBias(d)  # attn_qk_ln: over all heads at once
        self.out_proj = nn.Linear(d, d, bias=False)
        self.register_buffer("slopes", alibi_slopes(cfg.n_heads, cfg.alibi_bias_max), persistent=False)

    def forward(self, x):  # the whole sequence, no cache: the reference recomputes every step
        b, s, d = x.shape
        q, k, v = self.Wqkv(x).chunk(3, dim=-1)
        q, k = self.q_ln(q), self.k_ln(k)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) * (d // self.heads) ** -0.5
        # ALiBi as MosaicGPT adds it: slope * (key position - last position), the same for every query
        scores = scores + self.slopes[:, None, None] * torch.arange(1 - s, 1, device=x.device).float()
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()
        attn = scores.masked_fill(~causal, -torch.finfo(scores.dtype).max).softmax(dim=-1)
        return self.out_proj((attn @ v).transpose(1, 2).reshape(b, s, d))


class MPTMLP(nn.Module):
    def __init__(self, d: int, ratio: int):
        super().__init__()
        self.mlp_up = nn.Linear(d, ratio * d, bias=False)
        self.mlp_down = nn.Linear(ratio * d, d, bias=False)

    def forward(self, x):
        return self.mlp_down(F.gelu(self.mlp_up(x)))


class MPTBlock(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        self.ln_1, self.ln_2 = LayerNormNoBias(cfg.d_model), LayerNormNoBias(cfg.d_model)
        self.attn = MPTAttention(cfg)
        self.mlp = MPTMLP(cfg.d_model, cfg.mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


# ----------------------------------------------------------------------------- GPT-NeoX

def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class NeoXAttention(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        d = cfg.d_model
        self.heads, self.rotary_ndims = cfg.n_heads, cfg.rotary_ndims
        self.query_key_value = nn.Linear(d, 3 * d)  # per head [q ; k ; v], heads one after another
        self.dense = nn.Linear(d, d)
        inv_freq = 1.0 / cfg.rotary_base ** (torch.arange(0, self.rotary_ndims, 2).float() / self.rotary_ndims)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x):
        b, s, d = x.shape
        qkv = self.query_key_value(x).view(b, s, self.heads, -1).transpose(1, 2)  # b h s 3dh
        q, k, v = qkv.chunk(3, dim=-1)
        freqs = torch.arange(s, device=x.device).float()[:, None] * self.inv_freq[None, :]
        cos, sin = torch.cat([freqs, freqs], -1).cos(), torch.cat([freqs, freqs], -1).sin()
        r = self.rotary_ndims  # rotary on the first r dims of each head only (partial rotary)
        q = torch.cat([q[..., :r] * cos + rotate_half(q[..., :r]) * sin, q[..., r:]], dim=-1)
        k = torch.cat([k[..., :r] * cos + rotate_half(k[..., :r]) * sin, k[..., r:]], dim=-1)
        scores = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        causal = torch.ones(s, s, dtype=torch.bool, device=x.device).tril()
        attn = scores.masked_fill(~causal, -torch.finfo(scores.dtype).max).softmax(dim=-1)
        return self.dense((attn @ v).transpose(1, 2).reshape(b, s, d))


class NeoXMLP(nn.Module):
    def __init__(self, d: int, ratio: int):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(d, ratio * d)
        self.dense_4h_to_h = nn.Linear(ratio * d, d)

    def forward(self, x):
        return self.dense_4h_to_h(F.gelu(self.dense_h_to_4h(x)))


class NeoXLayer(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        self.parallel_residual = cfg.parallel_residual
        self.input_layernorm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.post_attention_layernorm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.attention = NeoXAttention(cfg)
        self.mlp = NeoXMLP(cfg.d_model, cfg.mlp_ratio)

    def forward(self, x):
        a = self.attention(self.input_layernorm(x))
        if self.parallel_residual:  # x + attn(ln1(x)) + mlp(ln2(x))
            return x + a + self.mlp(self.post_attention_layernorm(x))
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x))


class FlamingoLayer(nn.Module):
    """OpenFlamingo's wrapper: the gated block (if any) runs before the frozen decoder layer."""

    def __init__(self, cfg: OpenFlamingoConfig, gated: bool):
        super().__init__()
        self.gated_cross_attn_layer = GatedCrossAttentionBlock(cfg) if gated else None
        self.decoder_layer = MPTBlock(cfg) if cfg.lm_arch == "mpt" else NeoXLayer(cfg)

    def forward(self, x, media, media_locations):
        if self.gated_cross_attn_layer is not None:
            x = self.gated_cross_attn_layer(x, media, media_locations)
        return self.decoder_layer(x)


class MPTTransformer(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(FlamingoLayer(cfg, i in cfg.xattn_layers) for i in range(cfg.n_layers))
        self.norm_f = LayerNormNoBias(cfg.d_model)


class NeoXModel(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        self.embed_in = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(FlamingoLayer(cfg, i in cfg.xattn_layers) for i in range(cfg.n_layers))
        self.final_layer_norm = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)


class LangEncoder(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig):
        super().__init__()
        if cfg.lm_arch == "mpt":
            self.transformer = MPTTransformer(cfg)
        else:
            self.gpt_neox = NeoXModel(cfg)
            self.embed_out = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)

    def parts(self):
        """(input embedding, the wrapped decoder layers, final norm, output weight) of either layout."""
        if hasattr(self, "transformer"):
            t = self.transformer
            return t.wte, t.blocks, t.norm_f, t.wte.weight  # output tied to the input embedding
        n = self.gpt_neox
        return n.embed_in, n.layers, n.final_layer_norm, self.embed_out.weight

    def forward(self, input_ids, media, media_locations):
        wte, layers, norm, out = self.parts()
        x = wte(input_ids)
        for layer in layers:
            x = layer(x, media, media_locations)
        return F.linear(norm(x), out)


class OpenFlamingo(nn.Module):
    def __init__(self, cfg: OpenFlamingoConfig, media_token_id: int):
        super().__init__()
        self.cfg, self.media_token_id = cfg, media_token_id
        self.vision_encoder = VisionTransformer(cfg)
        self.perceiver = PerceiverResampler(cfg)
        self.lang_encoder = LangEncoder(cfg)

    def encode_vision_x(self, vision_x):
        """vision_x [b, T images, F frames, 3, S, S] -> latents [b, T, l, d_vision]."""
        b, T, Fr = vision_x.shape[:3]
        tokens = self.vision_encoder(vision_x.flatten(0, 2))[1]  # patch tokens, pre-ln_post
        return self.perceiver(tokens.unflatten(0, (b, T, Fr)))

    def forward(self, vision_x, lang_x):
        """Logits [b, s, vocab] of lang_x [b, s] given the images of vision_x, in order."""
        return self.lang_encoder(lang_x, self.encode_vision_x(vision_x), lang_x == self.media_token_id)


# the embeddings OpenFlamingo trains (the rows of its added tokens) and so saves in its checkpoint
TRAINED_EMBEDDINGS = ("lang_encoder.transformer.wte.weight", "lang_encoder.gpt_neox.embed_in.weight",
                      "lang_encoder.embed_out.weight")


def split_state_dict(full: dict) -> tuple[dict, dict, dict]:
    """A whole OpenFlamingo state dict -> what a user actually has: (the released checkpoint: perceiver,
    gated blocks and embeddings; open_clip's model file: `visual.*`; the LM's own file: `transformer.*`
    or `gpt_neox.*`, `embed_out.*`)."""
    checkpoint, clip, lm = {}, {}, {}
    for key, value in full.items():
        if key.startswith("perceiver.") or ".gated_cross_attn_layer." in key or key in TRAINED_EMBEDDINGS:
            checkpoint[key] = value
        if key.startswith("vision_encoder."):
            clip["visual." + key[len("vision_encoder."):]] = value
        elif key.startswith("lang_encoder.") and ".gated_cross_attn_layer." not in key:
            lm[key[len("lang_encoder."):].replace(".decoder_layer.", ".")] = value
    return checkpoint, clip, lm

