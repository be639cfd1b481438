"""Taming VQGAN: encoder, ``quant_conv``, nearest-code quantizer, ``post_quant_conv``, decoder.

Attribute names equal the official state-dict keys (``encoder.*``, ``quant_conv.*``,
``quantize.embedding.weight``, ``post_quant_conv.*``, ``decoder.*``). Tokens are the code
indices of the latent grid in raster order (row-major), the order the GPT consumes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from ..common import Decoder, Encoder
from . import preprocess as _pp


@dataclass
class VQGANConfig:
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    in_channels: int = 3
    out_ch: int = 3
    resolution: int = 256          # S, the input side
    z_channels: int = 256
    double_z: bool = False
    dropout: float = 0.0
    n_embed: int = 16384           # codebook size
    embed_dim: int = 256           # code dimension
    image_size: int = 256

    @property
    def latent_hw(self) -> tuple[int, int]:
        side = self.resolution // 2 ** (len(self.ch_mult) - 1)
        return side, side

    @property
    def tokens_per_image(self) -> int:
        h, w = self.latent_hw
        return h * w

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "VQGANConfig":
        """From the family config (``{"tokenizer": {"ddconfig": ..., "n_embed", "embed_dim"}, ...}``)."""
        tok = config["tokenizer"]
        dd = tok["ddconfig"]
        if dd.get("double_z", False):
            raise ValueError("taming VQGAN config: double_z must be false (the VQModel quantises z_channels)")
        res = int(dd["resolution"])
        return cls(
            ch=int(dd["ch"]), ch_mult=tuple(int(m) for m in dd["ch_mult"]), num_res_blocks=int(dd["num_res_blocks"]),
            attn_resolutions=tuple(int(r) for r in dd["attn_resolutions"]), in_channels=int(dd.get("in_channels", 3)),
            out_ch=int(dd.get("out_ch", 3)), resolution=res, z_channels=int(dd["z_channels"]),
            dropout=float(dd.get("dropout", 0.0)), n_embed=int(tok["n_embed"]), embed_dim=int(tok["embed_dim"]),
            image_size=int(config.get("image_size", res)),
        )


class VectorQuantizer(nn.Module):
    """Nearest code by squared distance ||z||^2 + ||e||^2 - 2 z.e in float32; ties -> lowest index."""

    def __init__(self, n_embed: int, embed_dim: int, rows_per_chunk: int = 4096):
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)
        self.rows_per_chunk = rows_per_chunk

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, C, H, W) -> (B, H*W) int64 code indices in raster order."""
        B, C, H, W = z.shape
        zf = z.permute(0, 2, 3, 1).reshape(B * H * W, C).float()  # (B*H*W, C), ordered b, h, w
        e = self.embedding.weight.float()                          # (n, C)
        e2 = (e * e).sum(1)                                        # (n,)
        out = torch.empty(zf.shape[0], dtype=torch.long, device=z.device)
        for s in range(0, zf.shape[0], self.rows_per_chunk):
            zc = zf[s : s + self.rows_per_chunk]
            d = (zc * zc).sum(1, keepdim=True) + e2[None, :] - 2.0 * (zc @ e.t())  # (rows, n)
            out[s : s + zc.shape[0]] = torch.argmin(d, dim=1)
        return out.view(B, H * W)

    def lookup(self, indices: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """(B, H*W) -> (B, C, H, W) code vectors."""
        B = indices.shape[0]
        q = self.embedding(indices)                            # (B, H*W, C)
        return q.view(B, hw[0], hw[1], -1).permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


class VQGAN(nn.Module):
    """The taming VQModel used as an :class:`~visbpp.core.interfaces.ImageTokenizer`.

    ``encode``/``decode`` always run in float32 with autocast disabled, so that tokens
    do not depend on an outer mixed-precision context.
    """

    family = "taming"

    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        self.cfg = cfg
        dd = dict(ch=cfg.ch, ch_mult=cfg.ch_mult, num_res_blocks=cfg.num_res_blocks,
                  attn_resolutions=cfg.attn_resolutions, resolution=cfg.resolution, z_channels=cfg.z_channels)
        self.encoder = Encoder(in_channels=cfg.in_channels, **dd)
        self.decoder = Decoder(out_ch=cfg.out_ch, **dd)
        self.quantize = VectorQuantizer(cfg.n_embed, cfg.embed_dim)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.image_size = cfg.image_size
        self.tokens_per_image = cfg.tokens_per_image
        self.vocab_size = cfg.n_embed
        self.preprocess_id = _pp.preprocess_id(cfg.image_size)

    def preprocess(self, image) -> torch.Tensor:
        return _pp.preprocess_image(image, self.image_size)

    def _device_type(self) -> str:
        return self.quant_conv.weight.device.type

    @torch.inference_mode()
    def pre_quant(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, embed_dim, h, w) ``quant_conv`` output, float32."""
        with torch.autocast(device_type=self._device_type(), enabled=False):
            return self.quant_conv(self.encoder(x.float()))

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"taming VQGAN.encode expects (B, {self.cfg.in_channels}, S, S), got {tuple(x.shape)}")
        with torch.autocast(device_type=self._device_type(), enabled=False):
            return self.quantize.indices(self.pre_quant(x))  # (B, h*w) raster

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"taming VQGAN.decode expects (B, {self.tokens_per_image}) tokens, got {tuple(tokens.shape)}")
        with torch.autocast(device_type=self._device_type(), enabled=False):
            q = self.quantize.lookup(tokens.long(), self.cfg.latent_hw)  # (B, C, h, w)
            return self.decoder(self.post_quant_conv(q))
