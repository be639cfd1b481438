"""VFMTok's ``encode_transformer`` (frozen DINOv2 levels -> projectors -> deformable carrier encoder)
and ``decode_transformer`` (codes -> causal transformer -> pixel-decoder input).

Attribute names equal the official state-dict keys: encoder ``backbone.pretrained_encoder.*`` (the
DINOv2 ViT, from its own file), ``projectors.i.mlp.{0,1,3,4}``, ``norm_layers.i``,
``carrier_tokens``, ``slots_pos``, ``norm_pre1``, ``transformer.layers.*``; decoder
``position_embedding``, ``slot_position_embedding``, ``mask_embedding``, ``cls_token``,
``register_tokens``, ``norm_post1``, ``transformer.layers.i.{norm1,attn1.{q,k,v,out}_proj,norm2,
ffnet.w12/w3}`` and the training-only DINO-feature head ``mask_dino``, ``norm_post2``, ``proj``
(kept for strict loading, never run). All LayerNorms have eps 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..hita.holistic import HoloConfig, ProjMLP, Transformer
from ..hita.vit import DinoViT, ViTConfig
from .deformable import LEVELS, DeformableEncoder, RegionConfig

# fixed in the upstream token decoder: its position table is a 24 x 24 grid (+ cls), resized to the
# image's patch grid; 4 register queries; the training-only head maps to 1024 DINO features
DECODER_POS_GRID = 24
DECODER_REGISTERS = 4
DECODER_VFM_DIM = 1024


class DinoLevels(DinoViT):
    """The frozen DINOv2 ViT with registers (Hita's module, same keys) read at four levels."""

    def levels(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """ViT input (B, 3, H, W) -> [raw residual stream after each block of ``taps`` (0-based), final
        LayerNorm of the last block], patch tokens only (cls and registers dropped), each (B, N, dim)."""
        t = self.embed(x)
        first = 1 + self.cfg.num_register_tokens
        out = []
        for i, blk in enumerate(self.blocks):
            t = blk(t)
            if i in taps:
                out.append(t[:, first:])
        out.append(self.norm(t)[:, first:])
        return out


class Backbone(nn.Module):
    """Holds the frozen ViT under the official key ``pretrained_encoder`` (weights from a separate file)."""

    def __init__(self, vit: ViTConfig):
        super().__init__()
        self.pretrained_encoder = DinoLevels(vit)


class RegionEncoder(nn.Module):
    def __init__(self, cfg: RegionConfig, vit: ViTConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(vit)
        self.projectors = nn.ModuleList(ProjMLP(cfg.in_channels, cfg.dim) for _ in range(LEVELS))
        self.norm_layers = nn.ModuleList(nn.LayerNorm(cfg.dim) for _ in range(LEVELS))
        self.carrier_tokens = nn.Parameter(torch.zeros(1, cfg.n_carrier, cfg.dim))
        self.slots_pos = nn.Parameter(torch.zeros(1, cfg.n_carrier, cfg.dim))
        self.transformer = DeformableEncoder(cfg)
        self.norm_pre1 = nn.LayerNorm(cfg.dim)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """The DINOv2 levels [(B, N_l, C)] -> carrier features (B, Nc, D) (``enc_out``)."""
        if len(levels) != LEVELS:
            raise ValueError(f"the region encoder takes {LEVELS} DINOv2 levels, got {len(levels)}")
        maps = [norm(proj(f)) for f, proj, norm in zip(levels, self.projectors, self.norm_layers)]
        B = levels[0].shape[0]
        src = self.norm_pre1(self.carrier_tokens).expand(B, -1, -1)  # identical queries for every image
        return self.transformer(src, self.slots_pos, maps)


@dataclass(frozen=True)
class TokenDecoderConfig:
    dim: int = 512
    depth: int = 6
    num_head: int = 8
    mlp_dim: int = 2048         # SwiGLU hidden = (int(mlp_dim * 2 / 3) + 7) // 8 * 8
    n_carrier: int = 256
    grid: int = 21              # image_size // patch_size: the pixel decoder's input grid


class TokenDecoder(nn.Module):
    """[norm_post1(codes + slot positions) ; norm_post1(cls, g*g mask queries + positions, registers)] ->
    causal transformer over all positions -> the g*g mask outputs as (B, D, g, g)."""

    def __init__(self, cfg: TokenDecoderConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.position_embedding = nn.Parameter(torch.zeros(1, 1 + DECODER_POS_GRID**2, d))
        self.slot_position_embedding = nn.Parameter(torch.zeros(1, cfg.n_carrier, d))
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, d))
        self.mask_dino = nn.Parameter(torch.zeros(1, 1, d))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.register_tokens = nn.Parameter(torch.zeros(1, DECODER_REGISTERS, d))
        self.transformer = Transformer(HoloConfig(dim=d, depth=cfg.depth, num_head=cfg.num_head, mlp_dim=cfg.mlp_dim),
                                       causal=True)
        self.norm_post1 = nn.LayerNorm(d)
        self.norm_post2 = nn.LayerNorm(d)
        self.proj = nn.Linear(d, DECODER_VFM_DIM)

    def positions(self) -> torch.Tensor:
        """(1, 1 + g*g, D): the cls row, then the 24 x 24 grid resized to g x g by a bicubic with scale
        factor (g + 0.1) / 24 (no antialias), as upstream does."""
        g, n = self.cfg.grid, DECODER_POS_GRID
        if g == n:
            return self.position_embedding
        pos = self.position_embedding
        grid = pos[:, 1:].reshape(1, n, n, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((g + 0.1) / n, (g + 0.1) / n), mode="bicubic")
        if grid.shape[-2:] != (g, g):
            raise ValueError(f"decoder position grid resized to {tuple(grid.shape[-2:])}, expected {g}x{g}")
        return torch.cat([pos[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, Nc, D) = post_slots_quant(codes) -> (B, D, g, g)."""
        B, nc, D = memory.shape
        g = self.cfg.grid
        pos = self.positions()
        queries = torch.cat([self.cls_token + pos[:, :1], self.mask_embedding + pos[:, 1:],
                             self.register_tokens], dim=1).expand(B, -1, -1)
        x = torch.cat([self.norm_post1(memory + self.slot_position_embedding), self.norm_post1(queries)], dim=1)
        x = self.transformer(x)
        return x[:, nc + 1 : nc + 1 + g * g].transpose(1, 2).reshape(B, D, g, g)
