"""RQ-VAE: taming-lineage encoder/decoder around a residual quantiser (RQ-Transformer's tokenizer).

The quantiser replaces the latent vector of every position by D codes of ONE shared codebook
(or D codebooks when ``shared_codebook`` is false): code d is the nearest codebook row to the
residual left by codes 0..d-1. Scoring uses the hard (argmin) codes only; the training-time
EMA update, code restart and stochastic codes do not exist here.

Attribute names equal the official state-dict keys (``encoder.*``, ``decoder.*``,
``quantizer.codebooks.<d>.{weight,cluster_size_ema,embed_ema}``, ``quant_conv``,
``post_quant_conv``). With a shared codebook the same module sits at every
``quantizer.codebooks.<d>``, so the state dict lists one tensor under D names while the
parameter count counts it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..common import Decoder, Encoder
from .preprocess import preprocess_id, preprocess_image


@dataclass
class RQVAEConfig:
    """The stage-1 ``arch`` section: ``hparams`` (quantiser) + ``ddconfig`` (encoder/decoder)."""

    # encoder/decoder (ddconfig)
    resolution: int = 256
    in_channels: int = 3
    out_ch: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (8,)
    z_channels: int = 256
    double_z: bool = False
    # quantiser (hparams)
    embed_dim: int = 256                                  # channels of the latent z (quant_conv output)
    n_embed: int = 16384                                  # codebook rows (a zero padding row is added)
    latent_shape: tuple[int, int, int] = (8, 8, 256)      # (H, W, embed_dim) of z
    code_shape: tuple[int, int, int] = (8, 8, 4)          # (h, w, D): positions and depth of the codes
    shared_codebook: bool = True
    ddconfig: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_arch(cls, arch: Mapping[str, Any]) -> "RQVAEConfig":
        """From the stage-1 ``arch`` mapping (``{"hparams": {...}, "ddconfig": {...}}``)."""
        if "hparams" not in arch or "ddconfig" not in arch:
            raise ValueError(
                "RQ-VAE config: expected the stage-1 'arch' section with 'hparams' and 'ddconfig' "
                f"(as in a conformance config.json 'tokenizer' entry); got keys {sorted(arch)}"
            )
        hp, dd = arch["hparams"], arch["ddconfig"]
        if hp.get("bottleneck_type", "rq") != "rq":
            raise ValueError(f"RQ-VAE config: bottleneck_type {hp['bottleneck_type']!r} is not supported (only 'rq')")
        if isinstance(hp["n_embed"], (list, tuple)):
            raise ValueError("RQ-VAE config: per-depth codebook sizes (list n_embed) are not supported")
        if dd.get("double_z", False):
            raise ValueError("RQ-VAE config: double_z=true is not an RQ-VAE setting")
        cfg = cls(
            resolution=int(dd["resolution"]),
            in_channels=int(dd.get("in_channels", 3)),
            out_ch=int(dd.get("out_ch", 3)),
            ch=int(dd["ch"]),
            ch_mult=tuple(int(m) for m in dd["ch_mult"]),
            num_res_blocks=int(dd["num_res_blocks"]),
            attn_resolutions=tuple(int(r) for r in dd["attn_resolutions"]),
            z_channels=int(dd["z_channels"]),
            embed_dim=int(hp["embed_dim"]),
            n_embed=int(hp["n_embed"]),
            latent_shape=tuple(int(s) for s in hp["latent_shape"]),
            code_shape=tuple(int(s) for s in hp["code_shape"]),
            shared_codebook=bool(hp.get("shared_codebook", False)),
            ddconfig=dict(dd),
        )
        cfg.validate()
        return cfg

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def divisor(self) -> tuple[int, int]:
        """(rH, rW): latent positions folded into one code position (1, 1 for every released model)."""
        return self.latent_shape[0] // self.code_shape[0], self.latent_shape[1] // self.code_shape[1]

    @property
    def code_dim(self) -> int:
        """Dimension of a codebook vector: rH * rW * latent channels."""
        rh, rw = self.divisor
        return rh * rw * self.latent_shape[2]

    def validate(self) -> None:
        grid = self.resolution // self.downsample
        if tuple(self.latent_shape[:2]) != (grid, grid) or self.latent_shape[2] != self.embed_dim:
            raise ValueError(
                f"RQ-VAE config: latent_shape {list(self.latent_shape)} does not match the encoder output "
                f"[{grid}, {grid}, {self.embed_dim}] (resolution {self.resolution} / {self.downsample}, embed_dim)"
            )
        if any(l % c for l, c in zip(self.latent_shape[:2], self.code_shape[:2])):
            raise ValueError(f"RQ-VAE config: code_shape {list(self.code_shape)} does not divide latent_shape {list(self.latent_shape)}")


# --------------------------------------------------------------------------- quantiser


class VQEmbedding(nn.Module):
    """One codebook: ``weight`` (n_embed + 1, dim), last row a zero padding row never selected.

    ``cluster_size_ema`` and ``embed_ema`` are training-time EMA buffers kept only so that the
    official state dict loads strictly; inference never reads them.
    """

    def __init__(self, n_embed: int, dim: int):
        super().__init__()
        self.n_embed = n_embed
        self.weight = nn.Parameter(torch.randn(n_embed + 1, dim))
        with torch.no_grad():
            self.weight[-1].zero_()
        self.register_buffer("cluster_size_ema", torch.zeros(n_embed))
        self.register_buffer("embed_ema", torch.zeros(n_embed, dim))

    def nearest(self, r: torch.Tensor) -> torch.Tensor:
        """r (..., dim) -> (...) int64 index of the nearest row among 0..n_embed-1 (first minimum).

        Squared distances ||r||^2 + ||e||^2 - 2 r.e in float32 with one matmul, autocast off.
        """
        with torch.autocast(device_type=r.device.type, enabled=False):
            e = self.weight[:-1].float()                         # (K, dim), padding row excluded
            flat = r.float().reshape(-1, e.shape[1])             # (N, dim)
            d = torch.addmm(flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1)[None, :], flat, e.t(), alpha=-2.0)
            return d.argmin(dim=-1).reshape(r.shape[:-1])


class RQBottleneck(nn.Module):
    """Residual quantiser over D depths; ``codebooks`` holds D entries (the same module when shared)."""

    def __init__(self, cfg: RQVAEConfig):
        super().__init__()
        self.latent_shape = cfg.latent_shape
        self.code_shape = cfg.code_shape
        self.divisor = cfg.divisor
        depth = cfg.code_shape[2]
        if cfg.shared_codebook:
            book = VQEmbedding(cfg.n_embed, cfg.code_dim)
            self.codebooks = nn.ModuleList([book] * depth)
        else:
            self.codebooks = nn.ModuleList([VQEmbedding(cfg.n_embed, cfg.code_dim) for _ in range(depth)])

    def to_code_shape(self, z: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) latent -> (B, h, w, rH*rW*C): fold rH x rW latent cells into one position."""
        B, H, W, C = z.shape
        rh, rw = self.divisor
        z = z.reshape(B, H // rh, rh, W // rw, rw, C).permute(0, 1, 3, 2, 4, 5)  # (B, h, w, rH, rW, C)
        return z.reshape(B, H // rh, W // rw, rh * rw * C)

    def to_latent_shape(self, q: torch.Tensor) -> torch.Tensor:
        """(B, h, w, rH*rW*C) -> (B, H, W, C), inverse of :meth:`to_code_shape`."""
        B, h, w, _ = q.shape
        rh, rw = self.divisor
        C = self.latent_shape[2]
        q = q.reshape(B, h, w, rh, rw, C).permute(0, 1, 3, 2, 4, 5)  # (B, h, rH, w, rW, C)
        return q.reshape(B, h * rh, w * rw, C)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) latent -> (B, h, w, D) int64 hard residual codes."""
        r = self.to_code_shape(z).float().clone()
        out = []
        for book in self.codebooks:
            c = book.nearest(r)                       # (B, h, w)
            r = r - book.weight[c].float()
            out.append(c)
        return torch.stack(out, dim=-1)               # (B, h, w, D)

    def code_embeddings(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., D) int64 codes -> (..., D, dim): the raw codebook row of every code, per depth."""
        return torch.stack([book.weight[codes[..., d]] for d, book in enumerate(self.codebooks)], dim=-2)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, h, w, D) codes -> (B, H, W, C) quantised latent = sum over depths of the code vectors."""
        return self.to_latent_shape(self.code_embeddings(codes).sum(dim=-2))


# --------------------------------------------------------------------------- tokenizer


class RQVAE(nn.Module):
    """RQ-VAE tokenizer (implements ``visbpp.core.interfaces.ImageTokenizer``).

    Tokens: the (B, h, w, D) codes flattened row-major (depth fastest), L = h*w*D.
    """

    family = "rqtransformer"

    def __init__(self, cfg: RQVAEConfig):
        super().__init__()
        self.cfg = cfg
        dd = dict(
            ch=cfg.ch, ch_mult=cfg.ch_mult, num_res_blocks=cfg.num_res_blocks,
            attn_resolutions=cfg.attn_resolutions, resolution=cfg.resolution, z_channels=cfg.z_channels,
        )
        self.encoder = Encoder(in_channels=cfg.in_channels, double_z=False, **dd)
        self.decoder = Decoder(out_ch=cfg.out_ch, **dd)
        self.quantizer = RQBottleneck(cfg)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        h, w, depth = cfg.code_shape
        self.image_size = cfg.resolution
        self.code_shape = (h, w, depth)
        self.tokens_per_image = h * w * depth
        self.vocab_size = cfg.n_embed
        self.preprocess_id = preprocess_id(cfg.resolution)

    # -- interface

    def preprocess(self, image) -> torch.Tensor:
        return preprocess_image(image, self.image_size)

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, h*w*D) int64 codes, row-major over (h, w, D)."""
        codes = self.codes(x)                         # (B, h, w, D)
        return codes.reshape(codes.shape[0], -1)      # (B, L)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 -> (B, 3, S, S) unclamped reconstruction."""
        codes = self.unflatten(tokens)
        zq = self.quantizer.embed(codes)              # (B, H, W, C)
        zq = zq.to(self.post_quant_conv.weight.dtype).permute(0, 3, 1, 2)  # (B, C, H, W)
        return self.decoder(self.post_quant_conv(zq))

    # -- helpers

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, h, w, D) int64 hard residual codes."""
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels or tuple(x.shape[2:]) != (self.image_size,) * 2:
            raise ValueError(
                f"RQ-VAE encode: expected a (B, {self.cfg.in_channels}, {self.image_size}, {self.image_size}) "
                f"tensor, got {tuple(x.shape)}"
            )
        # Always full precision: reduced-precision convolutions can flip argmin near-ties.
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = self.quant_conv(self.encoder(x.to(self.quant_conv.weight.dtype)))  # (B, C, H, W)
            return self.quantizer.codes(z.permute(0, 2, 3, 1))                     # (B, h, w, D)

    def unflatten(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) flat tokens -> (B, h, w, D) codes, checking length and range."""
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"RQ tokens: expected (B, {self.tokens_per_image}), got {tuple(tokens.shape)}")
        return tokens.long().reshape(tokens.shape[0], *self.code_shape)

    def code_embeddings(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., D) codes -> (..., D, dim) raw codebook vectors (what the RQ-Transformer embeds)."""
        return self.quantizer.code_embeddings(codes)
