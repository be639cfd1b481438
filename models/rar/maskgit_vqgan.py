"""MaskGIT-VQGAN tokenizer (1024 codes, downsample 16) as used by RAR.

Attribute names equal the keys of ``maskgit-vqgan-imagenet-f16-256.bin``: ``encoder.*``,
``decoder.*``, ``quantize.embedding.weight``. Input in [0, 1]; codes = plain squared-L2
argmin (no normalisation); decoder output is returned unclamped (the official decode clamps
to [0, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.errors import DataError

from .config import MaskGITConfig
from .preprocess import eval_preprocess, eval_preprocess_id


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """norm1 -> SiLU -> conv1 -> norm2 -> SiLU -> conv2 (3x3, no bias); skip x, or nin_shortcut(h) when widths differ."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm2 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        if c_in != c_out:
            # applied to the branch output h (not to x): what the released weights expect
            self.nin_shortcut = nn.Conv2d(c_out, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if hasattr(self, "nin_shortcut"):
            return h + self.nin_shortcut(h)
        return h + x


class _Level(nn.Module):
    def __init__(self, c_in: int, c_out: int, n_blocks: int, upsample: bool = False):
        super().__init__()
        self.block = nn.ModuleList([ResnetBlock(c_in if j == 0 else c_out, c_out) for j in range(n_blocks)])
        if upsample:
            self.upsample_conv = nn.Conv2d(c_out, c_out, 3, padding=1)


class Encoder(nn.Module):
    """conv_in -> down.i (ResnetBlocks, 2x2 average pool between levels) -> mid -> norm_out -> SiLU -> conv_out 1x1."""

    def __init__(self, cfg: MaskGITConfig):
        super().__init__()
        h, mult = cfg.hidden_channels, cfg.channel_mult
        self.conv_in = nn.Conv2d(cfg.num_channels, h, 3, padding=1, bias=False)
        prev = (1,) + tuple(mult)
        self.down = nn.ModuleList([_Level(h * prev[i], h * mult[i], cfg.num_res_blocks) for i in range(len(mult))])
        c = h * mult[-1]
        self.mid = nn.ModuleList([ResnetBlock(c, c) for _ in range(cfg.num_res_blocks)])  # upstream: num_res_blocks
        self.norm_out = _norm(c)
        self.conv_out = nn.Conv2d(c, cfg.z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)  # (B, hidden, S, S)
        for i, level in enumerate(self.down):
            for block in level.block:
                h = block(h)
            if i < len(self.down) - 1:
                h = F.avg_pool2d(h, 2, 2)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (B, z, S/16, S/16)


class Decoder(nn.Module):
    """conv_in -> mid -> up.{n-1..0} (ResnetBlocks, nearest x2 + upsample_conv except level 0) -> norm_out -> SiLU -> conv_out."""

    def __init__(self, cfg: MaskGITConfig):
        super().__init__()
        h, mult = cfg.hidden_channels, cfg.channel_mult
        n = len(mult)
        c = h * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, c, 3, padding=1)
        self.mid = nn.ModuleList([ResnetBlock(c, c) for _ in range(cfg.num_res_blocks)])  # upstream: num_res_blocks
        widths_in = [h * mult[i + 1] if i < n - 1 else h * mult[-1] for i in range(n)]
        self.up = nn.ModuleList([_Level(widths_in[i], h * mult[i], cfg.num_res_blocks, upsample=i > 0) for i in range(n)])
        self.norm_out = _norm(h * mult[0])
        self.conv_out = nn.Conv2d(h * mult[0], cfg.num_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in reversed(self.up):
            for block in level.block:
                h = block(h)
            if hasattr(level, "upsample_conv"):
                h = level.upsample_conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class Quantizer(nn.Module):
    """Codebook ``embedding`` (K, C); code = argmin_j |z|^2 + |e_j|^2 - 2 z.e_j (first minimum), in fp32.

    ``l2_norm``: z and the codes are l2-normalised first (RobusTok); else plain squared L2 (MaskGIT-VQGAN).
    """

    def __init__(self, num_embeddings: int, dim: int, l2_norm: bool = False):
        super().__init__()
        self.l2_norm = l2_norm
        self.embedding = nn.Embedding(num_embeddings, dim)

    def codebook(self) -> torch.Tensor:
        """(K, C) fp32 code vectors as used (l2-normalised when ``l2_norm``)."""
        e = self.embedding.weight.float()
        return F.normalize(e, dim=-1) if self.l2_norm else e

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, C, H, W) -> (B, H*W) int64 codes in raster order."""
        B, C, H, W = z.shape
        zf = z.permute(0, 2, 3, 1).reshape(-1, C).float()  # (B*H*W, C) channels last
        if self.l2_norm:
            zf = F.normalize(zf, dim=-1)
        e = self.codebook()  # (K, C)
        d = torch.addmm(zf.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1), zf, e.t(), alpha=-2.0)  # (BHW, K)
        return d.argmin(1).view(B, H * W)

    def lookup(self, tokens: torch.Tensor, grid: int) -> torch.Tensor:
        """(B, grid^2) codes -> (B, C, grid, grid) fp32 code vectors; DataError on another length."""
        B, L = tokens.shape
        if L != grid * grid:
            raise DataError(f"expected {grid * grid} tokens per image, got {L}")
        return self.codebook()[tokens].view(B, grid, grid, -1).permute(0, 3, 1, 2).contiguous()


class MaskGITTokenizer(nn.Module):
    """:class:`~visbpp.core.interfaces.ImageTokenizer` for RAR: [0, 1] input, 16x16 raster codes at 256."""

    family = "rar"

    def __init__(self, cfg: MaskGITConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = Quantizer(cfg.codebook_size, cfg.z_channels)
        self.image_size = cfg.image_size
        self.tokens_per_image = cfg.grid * cfg.grid
        self.vocab_size = cfg.codebook_size
        self.preprocess_id = eval_preprocess_id(cfg.image_size)

    def preprocess(self, image) -> torch.Tensor:
        return eval_preprocess(image, self.image_size)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1] -> z (B, z_channels, S/16, S/16), fp32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.encoder(x.float().contiguous())

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize.codes(self.latent(x))

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) codes -> (B, 3, S, S) unclamped (the official decode clamps to [0, 1] afterwards)."""
        z = self.quantize.lookup(tokens, self.cfg.grid)  # (B, z_channels, g, g) fp32
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return self.decoder(z)
