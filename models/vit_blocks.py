"""ViT pieces shared by Hita's DINOv2 backbone, RobusTok and the RAR generator.

- ``Attention``: fused ``qkv`` (q | k | v, with bias), optional per-head LayerNorm ``q_norm`` /
  ``k_norm``, softmax attention (optionally causal), ``proj``;
- ``Mlp``: ``fc1`` -> GELU (erf) -> ``fc2``;
- ``LayerScale`` (``gamma``) and the pre-norm ``Block`` with LayerScale on both branches
  (``norm1``, ``attn``, ``ls1``, ``norm2``, ``mlp``, ``ls2``; LayerNorm eps 1e-6).

Attribute names equal the official state-dict keys of all three.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with fused ``qkv`` and ``proj``; ``qk_norm`` adds ``q_norm``/``k_norm``."""

    def __init__(self, dim: int, heads: int, *, qk_norm: bool = False, causal: bool = False):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        if qk_norm:
            self.q_norm = nn.LayerNorm(dim // heads, eps=1e-6)
            self.k_norm = nn.LayerNorm(dim // heads, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, h, T, hd)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)  # (B, h, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Mlp(nn.Module):
    """``fc1`` -> GELU (erf) -> ``fc2``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """x + ls1(attn(norm1 x)); x + ls2(mlp(norm2 x)); bidirectional attention, MLP hidden int(dim * mlp_ratio)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))
