"""GigaTok 1-D VQ tokenizer: CNN encoder -> 2-D-to-1-D query transformer -> l2-normalised VQ.

Attribute names equal the official state-dict keys (``encoder.conv_blocks.i.res.j``,
``s2to1encoder.transformer.i.self_attn.in_proj_weight``, ``quantize.embedding.weight``,
``s1to2decoder.distill_mlp.k``, ``decoder.adaptive.k.gamma``...). Token j of an image is
latent query j (coarse-to-fine by construction of the initial queries); that is the order
the GPT consumes. Only ``encoder``, ``s2to1encoder``, ``quant_conv`` and the codebook are
needed to encode; the decoder side serves ``decode`` (reconstructions) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from visbpp.core.errors import ConfigError

from ..common import ResnetBlock, group_norm
from ..llamagen.preprocess import preprocess as _preprocess
from ..llamagen.preprocess import preprocess_id as _preprocess_id
from ..llamagen.tokenizer import CodebookCNNConfig, Encoder, VectorQuantizer, check_token_values


@dataclass(frozen=True)
class ViTSize:
    width: int
    num_layers: int
    num_heads: int


@dataclass(frozen=True)
class TokenizerConfig(CodebookCNNConfig):
    z_channels: int = 256
    num_latent_tokens: int = 256
    ch: int = 128                 # CNN base width (hard-wired upstream)
    num_res_blocks: int = 2       # per encoder level (decoder levels have one more)
    encoder_vit: ViTSize = ViTSize(768, 12, 12)
    decoder_vit: ViTSize = ViTSize(1024, 24, 16)
    distill_depth: int = 3
    out_inner_dim: int = 768      # width of the distillation target (training only)
    image_size: int = 256


# --------------------------------------------------------------------------- CNN encoder / decoder


class D2SUpsampler(nn.Module):
    """3x3 ``conv1`` to 4x the width, then depth-to-space (block 2, DCR: channel (2i+j)*C + c -> (2h+i, 2w+j))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 4 * channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        B, C4, H, W = y.shape
        C = C4 // 4
        y = y.view(B, 2, 2, C, H, W).permute(0, 3, 4, 1, 5, 2)  # (B, C, H, i, W, j)
        return y.reshape(B, C, 2 * H, 2 * W)


