"""The reference Flamingo model, small enough to train on two CPU cores.

Alayrac et al. 2022 (Flamingo), with OpenFlamingo's conventions where the paper is silent.
Einsum letters: b batch, t time (frames), n visual tokens, m media (images), l latents,
s text sequence, h heads, d dimension.

    vision encoder (frozen) -> PerceiverResampler -> latents  (one set per image or clip)
    LM blocks (frozen), each preceded by a GatedXAttnDenseBlock that looks at the latents of
    the last image before each token (media_index, computed outside the model: mask.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class FlamingoConfig:
    # vision
    image_size: int = 64
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.25, 0.25, 0.25)
    background: tuple = (255, 255, 255)
    vision_channels: tuple = (32, 64, 128, 128)  # four stride-2 stages: 64 px -> 4x4 grid
    d_vision: int = 128
    vision_ibn: int = 0  # the first n stride-2 stages normalise half their channels per image (IBN, below); 0: all BatchNorm
    vision_stitch: bool = False  # a last linear layer mapping the tokens into another encoder's space (train.stitch)
    max_frames: int = 8
    # Perceiver Resampler
    n_latents: int = 8
    resampler_layers: int = 2
    resampler_kind: str = "perceiver"  # ablation: "mlp"
    resampler_heads: int = 4
    # >1: latents split into groups, each attending to one stretch of a clip's frames (not in the
    # paper; see PerceiverResampler). 1 is the paper's resampler.
    resampler_time_groups: int = 1
    # language model
    vocab_size: int = 1024
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    context_length: int = 512
    rope_base: float = 10000.0
    # gated xattn-dense: a block before LM layer i when (i + 1) % xattn_every == 0 (OpenFlamingo)
    xattn_every: int = 1
    xattn_ff_mult: int = 2
    use_tanh_gating: bool = True  # ablation switch: False -> gates are plain 1 (no gating)

    @property
    def grid(self) -> int:
        return self.image_size // 2 ** len(self.vision_channels)

    @property
    def n_vision_tokens(self) -> int:
        return self.grid * self.grid

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def xattn_layers(self) -> list[int]:
        return [i for i in range(self.n_layers) if (i + 1) % self.xattn_every == 0]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FlamingoConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("mean", "std", "background", "vision_channels"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


# ----------------------------------------------------------------------------- vision

class IBN(nn.Module):
    """IBN-a (Pan et al., "Two at Once: Enhancing Learning and Generalization Capacities via IBN-Net", ECCV 2018):
    half the channels instance-normalised, the other half batch-normalised. Instance normalisation in the shallow
    layers removes each image's own contrast and colour statistics (much of what an art style changes) and keeps
    the shapes; the batch-normalised half keeps what tells concepts apart."""

    def __init__(self, c: int):
        super().__init__()
        self.half = c // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(c - self.half)

    def forward(self, x):
        return torch.cat([self.IN(x[:, :self.half]), self.BN(x[:, self.half:])], 1)


def ibn_state_from_batchnorm(state: dict, cfg: "FlamingoConfig") -> dict:
    """A plain encoder's weights (every norm a BatchNorm) for the same CNN with IBN-a in its first
    `cfg.vision_ibn` stages: each IBN's instance-normalised half takes the BatchNorm's affine rows of its
    channels, its batch-normalised half the rest with their running statistics. So a trained encoder can
    continue with IBN-a; only the first half's normalisation changes (per image instead of per dataset)."""
    out = dict(state)
    for stage in range(cfg.vision_ibn):
        norm = f"convs.{6 * stage + 1}."  # each stage: conv, norm, relu, conv, norm, relu
        half = state[norm + "weight"].shape[0] // 2
        for name in ("weight", "bias"):
            out[norm + "IN." + name] = state[norm + name][:half].clone()
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[norm + "BN." + name] = state[norm + name][half:].clone()
        out[norm + "BN.num_batches_tracked"] = state[norm + "num_batches_tracked"].clone()
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            del out[norm + name]
    return out


class VisionEncoder(nn.Module):
    """A small CNN: image -> grid of visual tokens. Pretrained contrastively, then frozen.

    Unlike NFNet/CLIP features, a tiny CNN's grid cells carry almost no notion of where they are,
    and the Resampler has no spatial encodings (as in the paper), so a learned position embedding
    is added here: scene questions ask what is left or right.
    """

    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        layers, c_in = [], 3
        for stage, c in enumerate(cfg.vision_channels):
            first_norm = IBN(c) if stage < cfg.vision_ibn else nn.BatchNorm2d(c)
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), first_norm, nn.ReLU(),
                       nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, cfg.d_vision)
        self.pos_emb = nn.Parameter(torch.randn(cfg.n_vision_tokens, cfg.d_vision) * 0.02)
        self.norm = nn.LayerNorm(cfg.d_vision)
        self.stitch = nn.Linear(cfg.d_vision, cfg.d_vision) if cfg.vision_stitch else None

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # [b, 3, H, W] -> [b, n, d]
        x = self.convs(pixel_values)
        x = x.flatten(2).transpose(1, 2)
        x = self.norm(self.proj(x) + self.pos_emb)
        return x if self.stitch is None else self.stitch(x)


