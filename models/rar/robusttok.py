"""RobusTok tokenizer: ViT encoder with latent tokens, l2-normalised VQ, ViT decoder.

Attribute names equal the inference keys of RobusTok's ``main-train.pt`` / ``post-train.pt``
(``encoder.*``, ``quant_conv.*``, ``quantize.embedding.weight``, ``post_quant_conv.*``,
``decoder.*``); the training-only ``semantic_model.*`` and ``quantize.ema_vocab_hit_SV`` are
dropped by the loader. Input in [-1, 1]; decoder output unclamped.
"""

from __future__ import annotations

import torch
from torch import nn

from ..vit_blocks import Block
from .config import RobusTokConfig
from .maskgit_vqgan import Quantizer
from .preprocess import robusttok_preprocess, robusttok_preprocess_id


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, stride=patch)


class ViT(nn.Module):
    """``cls_token``, ``pos_embed`` (1, 1 + N, D), [``patch_embed``], ``blocks``, ``norm``."""

    def __init__(self, cfg: RobusTokConfig, patch_embed: bool):
        super().__init__()
        D = cfg.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.num_patches, D))
        if patch_embed:
            self.patch_embed = PatchEmbed(cfg.patch_size, D)
        self.blocks = nn.ModuleList([Block(D, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(D, eps=1e-6)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def level_index(first: int, second: int) -> torch.Tensor:
    """(1, first + second) int64: 0 for the image-side tokens, 1 for the latent side (``lvl1LC``)."""
    return torch.cat([torch.zeros(first, dtype=torch.long), torch.ones(second, dtype=torch.long)]).view(1, -1)


class ViTEncoder(nn.Module):
    """[cls, N patches, M latents] with level embeddings -> ViT -> the M latent outputs."""

    def __init__(self, cfg: RobusTokConfig):
        super().__init__()
        D, N, M = cfg.embed_dim, cfg.num_patches, cfg.num_latent_tokens
        self.model = ViT(cfg, patch_embed=True)
        self.latent_tokens = nn.Parameter(torch.zeros(1, M, D))
        self.lvl_embed = nn.Embedding(2, D)
        self.register_buffer("lvl1LC", level_index(N + 1, M))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        m = self.model
        patches = m.patch_embed.proj(x).flatten(2).transpose(1, 2)  # (B, N, D) row-major
        pos = m.pos_embed  # (1, 1 + N, D)
        img = torch.cat([m.cls_token.expand(B, -1, -1), patches], 1) + pos  # (B, 1 + N, D)
        M = self.latent_tokens.shape[1]
        lat = (self.latent_tokens + pos[:, 1:1 + M]).expand(B, -1, -1)  # (B, M, D)
        h = torch.cat([img, lat], 1) + self.lvl_embed(self.lvl1LC)  # (B, 1 + N + M, D)
        return m.run(h)[:, -M:]  # (B, M, D)


class ViTDecoder(nn.Module):
    """[cls, N mask tokens, cls, M latents] with level embeddings -> ViT -> N patch outputs -> pixels."""

    def __init__(self, cfg: RobusTokConfig):
        super().__init__()
        D, N, M = cfg.embed_dim, cfg.num_patches, cfg.num_latent_tokens
        self.patch = cfg.patch_size
        self.model = ViT(cfg, patch_embed=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.lvl_embed = nn.Embedding(2, D)
        self.register_buffer("lvl1LC", level_index(N + 1, M + 1))
        self.to_pixel = nn.Module()
        self.to_pixel.model = nn.Linear(D, 3 * self.patch * self.patch)

    def forward(self, lat: torch.Tensor) -> torch.Tensor:
        B, M, D = lat.shape
        m = self.model
        pos = m.pos_embed  # (1, 1 + N, D)
        N = pos.shape[1] - 1
        cls = (m.cls_token + pos[:, :1]).expand(B, -1, -1)
        masks = (self.mask_token + pos[:, 1:]).expand(B, -1, -1)  # (B, N, D)
        h = torch.cat([cls, masks, cls, lat + pos[:, 1:1 + M]], 1) + self.lvl_embed(self.lvl1LC)  # (B, N + M + 2, D)
        h = m.run(h)[:, 1:1 + N]  # (B, N, D)
        p, g = self.patch, int(round(N ** 0.5))
        pix = self.to_pixel.model(h).view(B, g, g, p, p, 3)  # (row, col, row in patch, col in patch, channel)
        return pix.permute(0, 5, 1, 3, 2, 4).reshape(B, 3, g * p, g * p)


class RobusTokTokenizer(nn.Module):
    """:class:`~visbpp.core.interfaces.ImageTokenizer` for RobusTok-RAR: [-1, 1] input, raster latent codes."""

    family = "rar"

    def __init__(self, cfg: RobusTokConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ViTEncoder(cfg)
        self.quant_conv = nn.Conv2d(cfg.embed_dim, cfg.codebook_embed_dim, 1)
        self.quantize = Quantizer(cfg.codebook_size, cfg.codebook_embed_dim, l2_norm=True)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_embed_dim, cfg.embed_dim, 1)
        self.decoder = ViTDecoder(cfg)
        self.image_size = cfg.img_size
        self.tokens_per_image = cfg.num_latent_tokens
        self.vocab_size = cfg.codebook_size
        self.preprocess_id = robusttok_preprocess_id(cfg.img_size)

    def preprocess(self, image) -> torch.Tensor:
        return robusttok_preprocess(image, self.image_size)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> z (B, E, g, g) before quantisation, fp32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            h = self.encoder(x.float())  # (B, M, D)
            B, M, D = h.shape
            g = self.cfg.grid
            return self.quant_conv(h.transpose(1, 2).reshape(B, D, g, g))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize.codes(self.latent(x))

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            q = self.quantize.lookup(tokens, self.cfg.grid)  # (B, E, g, g) l2-normalised codes
            lat = self.post_quant_conv(q).flatten(2).transpose(1, 2)  # (B, M, D)
            return self.decoder(lat)
