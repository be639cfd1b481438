"""VFMTok's region-adaptive encoder: multi-scale deformable cross-attention from carrier queries
into the four projected DINOv2 feature maps, then causal carrier self-attention and a ReLU FFN,
in post-norm layers.

Attribute names equal the official state-dict keys (``layers.i.cross_attn.{sampling_offsets,
attention_weights,value_proj,output_proj}``, ``norm1``, ``self_attn.{q,k,v,out}_proj``, ``norm3``,
``linear1``, ``linear2``, ``norm2``). All LayerNorms have eps 1e-5.

Multi-scale deformable attention (H heads, L levels, P points per head and level) in pure PyTorch:
every level's value map is sampled with ``F.grid_sample`` (bilinear, zero padding,
align_corners=False), which is exactly the rule of the reference CUDA kernel (a neighbour outside
the map contributes zero; pixel coordinates x W - 0.5). Per level only the (queries x points)
samples exist, (B*H, Dh, Nq, P): no tensor spans queries x all pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..hita.holistic import CausalAttention

# fixed in the upstream code (DeformableTransformerEncoder / its layers), not read from any config
HEADS = 8          # deformable and carrier self-attention heads
LEVELS = 4         # DINOv2 feature levels
FFN_CAP = 1024     # FFN width = min(4 * dim, 1024)


@dataclass(frozen=True)
class RegionConfig:
    dim: int = 512              # tokenizer width D (= z_channels)
    depth: int = 6              # deformable layers
    n_carrier: int = 256        # carrier queries on a G x G reference grid
    n_points: int = 4           # sampling points per head and level (``enc_n_points``)
    in_channels: int = 1024     # DINOv2 width C (projector input)

    @property
    def grid(self) -> int:
        return int(round(self.n_carrier**0.5))

    @property
    def ffn(self) -> int:
        return min(4 * self.dim, FFN_CAP)


def reference_points(grid: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(grid^2, 2) normalised (x, y) centres of a grid x grid raster, row-major: carrier k sits at row
    k // grid, column k % grid."""
    c = (torch.arange(grid, dtype=torch.float32, device=device) + 0.5) / grid
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1)


class MSDeformAttn(nn.Module):
    """``sampling_offsets`` (D -> H*L*P*2), ``attention_weights`` (D -> H*L*P), ``value_proj``, ``output_proj``."""

    def __init__(self, dim: int, n_levels: int = LEVELS, n_heads: int = HEADS, n_points: int = 4):
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"deformable attention width {dim} is not divisible by its {n_heads} heads")
        self.dim, self.n_levels, self.n_heads, self.n_points = dim, n_levels, n_heads, n_points
        self.sampling_offsets = nn.Linear(dim, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(dim, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)

    def sampling(self, query: torch.Tensor, ref: torch.Tensor,
                 shapes: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Nq, D), ref (Nq, 2) (x, y) in [0, 1], level shapes [(H_l, W_l)] ->
        (locations (B, Nq, H, L, P, 2) (x, y) normalised, weights (B, Nq, H, L, P) softmaxed over L*P)."""
        B, Nq, _ = query.shape
        H, L, P = self.n_heads, self.n_levels, self.n_points
        off = self.sampling_offsets(query).view(B, Nq, H, L, P, 2)  # (x, y) in pixels of each level
        norm = torch.tensor([[w, h] for h, w in shapes], dtype=off.dtype, device=off.device)  # (L, 2) = (W_l, H_l)
        loc = ref[None, :, None, None, None, :].to(off.dtype) + off / norm[None, None, None, :, None, :]
        w = self.attention_weights(query).view(B, Nq, H, L * P).softmax(-1).view(B, Nq, H, L, P)
        return loc, w

    def forward(self, query: torch.Tensor, ref: torch.Tensor, values: torch.Tensor,
                shapes: list[tuple[int, int]]) -> torch.Tensor:
        """query (B, Nq, D); values (B, sum_l H_l*W_l, D) the level maps flattened row-major and
        concatenated in level order -> (B, Nq, D)."""
        B, Nq, D = query.shape
        H, Dh = self.n_heads, D // self.n_heads
        if len(shapes) != self.n_levels or values.shape[1] != sum(h * w for h, w in shapes):
            raise ValueError(f"deformable attention expects {self.n_levels} levels covering the value tokens, "
                             f"got shapes {shapes} for {values.shape[1]} tokens")
        loc, w = self.sampling(query, ref, shapes)
        grids = (2 * loc - 1).permute(0, 2, 1, 3, 4, 5).reshape(B * H, Nq, self.n_levels, self.n_points, 2)
        w = w.permute(0, 2, 1, 3, 4).reshape(B * H, 1, Nq, self.n_levels, self.n_points)
        v = self.value_proj(values).view(B, -1, H, Dh)  # head h = features h*Dh .. h*Dh+Dh-1
        out = query.new_zeros(B * H, Dh, Nq)
        start = 0
        for lvl, (h, wd) in enumerate(shapes):
            v_l = v[:, start : start + h * wd].permute(0, 2, 3, 1).reshape(B * H, Dh, h, wd)
            start += h * wd
            s = F.grid_sample(v_l, grids[:, :, lvl], mode="bilinear", padding_mode="zeros",
                              align_corners=False)  # (B*H, Dh, Nq, P)
            out = out + (s * w[..., lvl, :]).sum(-1)
        return self.output_proj(out.view(B, H * Dh, Nq).transpose(1, 2))


class DeformableLayer(nn.Module):
    """Post-norm: src = norm1(src + cross_attn(src + pos)); norm3(src + self_attn(src + pos)) with a
    causal mask over the carriers; norm2(src + linear2(relu(linear1(src))))."""

    def __init__(self, cfg: RegionConfig):
        super().__init__()
        self.cross_attn = MSDeformAttn(cfg.dim, LEVELS, HEADS, cfg.n_points)
        self.norm1 = nn.LayerNorm(cfg.dim)
        self.self_attn = CausalAttention(cfg.dim, HEADS)  # q, k and v all from src + pos
        self.norm3 = nn.LayerNorm(cfg.dim)
        self.linear1 = nn.Linear(cfg.dim, cfg.ffn)
        self.linear2 = nn.Linear(cfg.ffn, cfg.dim)
        self.norm2 = nn.LayerNorm(cfg.dim)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, ref: torch.Tensor, values: torch.Tensor,
                shapes: list[tuple[int, int]]) -> torch.Tensor:
        src = self.norm1(src + self.cross_attn(src + pos, ref, values, shapes))
        src = self.norm3(src + self.self_attn(src + pos))
        return self.norm2(src + self.linear2(F.relu(self.linear1(src))))


class DeformableEncoder(nn.Module):
    """``layers.0..depth-1``; the carriers' reference points are the centres of their G x G grid,
    the same point on every level."""

    def __init__(self, cfg: RegionConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(DeformableLayer(cfg) for _ in range(cfg.depth))

    def forward(self, src: torch.Tensor, pos: torch.Tensor, maps: list[torch.Tensor]) -> torch.Tensor:
        """src (B, Nc, D) carrier queries, pos (1, Nc, D), maps: LEVELS value maps (B, N_l, D) on square
        grids, raster order -> (B, Nc, D)."""
        shapes = []
        for m in maps:
            side = int(round(m.shape[1] ** 0.5))
            if side * side != m.shape[1]:
                raise ValueError(f"feature level of {m.shape[1]} tokens is not a square grid")
            shapes.append((side, side))
        values = torch.cat(maps, dim=1)
        ref = reference_points(self.cfg.grid, src.device)
        for layer in self.layers:
            src = layer(src, pos, ref, values, shapes)
        return src
