"""VAR's multi-scale residual VQVAE: encoder, phi-refined residual quantiser, decoder.

An image becomes K token maps of sides ``patch_nums`` (small to large). Scale s quantises
the area-downsampled residual of the latent, its code vectors are bicubic-upsampled to the
latent side, refined by one of the shared "phi" convolutions, added to the running
reconstruction ``f_hat`` and subtracted from the residual. The flat token sequence is the
concatenation of the row-major maps, scale by scale. Attribute names equal the keys of
``vae_ch160v4096z32.pth``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visbpp.models.common import Decoder, Encoder, QKVAttnBlock

from .official import CH_MULT, DOWNSAMPLE  # noqa: F401 - the fixed layout (defined without torch)
from .preprocess import preprocess_id, preprocess_image

NUM_RES_BLOCKS = 2


@dataclass
class VQVAEConfig:
    """Constructor arguments of the official VQVAE (same names)."""

    vocab_size: int = 4096
    z_channels: int = 32
    ch: int = 160
    dropout: float = 0.0
    beta: float = 0.25
    using_znorm: bool = False
    quant_conv_ks: int = 3
    quant_resi: float = 0.5
    share_quant_resi: int = 4
    default_qresi_counts: int = 0
    v_patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    test_mode: bool = True

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> "VQVAEConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(m) - names)
        if unknown:
            raise ValueError(f"VAR tokenizer config: unknown key(s) {unknown}; expected a subset of {sorted(names)}")
        cfg = cls(**dict(m))
        cfg.v_patch_nums = tuple(int(p) for p in cfg.v_patch_nums)
        if cfg.ch % 32 or cfg.ch < 32:
            raise ValueError(f"VAR tokenizer config: ch={cfg.ch} must be a positive multiple of 32 (GroupNorm of 32 groups)")
        pn = cfg.v_patch_nums
        if not pn or list(pn) != sorted(pn) or len(set(pn)) != len(pn):
            raise ValueError(f"VAR tokenizer config: v_patch_nums {pn} must be strictly increasing")
        return cfg


# --------------------------------------------------------------------------- phi refiners


def phi_ticks(n: int) -> np.ndarray:
    """Positions in [0, 1] of ``n`` shared phis (float64, same arithmetic as the official code)."""
    if n == 4:
        return np.linspace(1 / 3 / n, 1 - 1 / 3 / n, n)
    return np.linspace(1 / 2 / n, 1 - 1 / 2 / n, n)


def phi_index(scale: int, num_scales: int, num_phis: int) -> int:
    """Phi used at ``scale``: nearest tick to scale/(K-1), numpy argmin (first on exact float ties)."""
    at = scale / (num_scales - 1) if num_scales > 1 else 0.0
    return int(np.argmin(np.abs(phi_ticks(num_phis) - at)))


def phi_table(num_scales: int, num_phis: int) -> list[int]:
    """e.g. 10 scales, 4 phis -> [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]."""
    return [phi_index(s, num_scales, num_phis) for s in range(num_scales)]


class Phi(nn.Conv2d):
    """phi(h) = (1 - r) h + r conv3x3(h)."""

    def __init__(self, channels: int, resi_ratio: float):
        super().__init__(channels, channels, kernel_size=3, stride=1, padding=1)
        self.resi_ratio = abs(resi_ratio)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * (1 - self.resi_ratio) + super().forward(h) * self.resi_ratio


def _make_phi(channels: int, ratio: float) -> nn.Module:
    return Phi(channels, ratio) if abs(ratio) > 1e-6 else nn.Identity()


class PhiShared(nn.Module):
    """share_quant_resi=1: one phi for every scale (key ``qresi``)."""

    def __init__(self, phi: nn.Module):
        super().__init__()
        self.qresi = phi

    def at(self, scale: int, num_scales: int) -> nn.Module:
        return self.qresi


class PhiPartiallyShared(nn.Module):
    """share_quant_resi=n>1: n phis spread over the scales (keys ``qresi_ls.i``)."""

    def __init__(self, phis: Sequence[nn.Module]):
        super().__init__()
        self.qresi_ls = nn.ModuleList(phis)

    def at(self, scale: int, num_scales: int) -> nn.Module:
        return self.qresi_ls[phi_index(scale, num_scales, len(self.qresi_ls))]


class PhiNonShared(nn.ModuleList):
    """share_quant_resi=0: one phi per scale (keys ``i``), chosen by the same tick rule."""

    def at(self, scale: int, num_scales: int) -> nn.Module:
        return self[phi_index(scale, num_scales, len(self))]


# --------------------------------------------------------------------------- quantiser


class MultiScaleQuantizer(nn.Module):
    """Codebook ``embedding``, phi refiners ``quant_resi``, usage buffer ``ema_vocab_hit_SV`` (unused here)."""

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.vocab_size, self.Cvae = cfg.vocab_size, cfg.z_channels
        self.using_znorm = cfg.using_znorm
        self.patch_nums = cfg.v_patch_nums
        C, r = cfg.z_channels, cfg.quant_resi
        if cfg.share_quant_resi == 0:
            self.quant_resi = PhiNonShared([_make_phi(C, r) for _ in range(cfg.default_qresi_counts or len(self.patch_nums))])
        elif cfg.share_quant_resi == 1:
            self.quant_resi = PhiShared(_make_phi(C, r))
        else:
            self.quant_resi = PhiPartiallyShared([_make_phi(C, r) for _ in range(cfg.share_quant_resi)])
        self.register_buffer("ema_vocab_hit_SV", torch.zeros(len(self.patch_nums), self.vocab_size))
        self.embedding = nn.Embedding(self.vocab_size, self.Cvae)

    def phi(self, scale: int) -> nn.Module:
        return self.quant_resi.at(scale, len(self.patch_nums))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, Cvae) float32 -> (N,) nearest code: |z|^2 + |e|^2 - 2 z.e (addmm form), first index on ties."""
        e = self.embedding.weight
        if self.using_znorm:
            return torch.argmax(F.normalize(z, dim=-1) @ F.normalize(e.T, dim=0), dim=1)
        d = z.square().sum(1, keepdim=True) + e.square().sum(1)  # (N, V)
        return torch.argmin(torch.addmm(d, z, e.T, beta=1, alpha=-2), dim=1)

    def _up(self, idx: torch.Tensor, side: int, scale: int) -> torch.Tensor:
        """(B, p*p) indices of ``scale`` -> phi(bicubic-up(codes)) (B, Cvae, side, side)."""
        B, l = idx.shape
        p = self.patch_nums[scale]
        h = self.embedding(idx).transpose(1, 2).reshape(B, self.Cvae, p, p)  # (B, Cvae, p, p)
        if scale != len(self.patch_nums) - 1:
            h = F.interpolate(h, size=(side, side), mode="bicubic")
        return self.phi(scale)(h)

    def f_to_indices(self, f: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Latent f (B, Cvae, h, w) -> per-scale indices [(B, p_s^2)] and the summed f_hat."""
        B, C, H, W = f.shape
        if self.patch_nums[-1] != H or H != W:
            raise ValueError(f"latent is {H}x{W} but the last scale is {self.patch_nums[-1]}; "
                             f"input images must be {self.patch_nums[-1] * DOWNSAMPLE} pixels square")
        rest = f.clone()
        f_hat = torch.zeros_like(f)
        out = []
        last = len(self.patch_nums) - 1
        for s, p in enumerate(self.patch_nums):
            z = rest if s == last else F.interpolate(rest, size=(p, p), mode="area")
            idx = self.nearest(z.permute(0, 2, 3, 1).reshape(-1, C)).view(B, p * p)  # row-major per scale
            h = self._up(idx, H, s)
            f_hat.add_(h)
            rest.sub_(h)
            out.append(idx)
        return out, f_hat

    def indices_to_fhat(self, idx: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-scale indices -> f_hat (B, Cvae, h, w) = sum of the phi-refined upsampled code maps."""
        side = self.patch_nums[-1]
        f_hat = self.embedding.weight.new_zeros(idx[0].shape[0], self.Cvae, side, side)
        for s, t in enumerate(idx):
            f_hat.add_(self._up(t, side, s))
        return f_hat

    def var_input(self, idx: Sequence[torch.Tensor]) -> torch.Tensor:
        """Teacher-forcing input (B, L - p_0^2, Cvae): area-resized running f_hat of scales < s, for s >= 1."""
        side = self.patch_nums[-1]
        f_hat = self.embedding.weight.new_zeros(idx[0].shape[0], self.Cvae, side, side)
        blocks = []
        for s in range(len(self.patch_nums) - 1):
            f_hat.add_(self._up(idx[s], side, s))
            p = self.patch_nums[s + 1]
            nxt = F.interpolate(f_hat, size=(p, p), mode="area")  # (B, Cvae, p, p)
            blocks.append(nxt.flatten(2).transpose(1, 2))  # (B, p*p, Cvae)
        if not blocks:
            return f_hat.new_zeros(idx[0].shape[0], 0, self.Cvae)
        return torch.cat(blocks, dim=1)


# --------------------------------------------------------------------------- tokenizer


class VQVAE(nn.Module):
    """The VAR tokenizer (implements ``visbpp.core.interfaces.ImageTokenizer``)."""

    family = "var"

    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.config = cfg
        side = cfg.v_patch_nums[-1]
        self.image_size = side * DOWNSAMPLE
        self.patch_nums = cfg.v_patch_nums
        self.tokens_per_image = sum(p * p for p in cfg.v_patch_nums)
        self.vocab_size = cfg.vocab_size
        self.preprocess_id = preprocess_id(self.image_size)
        dd = dict(ch=cfg.ch, ch_mult=CH_MULT, num_res_blocks=NUM_RES_BLOCKS, attn_resolutions=(side,),
                  resolution=self.image_size, z_channels=cfg.z_channels, attn_cls=QKVAttnBlock)
        self.encoder = Encoder(in_channels=3, double_z=False, **dd)
        self.decoder = Decoder(out_ch=3, **dd)
        self.quantize = MultiScaleQuantizer(cfg)
        ks = cfg.quant_conv_ks
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, ks, stride=1, padding=ks // 2)
        self.post_quant_conv = nn.Conv2d(cfg.z_channels, cfg.z_channels, ks, stride=1, padding=ks // 2)
        self.eval()

    @property
    def scale_boundaries(self) -> list[tuple[int, int]]:
        out, cur = [], 0
        for p in self.patch_nums:
            out.append((cur, cur + p * p))
            cur += p * p
        return out

    def split(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """(B, L) flat tokens -> per-scale (B, p_s^2) views."""
        if tokens.dim() != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"VAR tokens must be (B, {self.tokens_per_image}), got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"VAR tokens must lie in [0, {self.vocab_size}), got [{int(tokens.min())}, {int(tokens.max())}]")
        return [tokens[:, a:b] for a, b in self.scale_boundaries]

    def preprocess(self, image) -> torch.Tensor:
        return preprocess_image(image, self.image_size)

    def _check_images(self, x: torch.Tensor) -> None:
        S = self.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, S, S):
            raise ValueError(f"VAR tokenizer expects images (B, 3, {S}, {S}) in [-1, 1], got {tuple(x.shape)}")

    @torch.inference_mode()
    def encode_scales(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """x (B, 3, S, S) in [-1, 1] -> per-scale indices and f_hat, always float32 (autocast off)."""
        self._check_images(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            f = self.quant_conv(self.encoder(x.float()))
            return self.quantize.f_to_indices(f)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        idx, _ = self.encode_scales(x)
        return torch.cat(idx, dim=1).long()

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, 3, S, S), unclamped (the official reconstruction clamps to [-1, 1])."""
        idx = self.split(tokens)
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return self.decoder(self.post_quant_conv(self.quantize.indices_to_fhat(idx)))

    @torch.inference_mode()
    def var_input(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) -> teacher-forcing input (B, L - p_0^2, Cvae) float32."""
        idx = self.split(tokens)
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return self.quantize.var_input(idx)
