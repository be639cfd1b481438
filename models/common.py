"""Building blocks shared by several families.

Attribute names equal the official state-dict keys of the families that use them:
- the convolutional VQ encoder/decoder of the taming lineage (``down.i.block.j``,
  ``mid.block_1``, ``up.i.upsample.conv``...) used by Taming, RQ-VAE, IBQ and (with a
  fused-qkv attention block) VAR, and its blocks (also used by LlamaGen's VQ-16);
- Llama-style pieces (RMSNorm, SwiGLU feed-forward) used by LlamaGen, Open-MAGVIT2, IBQ.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .widths import swiglu_hidden  # noqa: F401 - re-exported (torch-free home: models/widths.py)

# ``ddconfig`` of the taming-lineage conv stacks, as a ``config.json`` schema (``visbpp.core.registry.config_schema``)
DDCONFIG_SCHEMA = {
    "double_z": "bool", "z_channels": "int>0", "resolution": "int>0", "in_channels": "int>0", "out_ch": "int>0",
    "ch": "int>0", "ch_mult": "ints>0", "num_res_blocks": "int>0", "attn_resolutions": "ints>0",
    "dropout": "float>=0",
}


# --------------------------------------------------------------------------- conv blocks


def group_norm(channels: int, eps: float = 1e-6) -> nn.GroupNorm:
    """GroupNorm(32 groups, affine), the ``Normalize`` of the taming lineage."""
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=eps, affine=True)


class ResnetBlock(nn.Module):
    """norm1 -> swish -> conv1 -> norm2 -> swish -> conv2, plus (1x1 ``nin_shortcut``) skip."""

    def __init__(self, in_channels: int, out_channels: int | None = None, eps: float = 1e-6):
        super().__init__()
        out_channels = out_channels or in_channels
        self.norm1 = group_norm(in_channels, eps)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


def _spatial_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Single-head attention over the H*W positions of (B, C, H, W) maps, scale C^-0.5."""
    B, C, H, W = q.shape
    q, k, v = (t.reshape(B, 1, C, H * W).transpose(-1, -2) for t in (q, k, v))  # (B, 1, HW, C)
    h = F.scaled_dot_product_attention(q, k, v)  # (B, 1, HW, C)
    return h.transpose(-1, -2).reshape(B, C, H, W)


class AttnBlock(nn.Module):
    """GroupNorm, 1x1 convs ``q``, ``k``, ``v``, single-head attention, ``proj_out``, residual."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = group_norm(channels, eps)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        return x + self.proj_out(_spatial_attention(self.q(h), self.k(h), self.v(h)))


class QKVAttnBlock(nn.Module):
    """Like :class:`AttnBlock` with one fused 1x1 conv ``qkv`` (channel blocks q | k | v)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.norm = group_norm(channels, eps)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=1)
        return x + self.proj_out(_spatial_attention(q, k, v))


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then 3x3 conv with stride 2 and no padding (key ``conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then 3x3 conv with padding 1 (key ``conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: ``block.j`` (+ ``attn.j`` after each block) (+ ``downsample``/``upsample``)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()


class _Mid(nn.Module):
    def __init__(self, channels: int, attn_cls: type[nn.Module], eps: float):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, eps)
        self.attn_1 = attn_cls(channels, eps)
        self.block_2 = ResnetBlock(channels, channels, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder(nn.Module):
    """Taming-lineage encoder: ``conv_in``, ``down.i``, ``mid``, ``norm_out``, ``conv_out``.

    Level i has ``num_res_blocks`` ResnetBlocks to width ch*ch_mult[i], an attention block
    after each when the level's resolution is in ``attn_resolutions``, and (except the
    last level) a ``downsample``.
    """

    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        in_channels: int,
        resolution: int,
        z_channels: int,
        double_z: bool = False,
        attn_cls: type[nn.Module] = AttnBlock,
        eps: float = 1e-6,
        **_: object,
    ):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        in_mult = (1,) + tuple(ch_mult)
        res = resolution
        self.down = nn.ModuleList()
        for i, mult in enumerate(ch_mult):
            level = _Level()
            c_in = ch * in_mult[i]
            c_out = ch * mult
            for _j in range(num_res_blocks):
                level.block.append(ResnetBlock(c_in, c_out, eps))
                c_in = c_out
                if res in attn_resolutions:
                    level.attn.append(attn_cls(c_in, eps))
            if i != len(ch_mult) - 1:
                level.downsample = Downsample(c_in)
                res //= 2
            self.down.append(level)
        self.mid = _Mid(c_in, attn_cls, eps)
        self.norm_out = group_norm(c_in, eps)
        self.conv_out = nn.Conv2d(c_in, 2 * z_channels if double_z else z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Taming-lineage decoder: ``conv_in``, ``mid``, ``up.i`` (stored by level index), ``norm_out``, ``conv_out``.

    Levels run deepest first; level i has ``num_res_blocks + 1`` ResnetBlocks to
    ch*ch_mult[i], attention after each at resolutions in ``attn_resolutions``, and (except
    level 0) an ``upsample``.
    """

    def __init__(
        self,
        *,
        ch: int,
        out_ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        resolution: int,
        z_channels: int,
        attn_cls: type[nn.Module] = AttnBlock,
        eps: float = 1e-6,
        **_: object,
    ):
        super().__init__()
        n = len(ch_mult)
        c_in = ch * ch_mult[-1]
        res = resolution // 2 ** (n - 1)
        self.conv_in = nn.Conv2d(z_channels, c_in, 3, padding=1)
        self.mid = _Mid(c_in, attn_cls, eps)
        levels: list[_Level] = []
        for i in reversed(range(n)):
            level = _Level()
            c_out = ch * ch_mult[i]
            for _j in range(num_res_blocks + 1):
                level.block.append(ResnetBlock(c_in, c_out, eps))
                c_in = c_out
                if res in attn_resolutions:
                    level.attn.append(attn_cls(c_in, eps))
            if i != 0:
                level.upsample = Upsample(c_in)
                res *= 2
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(c_in, eps)
        self.conv_out = nn.Conv2d(c_in, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn) > 0:
                    h = level.attn[j](h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# --------------------------------------------------------------------------- llama pieces


_FUSED_RMS_NORM = hasattr(F, "rms_norm")  # torch >= 2.4


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) computed in float32, cast back, times ``weight``.

    Uses the fused ``F.rms_norm`` where available; it gives bit-identical results to the
    written-out formula (checked in the tests for float32 and for bf16 input, where the
    normalisation runs on the float32 copy and the product with ``weight`` stays separate).
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _FUSED_RMS_NORM or torch.is_autocast_enabled(x.device.type):  # fused is slower under autocast
            return rms_norm_reference(x, self.weight, self.eps)
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        return F.rms_norm(x.float(), (x.shape[-1],), None, self.eps).type_as(x) * self.weight


def rms_norm_reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """The written-out Llama RMSNorm: normalise in float32, cast back, times ``weight``."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * weight


class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1 x) * w3 x)``, no biases."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.w1(x)  # (..., hidden)
        if a.requires_grad:  # training (the micro zoo): autograd needs silu's input
            return self.w2(F.silu(a) * self.w3(x))
        return self.w2(F.silu(a, inplace=True).mul_(self.w3(x)))  # same values, no extra (..., hidden) tensors
