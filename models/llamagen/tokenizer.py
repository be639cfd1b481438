"""LlamaGen VQ tokenizer ("VQ-16"): conv encoder, l2-normalised codebook quantiser, conv decoder.

Attribute names equal the official state-dict keys (``encoder.conv_blocks.i.res.j``,
``encoder.mid.0``, ``quantize.embedding.weight``, ``quant_conv``...). Tokens are the
quantiser's argmin indices in raster order (row-major over the h x w grid), one
sequence of h*w per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..common import AttnBlock, Downsample, ResnetBlock, Upsample, group_norm
from .preprocess import preprocess as _preprocess
from .preprocess import preprocess_id as _preprocess_id

USAGE_BUFFER = 65536  # length of the (inference-irrelevant) ``quantize.codebook_used`` buffer


def check_token_values(tokens: torch.Tensor, vocab_size: int) -> None:
    """ValueError unless every token lies in [0, vocab_size)."""
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise ValueError(f"token values must lie in [0, {vocab_size}); got {int(tokens.min())}..{int(tokens.max())}")


@dataclass(frozen=True)
class CodebookCNNConfig:
    """The codebook and CNN level fields LlamaGen's tokenizer shares with GigaTok's and Hita's, and
    the latent geometry (subclasses add ``image_size``)."""

    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True
    codebook_show_usage: bool = True
    encoder_ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    decoder_ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.encoder_ch_mult) - 1)

    @property
    def grid(self) -> int:
        return self.image_size // self.downsample


@dataclass(frozen=True)
class VQConfig(CodebookCNNConfig):
    z_channels: int = 256
    ch: int = 128               # base width (hard-wired to 128 in the released VQ-16)
    num_res_blocks: int = 2     # per encoder level (decoder levels have one more)
    in_channels: int = 3
    out_channels: int = 3
    image_size: int = 256       # side S the tokenizer is run at


# --------------------------------------------------------------------------- encoder / decoder


class _Level(nn.Module):
    """One level: ``res.j`` (+ ``attn.j`` right after each, deepest level only) (+ ``downsample``/``upsample``)."""

    def __init__(self, c_in: int, c_out: int, n_res: int, attn: bool, resample: str | None):
        super().__init__()
        self.res = nn.ModuleList()
        self.attn = nn.ModuleList()
        for _ in range(n_res):
            self.res.append(ResnetBlock(c_in, c_out))
            c_in = c_out
            if attn:
                self.attn.append(AttnBlock(c_out))
        self.resample = resample
        if resample == "downsample":
            self.downsample = Downsample(c_out)
        elif resample == "upsample":
            self.upsample = Upsample(c_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for j, block in enumerate(self.res):
            h = block(h)
            if len(self.attn) > 0:
                h = self.attn[j](h)
        if self.resample is not None:
            h = getattr(self, self.resample)(h)
        return h


def _mid(c: int) -> nn.ModuleList:
    """``mid.0`` ResnetBlock, ``mid.1`` AttnBlock, ``mid.2`` ResnetBlock."""
    return nn.ModuleList([ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)])


class Encoder(nn.Module):
    """``conv_in``, ``conv_blocks.0..n-1`` (attention only at the deepest level), ``mid``, ``norm_out``, ``conv_out``.

    ``attn=False``: no attention anywhere; ``mid`` is then ``mid.0``, ``mid.1`` ResnetBlocks.
    """

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, in_channels: int, z_channels: int,
                 attn: bool = True):
        super().__init__()
        n = len(ch_mult)
        in_mult = (1,) + tuple(ch_mult)
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList(
            _Level(ch * in_mult[i], ch * ch_mult[i], num_res_blocks, attn and i == n - 1,
                   "downsample" if i != n - 1 else None)
            for i in range(n)
        )
        c = ch * ch_mult[-1]
        self.mid = _mid(c) if attn else nn.ModuleList([ResnetBlock(c, c), ResnetBlock(c, c)])
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = level(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """``conv_in``, ``mid``, ``conv_blocks.0..n-1`` deepest level first (attention only in block 0), ``norm_out``, ``conv_out``.

    ``up_attn=False``: no attention in the up-blocks (``mid`` keeps its own), VFMTok's pixel decoder.
    """

    def __init__(self, ch: int, ch_mult: Sequence[int], num_res_blocks: int, out_channels: int, z_channels: int,
                 up_attn: bool = True):
        super().__init__()
        n = len(ch_mult)
        c = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, c, 3, padding=1)
        self.mid = _mid(c)
        self.conv_blocks = nn.ModuleList()
        for i in range(n):
            c_out = ch * ch_mult[n - 1 - i]
            self.conv_blocks.append(_Level(c, c_out, num_res_blocks + 1, up_attn and i == 0,
                                           "upsample" if i != n - 1 else None))
            c = c_out
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))


# --------------------------------------------------------------------------- quantiser


class VectorQuantizer(nn.Module):
    """Nearest code by d = |z|^2 + |e|^2 - 2 z.e on l2-normalised vectors (first minimum wins)."""

    def __init__(self, codebook_size: int, embed_dim: int, l2_norm: bool, show_usage: bool):
        super().__init__()
        self.l2_norm = l2_norm
        self.embedding = nn.Embedding(codebook_size, embed_dim)
        if show_usage:
            self.register_buffer("codebook_used", torch.zeros(USAGE_BUFFER))

    def codebook(self) -> torch.Tensor:
        """(K, C) code vectors as used: l2-normalised on every use when ``l2_norm``."""
        e = self.embedding.weight
        return F.normalize(e, p=2, dim=-1) if self.l2_norm else e

    def indices(self, z: torch.Tensor, rows_per_chunk: int = 8192) -> torch.Tensor:
        """z (B, C, h, w) -> (B, h*w) int64 code indices in raster order."""
        B, C, h, w = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, C)  # (B*h*w, C) raster order
            e = self.codebook().float()
            if self.l2_norm:
                flat = F.normalize(flat, p=2, dim=-1)
            e_sq = e.pow(2).sum(dim=1)  # (K,)
            out = torch.empty(flat.shape[0], dtype=torch.long, device=z.device)
            for s in range(0, flat.shape[0], rows_per_chunk):  # bounded (rows x K) distance matrix
                f = flat[s : s + rows_per_chunk]
                d = f.pow(2).sum(dim=1, keepdim=True) + e_sq - 2 * (f @ e.t())  # (rows, K)
                out[s : s + rows_per_chunk] = d.argmin(dim=1)
        return out.view(B, h * w)

    def lookup(self, tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """(B, h*w) indices -> (B, C, h, w) code vectors."""
        B = tokens.shape[0]
        h, w = grid
        q = self.codebook()[tokens]  # (B, h*w, C)
        return q.view(B, h, w, -1).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------- tokenizer


class VQTokenizer(nn.Module):
    """LlamaGen VQ tokenizer (implements ``visbpp.core.interfaces.ImageTokenizer``)."""

    family = "llamagen"

    def __init__(self, cfg: VQConfig):
        super().__init__()
        if cfg.image_size % cfg.downsample:
            raise ValueError(f"image_size {cfg.image_size} is not a multiple of the downsampling factor {cfg.downsample}")
        if len(cfg.encoder_ch_mult) != len(cfg.decoder_ch_mult):
            raise ValueError("encoder_ch_mult and decoder_ch_mult must have the same number of levels")
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.grid = cfg.grid
        self.tokens_per_image = cfg.grid * cfg.grid
        self.vocab_size = cfg.codebook_size
        self.preprocess_id = _preprocess_id(cfg.image_size)
        self.encoder = Encoder(cfg.ch, cfg.encoder_ch_mult, cfg.num_res_blocks, cfg.in_channels, cfg.z_channels)
        self.decoder = Decoder(cfg.ch, cfg.decoder_ch_mult, cfg.num_res_blocks, cfg.out_channels, cfg.z_channels)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.codebook_embed_dim, cfg.codebook_l2_norm, cfg.codebook_show_usage)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_embed_dim, cfg.z_channels, 1)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return _preprocess(image, self.image_size)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, embed_dim, h, w) pre-quantisation latent (quant_conv output)."""
        return self.quant_conv(self.encoder(x))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"encode expects (B, {self.cfg.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-1] % self.cfg.downsample or x.shape[-2] % self.cfg.downsample:
            raise ValueError(f"image side must be a multiple of {self.cfg.downsample}, got {tuple(x.shape[-2:])}")
        return self.quantize.indices(self.latent(x))

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        if tokens.ndim != 2:
            raise ValueError(f"decode expects (B, L) tokens, got {tuple(tokens.shape)}")
        if grid is None:
            side = int(round(tokens.shape[1] ** 0.5))
            if side * side != tokens.shape[1]:
                raise ValueError(f"cannot infer a square grid from L={tokens.shape[1]}; pass grid=(h, w)")
            grid = (side, side)
        check_token_values(tokens, self.vocab_size)
        return self.decoder(self.post_quant_conv(self.quantize.lookup(tokens, grid)))
