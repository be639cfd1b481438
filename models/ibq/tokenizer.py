"""IBQ tokenizer: taming-lineage encoder/decoder with the index-backpropagation quantiser.

The code of a latent vector h is argmax_n <h, e_n> over the codebook rows e_n (a plain dot
product: no normalisation, not the L2-nearest code); decoding looks the rows up again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..common import Decoder, Encoder
from .preprocess import PREPROCESS_ID, preprocess_image


@dataclass
class TokenizerConfig:
    ch: int = 128
    ch_mult: Sequence[int] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 4
    attn_resolutions: Sequence[int] = (16,)
    in_channels: int = 3
    out_ch: int = 3
    z_channels: int = 256
    resolution: int = 256
    n_embed: int = 16384
    embed_dim: int = 256
    image_size: int = 256

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TokenizerConfig":
        t = config["tokenizer"]
        dd = t["ddconfig"]
        if dd.get("double_z"):
            raise ValueError("IBQ: double_z=True is not an IBQ tokenizer configuration")
        if t.get("l2_normalize"):
            raise ValueError("IBQ: l2_normalize=True is not supported (the released tokenizers use False)")
        if int(dd["resolution"]) != int(config["image_size"]):
            raise ValueError(f"IBQ: ddconfig resolution {dd['resolution']} must equal image_size {config['image_size']}"
                             " (attention placement follows it)")
        return cls(ch=dd["ch"], ch_mult=tuple(dd["ch_mult"]), num_res_blocks=dd["num_res_blocks"],
                   attn_resolutions=tuple(dd["attn_resolutions"]), in_channels=dd["in_channels"],
                   out_ch=dd["out_ch"], z_channels=dd["z_channels"], resolution=dd["resolution"],
                   n_embed=t["n_embed"], embed_dim=t["embed_dim"], image_size=int(config["image_size"]))


class IndexQuantizer(nn.Module):
    """Codebook ``embedding`` (n_embed, embed_dim); code = argmax of the dot product, first maximum on ties."""

    def __init__(self, n_embed: int, embed_dim: int, chunk: int = 1024):
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)
        self.chunk = chunk  # latent vectors scored per step (bounds the N x n_embed score matrix)

    def codes(self, h: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, h*w) int64 in raster order."""
        B, C, H, W = h.shape
        flat = h.permute(0, 2, 3, 1).reshape(B * H * W, C)  # (N, C)
        weight = self.embedding.weight
        with torch.autocast(device_type=h.device.type, enabled=False):
            out = torch.cat([(flat[s:s + self.chunk].float() @ weight.float().t()).argmax(-1)
                             for s in range(0, flat.shape[0], self.chunk)])
        return out.view(B, H * W)

    def lookup(self, tokens: torch.Tensor, grid: int) -> torch.Tensor:
        """(B, h*w) -> (B, embed_dim, h, w)."""
        B = tokens.shape[0]
        return self.embedding(tokens).view(B, grid, grid, -1).permute(0, 3, 1, 2)


class IBQTokenizer(nn.Module):
    family = "ibq"

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        dd = dict(ch=cfg.ch, ch_mult=tuple(cfg.ch_mult), num_res_blocks=cfg.num_res_blocks,
                  attn_resolutions=tuple(cfg.attn_resolutions), resolution=cfg.resolution, z_channels=cfg.z_channels)
        self.encoder = Encoder(in_channels=cfg.in_channels, **dd)
        self.decoder = Decoder(out_ch=cfg.out_ch, **dd)
        self.quantize = IndexQuantizer(cfg.n_embed, cfg.embed_dim)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.image_size = cfg.image_size
        self.grid = cfg.image_size // 2 ** (len(cfg.ch_mult) - 1)
        self.tokens_per_image = self.grid * self.grid
        self.vocab_size = cfg.n_embed
        self.preprocess_id = f"{PREPROCESS_ID}@{cfg.image_size}"
        self.weights_source = "random init"

    def preprocess(self, image) -> torch.Tensor:
        return preprocess_image(image, self.image_size)

    @torch.inference_mode()
    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> quant_conv output (B, embed_dim, h, w), the quantiser's input."""
        S = self.image_size
        if x.dim() != 4 or x.shape[1:] != (3, S, S):
            raise ValueError(f"IBQ tokenizer expects (B, 3, {S}, {S}) input, got {tuple(x.shape)}")
        return self.quant_conv(self.encoder(x))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize.codes(self.encode_latent(x))

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"tokens must have shape (B, {self.tokens_per_image}), got {tuple(tokens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"token values must lie in [0, {self.vocab_size})")
        q = self.quantize.lookup(tokens.long(), self.grid)
        return self.decoder(self.post_quant_conv(q))
