"""Hita's holistic/patch transformers: ``encode_transformer`` (with the DINOv2 branch) and ``decode_transformer``.

Attribute names equal the official state-dict keys (``carrier_tokens``, ``pos_embed``,
``proj.mlp.{0,1,3,4}``, ``norm_pre1``, ``transformer1.layers.i.{norm1,attn1.to_q/to_k/to_v/to_out.0,
norm2,ffnet.w12/w3}``, ``transformer2.layers.i.attn1.{q,k,v,out}_proj``, ``backbone.pretrained_encoder.*``;
decoder ``position_embedding``, ``slot_position_embedding``, ``transformer``, ``norm`` and, for the
VFM-head variant, ``mask_embedding``, ``norm_vfm``, ``proj``). All LayerNorms have eps 1e-5.

Encoder: s1 = [carriers (Nc) ; proj(DINO) (1 + 256) ; CNN patches + pos (h*w)] -> norm_pre1 ->
bidirectional transformer1; keep [carriers ; patches] -> norm_pre2 -> causal transformer2.
Decoder: [slots + slot pos ; patches + pos] -> norm -> causal transformer -> the h*w outputs
starting ``shift_k`` positions before the first patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .vit import DinoViT, ViTConfig


@dataclass(frozen=True)
class HoloConfig:
    dim: int = 512
    depth: int = 3
    num_head: int = 8
    dim_head: int = 64          # per-head width of the bidirectional attention (transformer1)
    mlp_dim: int = 2048         # SwiGLU hidden = (int(mlp_dim * 2 / 3) + 7) // 8 * 8
    n_carrier: int = 128        # holistic tokens
    num_patches: int = 441      # (image_size // patch_size)^2
    shift_k: int = 4            # decoder output window offset
    enable_vfm_recon: bool = False  # decoder's VFM head (reconstruction only)
    vfm_dim: int = 1024


def swiglu_fused_hidden(mlp_dim: int) -> int:
    return (int(mlp_dim * 2 / 3) + 7) // 8 * 8


class SwiGLU(nn.Module):
    """``w12`` (bias) -> a | b -> silu(a) * b -> ``w3`` (bias)."""

    def __init__(self, dim: int, mlp_dim: int):
        super().__init__()
        hidden = swiglu_fused_hidden(mlp_dim)
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(a) * b)


class FullAttention(nn.Module):
    """Bidirectional: ``to_q/to_k/to_v`` (no bias) to heads x dim_head, scale dim_head^-0.5, ``to_out.0``."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        q, k, v = (f(x).view(B, N, self.heads, -1).transpose(1, 2) for f in (self.to_q, self.to_k, self.to_v))
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, dim_head)
        return self.to_out(y.transpose(1, 2).reshape(B, N, -1))


class CausalAttention(nn.Module):
    """``q_proj/k_proj/v_proj/out_proj`` (with bias), heads of dim/heads, causal over the sequence."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = (f(x).view(B, N, self.heads, -1).transpose(1, 2) for f in (self.q_proj, self.k_proj, self.v_proj))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # position i attends to 0..i
        return self.out_proj(y.transpose(1, 2).reshape(B, N, C))


class Layer(nn.Module):
    """Pre-norm: x + attn1(norm1 x); x + ffnet(norm2 x)."""

    def __init__(self, cfg: HoloConfig, causal: bool):
        super().__init__()
        self.causal = causal
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.attn1 = CausalAttention(cfg.dim, cfg.num_head) if causal else FullAttention(cfg.dim, cfg.num_head, cfg.dim_head)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.ffnet = SwiGLU(cfg.dim, cfg.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x))
        return x + self.ffnet(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, cfg: HoloConfig, causal: bool):
        super().__init__()
        self.layers = nn.ModuleList(Layer(cfg, causal) for _ in range(cfg.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ProjMLP(nn.Module):
    """``mlp``: Linear (no bias) -> LayerNorm -> ReLU -> Linear (no bias) -> LayerNorm."""

    def __init__(self, d_in: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_in, dim, bias=False), nn.LayerNorm(dim), nn.ReLU(),
                                 nn.Linear(dim, dim, bias=False), nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


class Backbone(nn.Module):
    """Holds the frozen ViT under the official key ``pretrained_encoder`` (weights from a separate file)."""

    def __init__(self, vit: ViTConfig):
        super().__init__()
        self.pretrained_encoder = DinoViT(vit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pretrained_encoder(x)


class HoloEncoder(nn.Module):
    def __init__(self, cfg: HoloConfig, vit: ViTConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(vit)
        self.proj = ProjMLP(vit.embed_dim, cfg.dim)
        self.carrier_tokens = nn.Parameter(torch.zeros(1, cfg.n_carrier, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_patches, cfg.dim))
        self.norm_pre1 = nn.LayerNorm(cfg.dim)
        self.transformer1 = Transformer(cfg, causal=False)
        self.transformer2 = Transformer(cfg, causal=True)
        self.norm_pre2 = nn.LayerNorm(cfg.dim)

    def forward(self, dino: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """dino (B, 1 + n, vit_dim) ViT output, h (B, dim, gh, gw) CNN output ->
        (patch features (B, dim, gh, gw), holistic features (B, Nc, dim))."""
        B, C, gh, gw = h.shape
        if gh * gw != self.cfg.num_patches:
            raise ValueError(f"CNN grid {gh}x{gw} does not match the {self.cfg.num_patches} patch positions")
        d = self.proj(dino)
        p = h.flatten(2).transpose(1, 2) + self.pos_embed  # (B, gh*gw, dim) raster order
        nc = self.cfg.n_carrier
        x = torch.cat([self.carrier_tokens.expand(B, -1, -1), d, p], dim=1)
        x = self.transformer1(self.norm_pre1(x))
        x = torch.cat([x[:, :nc], x[:, nc + d.shape[1]:]], dim=1)  # DINO positions dropped
        x = self.transformer2(self.norm_pre2(x))
        z = x[:, nc:].transpose(1, 2).reshape(B, C, gh, gw)
        return z, x[:, :nc]


class HoloDecoder(nn.Module):
    def __init__(self, cfg: HoloConfig):
        super().__init__()
        self.cfg = cfg
        self.position_embedding = nn.Parameter(torch.zeros(1, cfg.num_patches, cfg.dim))
        self.slot_position_embedding = nn.Parameter(torch.zeros(1, cfg.n_carrier, cfg.dim))
        self.transformer = Transformer(cfg, causal=True)
        self.norm = nn.LayerNorm(cfg.dim)
        if cfg.enable_vfm_recon:  # VFM head: trained with the tokenizer, unused for images
            self.mask_embedding = nn.Parameter(torch.zeros(1, 1, cfg.dim))
            self.norm_vfm = nn.LayerNorm(cfg.dim)
            self.proj = nn.Linear(cfg.dim, cfg.vfm_dim)

    def forward(self, h: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """h (B, dim, gh, gw) patch features, slots (B, Nc, dim) -> (B, dim, gh, gw)."""
        B, C, gh, gw = h.shape
        nc, k = slots.shape[1], self.cfg.shift_k
        x = torch.cat([slots + self.slot_position_embedding, h.flatten(2).transpose(1, 2) + self.position_embedding], 1)
        x = self.transformer(self.norm(x))
        return x[:, nc - k : nc - k + gh * gw].transpose(1, 2).reshape(B, C, gh, gw)