# ----------------------------------------------------------------------------- resampler

def feed_forward(d: int, mult: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d * mult, bias=False), nn.GELU(),
                         nn.Linear(d * mult, d, bias=False))


class PerceiverAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (d // heads) ** -0.5
        self.norm_media, self.norm_latents = nn.LayerNorm(d), nn.LayerNorm(d)
        self.to_q = nn.Linear(d, d, bias=False)
        self.to_kv = nn.Linear(d, 2 * d, bias=False)
        self.to_out = nn.Linear(d, d, bias=False)
        self.keep_attention = False  # keep the probabilities (tools/parity.py: the reference of the app's pictures)
        self.attention = None

    def forward(self, x: torch.Tensor, latents: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        # x [b, n, d] visual features (all frames flattened); latents [b, l, d];
        # allowed [l, n + l] bool: which keys each latent may attend to (None: all)
        x, latents = self.norm_media(x), self.norm_latents(latents)
        q = self.to_q(latents)
        # Where Flamingo departs from the Perceiver: keys and values are [features ; latents].
        k, v = self.to_kv(torch.cat([x, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (split_heads(t, self.heads) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) * self.scale
        if allowed is not None:
            scores = scores.masked_fill(~allowed, float("-inf"))
        attn = scores.softmax(dim=-1)
        if self.keep_attention:
            self.attention = attn  # [b, h, l, n + l]
        return self.to_out(merge_heads(attn @ v))


class PerceiverResampler(nn.Module):
    """Any number of frames x visual tokens -> a fixed number of latents.

    With time_groups = G > 1 (not in the paper) the latents form G groups and group g attends only
    to the g-th of G consecutive stretches of the frames (every frame, for a single image): G
    resamplers in one, sharing weights but not latents. The paper's resampler pools all frames at
    once: a latent's output is then a weighted sum over frames, in which where the object is and
    when are summed apart, and at this scale the direction of a motion was lost
    (probes.motion). Groups keep 'early' and 'late' in different latents; the number of
    latents stays fixed.
    """

    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        d = cfg.d_vision
        self.time_groups = cfg.resampler_time_groups
        self.latents = nn.Parameter(torch.randn(cfg.n_latents, d) * 0.02)
        self.time_emb = nn.Parameter(torch.zeros(cfg.max_frames, d))  # learned, one per frame
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(d, cfg.resampler_heads), feed_forward(d, 4)])
            for _ in range(cfg.resampler_layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [b, t, n, d] -> [b, l, d]
        b, t, n, d = features.shape
        x = (features + self.time_emb[:t].unsqueeze(1)).reshape(b, t * n, d)
        latents = self.latents.unsqueeze(0).expand(b, -1, -1)
        allowed = self.allowed(t, n) if self.time_groups > 1 else None
        for attn, ff in self.layers:
            latents = attn(x, latents, allowed) + latents
            latents = ff(latents) + latents
        return self.norm(latents)

    def allowed(self, t: int, n: int) -> torch.Tensor:
        """[l, t*n + l] bool. Group g sees frames lo_g .. hi_g, with lo_g = floor(g t / G) and
        hi_g = max(lo_g, floor((g + 1) t / G) - 1): a partition of the frames when t >= G; groups
        that would get none share a frame. A latent sees the latents whose frames overlap its own,
        so all latents see each other for a single image, as in the paper. Tensor arithmetic on t,
        so the exported graph keeps a dynamic number of frames."""
        G, l = self.time_groups, self.latents.shape[0]
        g = torch.arange(l, device=self.latents.device) * G // l  # the group of each latent
        lo = g * t // G
        hi = torch.maximum(lo, (g + 1) * t // G - 1)
        frame = torch.arange(t * n, device=self.latents.device) // n
        see_frames = (frame[None, :] >= lo[:, None]) & (frame[None, :] <= hi[:, None])
        see_latents = (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])
        return torch.cat([see_frames, see_latents], dim=1)


class MLPResampler(nn.Module):
    """Ablation (paper, Table 3 'MLP'): per-token MLP, frames averaged, then a learned linear map
    from the visual tokens to n_latents outputs. Same interface as PerceiverResampler."""

    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        d = cfg.d_vision
        self.time_emb = nn.Parameter(torch.zeros(cfg.max_frames, d))
        self.mlp = feed_forward(d, 4)
        self.to_latents = nn.Linear(cfg.n_vision_tokens, cfg.n_latents)
        self.norm = nn.LayerNorm(d)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [b, t, n, d] -> [b, l, d]
        x = features + self.time_emb[: features.shape[1]].unsqueeze(1)
        x = (x + self.mlp(x)).mean(dim=1)  # [b, n, d]
        return self.norm(self.to_latents(x.transpose(1, 2)).transpose(1, 2))


# ----------------------------------------------------------------------------- gated xattn-dense

class MaskedCrossAttention(nn.Module):
    """Text tokens attend to the latents of one image each: the one media_index names."""

    def __init__(self, d_model: int, d_vision: int, heads: int, n_latents: int):
        super().__init__()
        self.heads, self.n_latents = heads, n_latents
        self.scale = (d_model // heads) ** -0.5
        self.norm = nn.LayerNorm(d_model)
        self.to_q = nn.Linear(d_model, d_model, bias=False)
        self.to_kv = nn.Linear(d_vision, 2 * d_model, bias=False)
        self.to_out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, y: torch.Tensor, media: torch.Tensor, media_index: torch.Tensor) -> torch.Tensor:
        # y [b, s, d]; media [b, m, l, dv]; media_index [b, s] int64 (-1: no image yet)
        b, m, l, dv = media.shape
        q = split_heads(self.to_q(self.norm(y)), self.heads)
        k, v = (split_heads(t, self.heads) for t in self.to_kv(media.reshape(b, m * l, dv)).chunk(2, dim=-1))
        scores = q @ k.transpose(-1, -2) * self.scale  # [b, h, s, m*l]
        latent_media = torch.div(torch.arange(m * l, device=y.device), l, rounding_mode="floor")
        allowed = media_index[:, None, :, None] == latent_media[None, None, None, :]
        # A large negative rather than -inf: rows with nothing allowed must not become NaN.
        attn = scores.masked_fill(~allowed, -1e9).softmax(dim=-1)
        out = merge_heads(attn @ v)
        has_media = (media_index >= 0).unsqueeze(-1).to(out.dtype)  # text before any image: exactly 0
        return self.to_out(out * has_media)


class GatedXAttnDenseBlock(nn.Module):
    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        self.xattn = MaskedCrossAttention(cfg.d_model, cfg.d_vision, cfg.n_heads, cfg.n_latents)
        self.ff = feed_forward(cfg.d_model, cfg.xattn_ff_mult)
        self.use_tanh_gating = cfg.use_tanh_gating
        self.attn_gate = nn.Parameter(torch.zeros(1))  # alpha: 0 at init, so the LM is unchanged
        self.ff_gate = nn.Parameter(torch.zeros(1))  # beta

    def gates(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.use_tanh_gating:  # ablation: ungated residual
            return torch.ones_like(self.attn_gate), torch.ones_like(self.ff_gate)
        return self.attn_gate.tanh(), self.ff_gate.tanh()

    def forward(self, y, media, media_index):
        alpha, beta = self.gates()
        y = y + alpha * self.xattn(y, media, media_index)
        y = y + beta * self.ff(y)
        return y


# ----------------------------------------------------------------------------- language model

def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:  # [b, s, h*dh] -> [b, h, s, dh]
    b, s, d = x.shape
    return x.reshape(b, s, heads, d // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:  # [b, h, s, dh] -> [b, s, h*dh]
    b, h, s, dh = x.shape
    return x.transpose(1, 2).reshape(b, s, h * dh)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        self.heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.keep_attention = False  # training only: keep the probabilities (flamingo.matching)
        self.attention = None

    def forward(self, x, cos, sin, past_k, past_v):
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(x).chunk(3, dim=-1))
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin  # RoPE
        k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        s, total = q.shape[2], k.shape[2]
        # query i sits at absolute position (total - s + i) and sees keys j <= that position
        qpos = torch.arange(s, device=x.device)[:, None] + (total - s)
        causal = torch.arange(total, device=x.device)[None, :] <= qpos
        scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        attn = scores.masked_fill(~causal, -1e9).softmax(dim=-1)
        if self.keep_attention:
            self.attention = attn
        return self.out(merge_heads(attn @ v)), k, v


class Block(nn.Module):
    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(),
                                 nn.Linear(4 * cfg.d_model, cfg.d_model))

    def forward(self, x, cos, sin, past_k, past_v):
        a, k, v = self.attn(self.ln1(x), cos, sin, past_k, past_v)
        x = x + a
        return x + self.mlp(self.ln2(x)), k, v


class LanguageModel(nn.Module):
    """Decoder-only transformer with RoPE. Pretrained on text alone, then frozen."""

    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        inv_freq = 1.0 / cfg.rope_base ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        # < 1: positions squeezed into the trained range (position interpolation, Chen et al. 2023); a probe only
        # (probes.lm --interpolate): the exported graphs keep 1
        self.position_scale = 1.0
        nn.init.normal_(self.wte.weight, std=0.02)

    def rope(self, start, length, device):
        pos = torch.arange(length, device=device).float() + start
        if self.position_scale != 1.0:  # so that the exported graphs carry no extra multiply
            pos = pos * self.position_scale
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos()[None, None], emb.sin()[None, None]

    def empty_cache(self, batch: int, device=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        z = torch.zeros(batch, self.cfg.n_heads, 0, self.cfg.head_dim, device=device)
        return [(z, z) for _ in self.blocks]


class FlamingoLM(nn.Module):
    """The frozen LM with gated xattn-dense blocks interleaved (None where a layer has none)."""

    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        self.cfg = cfg
        self.lm = LanguageModel(cfg)
        self.xattn = nn.ModuleList(GatedXAttnDenseBlock(cfg) if i in cfg.xattn_layers else nn.Identity()
                                   for i in range(cfg.n_layers))

    def forward(self, input_ids, media_index=None, media=None, past=None, use_media=True):
        """input_ids, media_index [b, s]; media [b, m, l, dv]; past: list of (k, v) per layer.

        Returns logits [b, s, vocab] and the present (k, v) per layer.
        With use_media=False this is exactly the plain language model (stage 2 training)."""
        b, s = input_ids.shape
        past = past if past is not None else self.lm.empty_cache(b, input_ids.device)
        cos, sin = self.lm.rope(past[0][0].shape[2], s, input_ids.device)
        x = self.lm.wte(input_ids)
        present = []
        for block, gated, (pk, pv) in zip(self.lm.blocks, self.xattn, past):
            if use_media and isinstance(gated, GatedXAttnDenseBlock):
                x = gated(x, media, media_index)
            x, k, v = block(x, cos, sin, pk, pv)
            present.append((k, v))
        return self.lm.lm_head(self.lm.ln_f(x)), present


class Flamingo(nn.Module):
    def __init__(self, cfg: FlamingoConfig):
        super().__init__()
        self.cfg = cfg
        self.vision_encoder = VisionEncoder(cfg)
        self.resampler = MLPResampler(cfg) if cfg.resampler_kind == "mlp" else PerceiverResampler(cfg)
        self.flamingo_lm = FlamingoLM(cfg)
        self.partly_trainable: dict[int, int] = {}  # id(weight) -> how many of its entries learn

    def encode_media(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values [b, m, t, 3, H, W] -> latents [b, m, l, dv]."""
        b, m, t = pixel_values.shape[:3]
        feats = self.vision_encoder(pixel_values.flatten(0, 2))  # [b*m*t, n, dv]
        feats = feats.reshape(b * m, t, *feats.shape[1:])
        return self.resampler(feats).reshape(b, m, self.cfg.n_latents, self.cfg.d_vision)

    def forward(self, input_ids, media_index, pixel_values=None, media=None):
        if media is None:
            media = self.encode_media(pixel_values)
        return self.flamingo_lm(input_ids, media_index, media)[0]

    def freeze_for_stage3(self, unfreeze_lm: bool = False):
        """Stage 3: only the Resampler and the gated xattn-dense blocks learn (paper, Sec. 2)."""
        for p in self.parameters():
            p.requires_grad = False
        for p in list(self.resampler.parameters()) + list(self.flamingo_lm.xattn.parameters()):
            p.requires_grad = True
        if unfreeze_lm:
            for p in self.flamingo_lm.lm.parameters():
                p.requires_grad = True
        self.vision_encoder.eval()  # BatchNorm statistics stay frozen too

    def unfreeze_query_key(self, heads):
        """Ablation: the query and key projections of these (layer, head) pairs of the LM learn too, the rest
        of the LM stays frozen (the gradient of every other row of the layer's qkv weight is masked to zero;
        the optimiser must not decay those rows either: train.flamingo gives these weights no weight decay)."""
        d, dh = self.cfg.d_model, self.cfg.head_dim
        masks = {}
        for layer, h in heads:
            weight = self.flamingo_lm.lm.blocks[layer].attn.qkv.weight  # rows: q (d), k (d), v (d)
            mask = masks.setdefault(layer, torch.zeros_like(weight))
            mask[h * dh:(h + 1) * dh] = 1  # the head's query rows
            mask[d + h * dh:d + (h + 1) * dh] = 1  # its key rows
        for layer, mask in masks.items():
            weight = self.flamingo_lm.lm.blocks[layer].attn.qkv.weight
            weight.requires_grad = True
            weight.register_hook(lambda g, m=mask: g * m)
            self.partly_trainable[id(weight)] = int(mask.sum())

    def n_trainable(self) -> int:
        """Parameters that can learn: of a weight opened by unfreeze_query_key, only its unmasked rows."""
        return sum(self.partly_trainable.get(id(p), p.numel()) for p in self.parameters() if p.requires_grad)
