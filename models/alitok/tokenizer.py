"""AliTok tokenizer: ViT encoder with appended latent queries -> plain-L2 VQ -> ViT pixel decoder.

Attribute names equal the keys of ``AliTok.pth``: ``latent_tokens``, ``encoder.*``, ``decoder.*``,
``quantize.embedding.weight``. Token l of an image is latent query l: tokens 0..P-1 are the P
image-dependent prefix tokens, token P + r*g + c is patch (r, c), row-major; that is also the
AR order. Only ``latent_tokens``, ``encoder`` and the codebook make tokens; the decoder serves
``decode`` (reconstructions) only and may be loaded on first use. Input in [0, 1]; the decoder
ends in a sigmoid.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from visbpp.core.errors import DataError

from ..llamagen.tokenizer import check_token_values
from ..rar.maskgit_vqgan import Quantizer
from .config import TokenizerConfig, ViTSize
from .preprocess import preprocess, preprocess_id


class Attention(nn.Module):
    """Bidirectional attention: ``in_proj`` (features ordered (q|k|v) x head x head_dim), ``out_proj``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.in_proj(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4).float()  # 3 x (B, h, T, hd)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, hd)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, D).type_as(x))


class ResidualAttentionBlock(nn.Module):
    """x + attn(ln_1 x); x + mlp(ln_2 x) with mlp = ``c_fc`` -> GELU (erf) -> ``c_proj``."""

    def __init__(self, size: ViTSize, eps: float):
        super().__init__()
        W = size.width
        self.ln_1 = nn.LayerNorm(W, eps=eps)
        self.attn = Attention(W, size.num_heads)
        self.ln_2 = nn.LayerNorm(W, eps=eps)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(W, size.mlp_width)), ("gelu", nn.GELU()),
                                              ("c_proj", nn.Linear(size.mlp_width, W))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Patches (+ ``positional_embedding``) then the latent queries (+ their positions): ``ln_pre`` over
    both, the blocks, the last L outputs through ``ln_post`` and the 1x1 ``conv_out`` to the code dim."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        W, g, L = cfg.encoder.width, cfg.grid, cfg.num_tokens
        self.patch_embed = nn.Conv2d(3, W, cfg.patch_size, stride=cfg.patch_size)
        self.positional_embedding = nn.Parameter(torch.zeros(g * g, W))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(L, W))
        self.ln_pre = nn.LayerNorm(W, eps=cfg.ln_eps)
        self.transformer = nn.ModuleList(ResidualAttentionBlock(cfg.encoder, cfg.ln_eps) for _ in range(cfg.encoder.num_layers))
        self.ln_post = nn.LayerNorm(W, eps=cfg.ln_eps)
        self.conv_out = nn.Conv2d(W, cfg.code_dim, 1)

    def forward(self, x: torch.Tensor, latent_tokens: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) in [0, 1], latent_tokens (L, W) -> z (B, code_dim, 1, L)."""
        B = x.shape[0]
        patches = self.patch_embed(x).flatten(2).transpose(1, 2) + self.positional_embedding  # (B, g*g, W), row-major
        latents = (latent_tokens + self.latent_token_positional_embedding).expand(B, -1, -1)  # (B, L, W)
        h = self.ln_pre(torch.cat([patches, latents], dim=1))
        for block in self.transformer:
            h = block(h)
        n = patches.shape[1]
        h = self.ln_post(h[:, n:])  # (B, L, W): the latent positions
        return self.conv_out(h.transpose(1, 2).unsqueeze(3)).transpose(2, 3)  # (B, W, L, 1) -> (B, C, 1, L)


class Decoder(nn.Module):
    """Codes -> ``decoder_embed``, after the ``class_embedding`` tokens, + positions, ``ln_pre``, blocks;
    the last g*g outputs -> ``ln_post`` -> ``ffn.0`` (1x1 conv to patch pixels) -> unpatchify ->
    ``conv_out`` (1x1) -> sigmoid."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        W, n_cls = cfg.decoder.width, cfg.decoder_class_tokens
        self.grid, self.patch = cfg.grid, cfg.patch_size
        self.decoder_embed = nn.Linear(cfg.code_dim, W)
        self.class_embedding = nn.Parameter(torch.zeros(n_cls, W))
        self.latent_token_positional_embedding = nn.Parameter(torch.zeros(n_cls + cfg.num_tokens, W))
        self.ln_pre = nn.LayerNorm(W, eps=cfg.ln_eps)
        self.transformer = nn.ModuleList(ResidualAttentionBlock(cfg.decoder, cfg.ln_eps) for _ in range(cfg.decoder.num_layers))
        self.ln_post = nn.LayerNorm(W, eps=cfg.ln_eps)
        self.ffn = nn.Sequential(nn.Conv2d(W, cfg.patch_size * cfg.patch_size * 3, 1))
        self.conv_out = nn.Conv2d(3, 3, 1)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, L, code_dim) -> (B, 3, S, S) in (0, 1)."""
        B = codes.shape[0]
        g, p = self.grid, self.patch
        x = self.decoder_embed(codes)
        x = torch.cat([self.class_embedding.expand(B, -1, -1), x], dim=1) + self.latent_token_positional_embedding
        x = self.ln_pre(x)
        for block in self.transformer:
            x = block(x)
        x = self.ln_post(x[:, -g * g:])  # (B, g*g, W): cell (i // g, i % g)
        x = self.ffn(x.transpose(1, 2).reshape(B, -1, g, g).contiguous())  # (B, p*p*3, g, g), features (p1, p2, colour)
        x = x.view(B, p, p, 3, g, g).permute(0, 3, 4, 1, 5, 2).reshape(B, 3, g * p, g * p)  # (B, 3, h p1, w p2)
        return torch.sigmoid(self.conv_out(x))


class AliTokTokenizer(nn.Module):
    """The AliTok tokenizer (implements ``visbpp.core.interfaces.ImageTokenizer``).

    ``with_decoder=False`` builds only the encode path; ``decoder_source`` (set by the loader) then
    fetches the decoder on the first ``decode``.
    """

    family = "alitok"

    def __init__(self, cfg: TokenizerConfig, with_decoder: bool = True):
        super().__init__()
        self.cfg = cfg
        self.image_size = cfg.image_size
        self.tokens_per_image = cfg.num_tokens
        self.vocab_size = cfg.codebook_size
        self.preprocess_id = preprocess_id(cfg.image_size, cfg.preprocess)
        self.has_decoder = with_decoder
        self.decoder_source: Callable[[], AliTokTokenizer] | None = None  # a full tokenizer, loaded on demand
        self.encoder = Encoder(cfg)
        self.latent_tokens = nn.Parameter(torch.zeros(cfg.num_tokens, cfg.encoder.width))
        self.quantize = Quantizer(cfg.codebook_size, cfg.code_dim)  # plain squared-L2 argmin in fp32
        if with_decoder:
            self.decoder = Decoder(cfg)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return preprocess(image, self.image_size, self.cfg.preprocess)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1] -> z (B, code_dim, 1, L), fp32 (the quantiser's input)."""
        S = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, S, S):
            raise DataError(f"AliTok encode expects (B, 3, {S}, {S}) images, got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.encoder(x.float().contiguous(), self.latent_tokens)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):  # fp32 distances: bf16 ones flip near ties
            return self.quantize.codes(self.latent(x))  # (B, L): prefix tokens, then the grid row-major

    def _attach_decoder(self) -> None:
        if self.decoder_source is None:
            raise RuntimeError("this tokenizer was loaded for encoding only (no decoder); load it with the decoder to decode")
        self.decoder = self.decoder_source().decoder.to(self.latent_tokens.device)
        self.has_decoder, self.decoder_source = True, None

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) codes -> (B, 3, S, S) sigmoid output in (0, 1)."""
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise DataError(f"AliTok decode expects (B, {self.tokens_per_image}) tokens, got {tuple(tokens.shape)}")
        check_token_values(tokens, self.vocab_size)
        if not self.has_decoder:
            self._attach_decoder()
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return self.decoder(self.quantize.codebook()[tokens])