class AdaptiveGroupNorm(nn.Module):
    """GroupNorm (no affine) of x, times ``gamma``(std of cond) plus ``beta``(mean of cond), per channel."""

    def __init__(self, cond_channels: int, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.gn = nn.GroupNorm(32, channels, eps=eps, affine=False)
        self.gamma = nn.Linear(cond_channels, channels)
        self.beta = nn.Linear(cond_channels, channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        flat = cond.flatten(2)  # (B, C, G*G)
        sigma = (flat.var(dim=-1, unbiased=True) + self.eps).sqrt()
        mu = flat.mean(dim=-1)
        return self.gn(x) * self.gamma(sigma)[:, :, None, None] + self.beta(mu)[:, :, None, None]


class _DecLevel(nn.Module):
    """``res.j`` ResnetBlocks (+ ``upsample`` depth-to-space)."""

    def __init__(self, c_in: int, c_out: int, n_res: int, upsample: bool):
        super().__init__()
        self.res = nn.ModuleList()
        for _ in range(n_res):
            self.res.append(ResnetBlock(c_in, c_out))
            c_in = c_out
        if upsample:
            self.upsample = D2SUpsampler(c_out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.res:
            h = block(h)
        return self.upsample(h) if hasattr(self, "upsample") else h


class Decoder(nn.Module):
    """``conv_in``, ``mid.0/1``, ``conv_blocks.i`` deepest level first, each preceded by ``adaptive.i``; ``norm_out``, ``conv_out``."""

    def __init__(self, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, z_channels: int):
        super().__init__()
        n = len(ch_mult)
        c = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, c, 3, padding=1)
        self.mid = nn.ModuleList([ResnetBlock(c, c), ResnetBlock(c, c)])
        self.conv_blocks = nn.ModuleList()
        self.adaptive = nn.ModuleList()
        for i in range(n):
            c_out = ch * ch_mult[n - 1 - i]
            self.adaptive.append(AdaptiveGroupNorm(z_channels, c))
            self.conv_blocks.append(_DecLevel(c, c_out, num_res_blocks + 1, i != n - 1))
            c = c_out
        self.norm_out = group_norm(c)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(r)
        for block in self.mid:
            h = block(h)
        for adaptive, level in zip(self.adaptive, self.conv_blocks):
            h = level(adaptive(h, r))
        return self.conv_out(F.silu(self.norm_out(h)))


# --------------------------------------------------------------------------- query transformers


class DecoderLayer(nn.Module):
    """Pre-norm DETR-style layer: self-attention, cross-attention to a memory, GELU MLP (hidden 4W)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.linear1 = nn.Linear(width, 4 * width)
        self.linear2 = nn.Linear(4 * width, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.norm3 = nn.LayerNorm(width)

    def forward(self, q: torch.Tensor, mem: torch.Tensor, pos_q: torch.Tensor, pos_m: torch.Tensor) -> torch.Tensor:
        a = self.norm1(q)
        q = q + self.self_attn(a + pos_q, a + pos_q, a, need_weights=False)[0]
        b = self.norm2(q)
        q = q + self.multihead_attn(b + pos_q, mem + pos_m, mem, need_weights=False)[0]
        return q + self.linear2(F.gelu(self.linear1(self.norm3(q))))


def multi_level_queries(mem: torch.Tensor, grid: int, num_tokens: int) -> torch.Tensor:
    """(B, G*G, W) memory -> (B, N, W) initial queries: average pools over 2^l block grids, coarse to fine.

    Group i (i = 0..log2 N) pools level l = max(i-1, 0) with h_b = 2^floor(l/2) block rows and
    w_b = 2^floor((l+1)/2) block columns, flattened in raster order.
    """
    B, _, W = mem.shape
    m = mem.transpose(1, 2).reshape(B, W, grid, grid)
    groups = []
    for i in range(num_tokens.bit_length()):
        lvl = max(i - 1, 0)
        hb, wb = 2 ** (lvl // 2), 2 ** ((lvl + 1) // 2)
        kernel = (grid // hb, grid // wb)
        groups.append(F.avg_pool2d(m, kernel, stride=kernel).flatten(2))  # (B, W, hb*wb)
    out = torch.cat(groups, dim=2).transpose(1, 2)
    if out.shape[1] != num_tokens:
        raise ValueError(f"num_latent_tokens {num_tokens} is not a power of two the multi-level query init can build")
    return out


class ViTEncoder(nn.Module):
    """2-D grid -> N latent tokens: ``ln_pre``, ``encoder_embed``, queries (``global_proj``), ``transformer.i``, ``ln_post``, 1x1 ``conv_out``."""

    def __init__(self, size: ViTSize, grid: int, num_tokens: int, z_channels: int):
        super().__init__()
        W = size.width
        self.grid, self.num_tokens = grid, num_tokens
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid, 1, W))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(num_tokens, 1, W))
        self.encoder_embed = nn.Linear(z_channels, W)
        self.ln_pre = nn.LayerNorm(z_channels)
        self.global_proj = nn.Linear(W, W)
        self.transformer = nn.ModuleList(DecoderLayer(W, size.num_heads) for _ in range(size.num_layers))
        self.ln_post = nn.LayerNorm(W)
        self.conv_out = nn.Conv2d(W, z_channels, 1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        mem = self.encoder_embed(self.ln_pre(s.flatten(2).transpose(1, 2)))  # (B, G*G, W), raster order
        q = self.global_proj(multi_level_queries(mem, self.grid, self.num_tokens))  # (B, N, W)
        pos_q = self.latent_token_positional_embedding.transpose(0, 1)  # (1, N, W)
        pos_m = self.positional_embedding.transpose(0, 1)  # (1, G*G, W)
        for layer in self.transformer:
            q = layer(q, mem, pos_q, pos_m)
        q = self.ln_post(q)
        return self.conv_out(q.transpose(1, 2).unsqueeze(2).contiguous())  # (B, C, 1, N)


class ViTDecoder(nn.Module):
    """N latent tokens -> 2-D grid: G*G queries (copies of the first embedded token) attend to the tokens."""

    def __init__(self, size: ViTSize, grid: int, num_tokens: int, z_channels: int, distill_dim: int):
        super().__init__()
        W = size.width
        self.grid = grid
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid, 1, W))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(num_tokens, 1, W))
        self.decoder_embed = nn.Linear(z_channels, W)
        self.ln_pre = nn.LayerNorm(z_channels)
        self.transformer = nn.ModuleList(DecoderLayer(W, size.num_heads) for _ in range(size.num_layers))
        self.ln_post = nn.LayerNorm(W)
        self.conv_out = nn.Conv2d(W, z_channels, 3, padding=1)
        # semantic-regularisation head, used only by the training loss (kept for strict loading)
        self.distill_mlp = nn.Sequential(
            nn.Linear(W, 4 * W), nn.SiLU(), nn.Linear(4 * W, 4 * W), nn.SiLU(), nn.Linear(4 * W, distill_dim)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        mem = self.decoder_embed(self.ln_pre(z.flatten(2).transpose(1, 2)))  # (B, N, W)
        B, _, W = mem.shape
        q = mem[:, :1].expand(B, self.grid * self.grid, W)
        pos_q = self.positional_embedding.transpose(0, 1)
        pos_m = self.latent_token_positional_embedding.transpose(0, 1)
        for layer in self.transformer:
            q = layer(q, mem, pos_q, pos_m)
        q = self.ln_post(q)
        grid = q.transpose(1, 2).reshape(B, W, self.grid, self.grid).contiguous()  # NCHW: channels-last GroupNorm is less precise
        return self.conv_out(grid)  # (B, C, G, G)


# --------------------------------------------------------------------------- tokenizer


ENCODE_PREFIXES = ("encoder.", "s2to1encoder.", "quant_conv.", "quantize.embedding.")


class GigaTokTokenizer(nn.Module):
    """GigaTok 1-D tokenizer (implements ``visbpp.core.interfaces.ImageTokenizer``).

    ``with_decoder=False`` builds only the encode path (encoder, s2to1encoder, quant_conv, codebook);
    ``decoder_source`` (set by the loader) then fetches the decoder side on the first ``decode``.
    """

    family = "gigatok"

    def __init__(self, cfg: TokenizerConfig, with_decoder: bool = True):
        super().__init__()
        if cfg.image_size % cfg.downsample:
            raise ConfigError(f"image_size {cfg.image_size} is not a multiple of the downsampling factor {cfg.downsample}")
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.tokens_per_image = cfg.num_latent_tokens
        self.vocab_size = cfg.codebook_size
        self.preprocess_id = "gigatok:" + _preprocess_id(cfg.image_size)
        self.has_decoder = with_decoder
        self.decoder_source: Callable[[], GigaTokTokenizer] | None = None  # a full tokenizer, loaded on demand
        g, n, c = cfg.grid, cfg.num_latent_tokens, cfg.z_channels
        self.encoder = Encoder(cfg.ch, cfg.encoder_ch_mult, cfg.num_res_blocks, 3, c, attn=False)  # LlamaGen's, no attention
        self.s2to1encoder = ViTEncoder(cfg.encoder_vit, g, n, c)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.codebook_embed_dim, cfg.codebook_l2_norm,
                                        cfg.codebook_show_usage and with_decoder)
        self.quant_conv = nn.Conv2d(c, cfg.codebook_embed_dim, 1)
        if with_decoder:
            self.post_quant_conv = nn.Conv2d(cfg.codebook_embed_dim, c, 1)
            self.s1to2decoder = ViTDecoder(cfg.decoder_vit, g, n, c, cfg.out_inner_dim)
            self.decoder = Decoder(cfg.ch, cfg.decoder_ch_mult, cfg.num_res_blocks, c)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return _preprocess(image, self.image_size)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, embed_dim, 1, N) pre-quantisation latent (quant_conv output)."""
        return self.quant_conv(self.s2to1encoder(self.encoder(x.contiguous())))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        S = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, S, S):
            raise ValueError(f"encode expects (B, 3, {S}, {S}) (this tokenizer only takes {S}x{S}), got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = self.latent(x.float())
        return self.quantize.indices(z)  # (B, N), latent-query order

    def _attach_decoder(self) -> None:
        if self.decoder_source is None:
            raise RuntimeError("this tokenizer was loaded for encoding only (no decoder); load it with the decoder to decode")
        full = self.decoder_source()
        device = self.quant_conv.weight.device
        for name in ("post_quant_conv", "s1to2decoder", "decoder"):
            setattr(self, name, getattr(full, name).to(device))
        self.has_decoder, self.decoder_source = True, None

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if not self.has_decoder:
            self._attach_decoder()
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"decode expects (B, {self.tokens_per_image}) tokens, got {tuple(tokens.shape)}")
        check_token_values(tokens, self.vocab_size)
        q = self.quantize.lookup(tokens, (1, self.tokens_per_image))  # (B, 8, 1, N)
        return self.decoder(self.s1to2decoder(self.post_quant_conv(q)))
