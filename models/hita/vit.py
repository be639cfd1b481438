"""The frozen DINOv2 ViT with register tokens that feeds Hita's holistic encoder (and, read at four
levels, VFMTok's region encoder), and its input rule.

Attribute names equal the keys of the released DINOv2 state dicts (``cls_token``,
``pos_embed``, ``register_tokens``, ``mask_token``, ``patch_embed.proj``,
``blocks.i.{norm1,attn.qkv,attn.proj,ls1.gamma,norm2,mlp.fc1,mlp.fc2,ls2.gamma}``, ``norm``),
so ``dinov2_vitl14_reg4_pretrain.pth`` loads strictly. Only the inference path is kept:
patch embedding, antialiased bicubic position-embedding resize (offset 0), cls + registers,
pre-norm blocks with LayerScale, final LayerNorm; the output is [cls, patch tokens] with
the registers dropped.

:func:`dino_input` turns the tokenizer input x in [-1, 1] into the ViT input: a Gaussian
pre-blur when downscaling (sigma = (factor - 1) / 2, 3+ taps, reflect border), bicubic resize
with align_corners=True to 224, clamp, map to [0, 1], ImageNet mean/std.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..vit_blocks import Block

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINO_SIDE = 224


@dataclass(frozen=True)
class ViTConfig:
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    img_size: int = 518          # position grid = img_size // patch_size (37 for the release)
    patch_size: int = 14
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    in_chans: int = 3

    @property
    def pos_grid(self) -> int:
        return self.img_size // self.patch_size


# --------------------------------------------------------------------------- input rule


def _gaussian_taps(factor: float) -> torch.Tensor:
    """1-D Gaussian of the antialiasing pre-blur for a downscale by ``factor`` (sums to 1)."""
    sigma = max((factor - 1.0) / 2.0, 0.001)
    size = int(max(4.0 * sigma, 3))
    size += 1 - size % 2  # odd
    t = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-t.pow(2) / (2 * sigma**2))
    return g / g.sum()


def _blur_axis(x: torch.Tensor, taps: torch.Tensor, dim: int) -> torch.Tensor:
    """Depthwise 1-D convolution of (B, C, H, W) along H (dim=2) or W (dim=3), reflect padding."""
    C, k = x.shape[1], taps.numel()
    p = k // 2
    if dim == 3:
        w = taps.view(1, 1, 1, k).expand(C, 1, 1, k)
        return F.conv2d(F.pad(x, (p, p, 0, 0), mode="reflect"), w.to(x), groups=C)
    w = taps.view(1, 1, k, 1).expand(C, 1, k, 1)
    return F.conv2d(F.pad(x, (0, 0, p, p), mode="reflect"), w.to(x), groups=C)


def antialiased_bicubic(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size): Gaussian pre-blur of both axes when either shrinks (sigma per
    axis from its factor), then bicubic with align_corners=True; no blur when upscaling."""
    H, W = x.shape[-2:]
    if (H, W) == (size, size):
        return x
    fh, fw = H / size, W / size
    if max(fh, fw) > 1:  # the blur is applied on both axes once any axis shrinks
        x = _blur_axis(x, _gaussian_taps(fw), 3)
        x = _blur_axis(x, _gaussian_taps(fh), 2)
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=True)


def dino_input(x: torch.Tensor, side: int = DINO_SIDE) -> torch.Tensor:
    """Tokenizer input (B, 3, S, S) in [-1, 1] -> ImageNet-normalised (B, 3, side, side) ViT input."""
    x = antialiased_bicubic(x, side).clamp(-1, 1)
    x = (x + 1.0) / 2.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


# --------------------------------------------------------------------------- blocks


class PatchEmbed(nn.Module):
    """``proj``: Conv2d(in, dim, patch, stride patch) -> (B, N, dim) row-major."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoViT(nn.Module):
    """DINOv2 ViT with registers; ``forward`` returns (B, 1 + N, dim): normed cls + patch tokens."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.pos_grid**2, d))
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))  # training-only, kept for strict loading
        self.blocks = nn.ModuleList(Block(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)

    def position_embedding(self, h: int, w: int) -> torch.Tensor:
        """(1, 1 + h*w, dim): cls row unchanged, patch grid resized by an antialiased bicubic
        with scale factors (h / grid, w / grid) (offset 0), as the released model does."""
        n = self.cfg.pos_grid
        if h * w == n * n and h == w:
            return self.pos_embed
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=(h / math.sqrt(n * n), w / math.sqrt(n * n)),
                             mode="bicubic", antialias=True)
        if grid.shape[-2:] != (h, w):
            raise ValueError(f"position grid {n}x{n} resized to {tuple(grid.shape[-2:])}, expected {h}x{w}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)
        return torch.cat([pos[:, :1], grid], dim=1).to(self.pos_embed.dtype)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) ViT input -> (B, 1 + R + N, dim) block input [cls, registers, patch tokens]."""
        B, _, H, W = x.shape
        p = self.cfg.patch_size
        t = self.patch_embed(x)  # (B, N, dim)
        t = torch.cat([self.cls_token.expand(B, -1, -1), t], dim=1)
        t = t + self.position_embedding(H // p, W // p)
        return torch.cat([t[:, :1], self.register_tokens.expand(B, -1, -1), t[:, 1:]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x)
        for blk in self.blocks:
            t = blk(t)
        t = self.norm(t)
        r = self.cfg.num_register_tokens
        return torch.cat([t[:, :1], t[:, 1 + r :]], dim=1)  # registers dropped
