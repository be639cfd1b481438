"""Open-MAGVIT2 tokenizer: bias-free conv encoder, lookup-free quantiser (LFQ), AdaGN decoder.

Token of a latent position: index = sum_d [z_d > 0] * 2^d (channel 0 is the least significant
bit; exactly 0 gives bit 0). The quantised latent fed to the decoder is +-1 per channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .preprocess import PREPROCESS_ID, preprocess_image


@dataclass
class TokenizerConfig:
    ch: int = 128
    ch_mult: Sequence[int] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 4
    in_channels: int = 3
    out_ch: int = 3
    z_channels: int = 18
    embed_dim: int = 18
    image_size: int = 256
    factorized_bits: Sequence[int] = field(default_factory=lambda: (6, 12))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TokenizerConfig":
        t = config["tokenizer"]
        dd = t["ddconfig"]
        if dd["z_channels"] != t["embed_dim"]:
            raise ValueError(f"Open-MAGVIT2: z_channels {dd['z_channels']} must equal embed_dim {t['embed_dim']}")
        if 2 ** t["embed_dim"] != t["n_embed"]:
            raise ValueError(f"Open-MAGVIT2: n_embed {t['n_embed']} must be 2**embed_dim ({2 ** t['embed_dim']})")
        return cls(ch=dd["ch"], ch_mult=tuple(dd["ch_mult"]), num_res_blocks=dd["num_res_blocks"],
                   in_channels=dd["in_channels"], out_ch=dd["out_ch"], z_channels=dd["z_channels"],
                   embed_dim=t["embed_dim"], image_size=int(config["image_size"]),
                   factorized_bits=tuple(t.get("factorized_bits") or config.get("factorized_bits")))


def _gn(c: int, affine: bool = True) -> nn.GroupNorm:
    return nn.GroupNorm(32, c, eps=1e-6, affine=affine)


class ResBlock(nn.Module):
    """norm1 -> swish -> conv1 -> norm2 -> swish -> conv2 (3x3, no bias), skip via bias-free ``nin_shortcut``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = _gn(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm2 = _gn(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        if c_in != c_out:
            self.nin_shortcut = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm without affine, then per-channel scale ``gamma(std_hw(q))`` and shift ``beta(mean_hw(q))``.

    The std uses the unbiased variance over h*w, plus 1e-6 inside the square root.
    """

    def __init__(self, z_channels: int, channels: int):
        super().__init__()
        self.gn = _gn(channels, affine=False)
        self.gamma = nn.Linear(z_channels, channels)
        self.beta = nn.Linear(z_channels, channels)

    def forward(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        flat = q.flatten(2)  # (B, Z, h*w)
        std = torch.sqrt(flat.var(dim=-1) + 1e-6)  # (B, Z), unbiased
        mean = flat.mean(dim=-1)  # (B, Z)
        return self.gn(x) * self.gamma(std)[:, :, None, None] + self.beta(mean)[:, :, None, None]


class DepthToSpaceUpsampler(nn.Module):
    """3x3 ``conv1`` C -> 4C, then depth-to-space: out[k, 2y+a, 2x+b] = conv[(2a+b)*C + k, y, x]."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 4 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        y = self.conv1(x).view(B, 2, 2, C, H, W)  # (B, a, b, C, H, W)
        return y.permute(0, 3, 4, 1, 5, 2).reshape(B, C, 2 * H, 2 * W)  # (B, C, H, a, W, b)


class _Level(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleList()


class Encoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        ch, mult, nrb = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1, bias=False)
        in_mult = (1,) + mult
        self.down = nn.ModuleList()
        for i in range(len(mult)):
            level = _Level()
            c_in, c_out = ch * in_mult[i], ch * mult[i]
            for _ in range(nrb):
                level.block.append(ResBlock(c_in, c_out))
                c_in = c_out
            if i < len(mult) - 1:
                level.downsample = nn.Conv2d(c_out, c_out, 3, stride=2, padding=1)
            self.down.append(level)
        c = ch * mult[-1]
        self.mid_block = nn.ModuleList(ResBlock(c, c) for _ in range(nrb))
        self.norm_out = _gn(c)
        self.conv_out = nn.Conv2d(c, cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        for block in self.mid_block:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        ch, mult, nrb = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks
        n = len(mult)
        c = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, c, 3, padding=1)
        self.mid_block = nn.ModuleList(ResBlock(c, c) for _ in range(nrb))
        adaptive: list[nn.Module] = [None] * n  # type: ignore[list-item]
        up: list[nn.Module] = [None] * n  # type: ignore[list-item]
        for i in reversed(range(n)):
            adaptive[i] = AdaptiveGroupNorm(cfg.z_channels, c)
            level = _Level()
            c_out = ch * mult[i]
            for _ in range(nrb):
                level.block.append(ResBlock(c, c_out))
                c = c_out
            if i > 0:
                level.upsample = DepthToSpaceUpsampler(c)
            up[i] = level
        self.up = nn.ModuleList(up)
        self.adaptive = nn.ModuleList(adaptive)
        self.norm_out = _gn(c)
        self.conv_out = nn.Conv2d(c, cfg.out_ch, 3, padding=1)

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(q)
        for block in self.mid_block:
            h = block(h)
        for i in reversed(range(len(self.up))):
            h = self.adaptive[i](h, q)
            for block in self.up[i].block:
                h = block(h)
            if i > 0:
                h = self.up[i].upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class LFQTokenizer(nn.Module):
    """Encoder + LFQ + decoder. ``encode`` gives one 2^bits code index per latent position, raster order."""

    family = "openmagvit2"

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.bits = cfg.embed_dim
        self.image_size = cfg.image_size
        self.grid = cfg.image_size // 2 ** (len(cfg.ch_mult) - 1)
        self.tokens_per_image = self.grid * self.grid
        self.vocab_size = 2 ** self.bits
        self.preprocess_id = f"{PREPROCESS_ID}@{cfg.image_size}"
        self.weights_source = "random init"

    def preprocess(self, image) -> torch.Tensor:
        return preprocess_image(image, self.image_size)

    def _check_input(self, x: torch.Tensor) -> None:
        S = self.image_size
        if x.dim() != 4 or x.shape[1:] != (3, S, S):
            raise ValueError(f"Open-MAGVIT2 tokenizer expects (B, 3, {S}, {S}) input, got {tuple(x.shape)}")

    @torch.inference_mode()
    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> encoder output z (B, bits, h, w), before quantisation."""
        self._check_input(x)
        return self.encoder(x)

    def latent_to_index(self, z: torch.Tensor) -> torch.Tensor:
        """(B, bits, h, w) float -> (B, h*w) int64, index = sum_d [z_d > 0] 2^d."""
        weights = (2 ** torch.arange(self.bits, device=z.device, dtype=torch.int64))  # (bits,)
        bits = (z > 0).long()  # (B, bits, h, w)
        return (bits * weights[None, :, None, None]).sum(1).flatten(1)  # (B, h*w)

    def index_to_latent(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, h*w) int64 -> (B, bits, h, w) float32 of +-1."""
        B = tokens.shape[0]
        shifts = torch.arange(self.bits, device=tokens.device, dtype=torch.int64)
        bits = (tokens[..., None] >> shifts) & 1  # (B, h*w, bits)
        q = bits.float() * 2 - 1
        return q.transpose(1, 2).reshape(B, self.bits, self.grid, self.grid)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent_to_index(self.encode_latent(x))

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"tokens must have shape (B, {self.tokens_per_image}), got {tuple(tokens.shape)}")
        q = self.index_to_latent(tokens.long())
        return self.decoder(q.to(next(self.decoder.parameters()).dtype))
