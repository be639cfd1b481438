"""FlexVAE: LlamaGen's VQ-16 network (cosine codebook) tokenising an image as a pyramid of
independent scales, no residual.

The latent h = quant_conv(encoder(x)) is area-pooled to every scale p of the schedule (the last
included) and each pooled map is quantised on its own (l2-normalised vectors and codebook rows,
first minimum). Tokens: scales small to large, row-major inside a scale. The transformer's
teacher input for scale s+1 is scale s's normalised code vectors, bicubic-upsampled to p_{s+1}.
Only the last scale is decoded. Attribute names equal the keys of ``FlexVAE.pth["model"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from visbpp.core.errors import ConfigError

from ..llamagen.tokenizer import VQConfig, VQTokenizer, check_token_values
from .official import DEFAULT_SCHEDULE


@dataclass(frozen=True)
class FlexVAEConfig(VQConfig):
    """The VQ-16 arguments (upstream names), the input side and the scale schedule."""

    scale_schedule: tuple[int, ...] = DEFAULT_SCHEDULE

    def __post_init__(self) -> None:
        pn = self.scale_schedule
        if not pn or pn[0] != 1 or any(b <= a for a, b in zip(pn, pn[1:])):
            raise ConfigError(f"FlexVAR scale_schedule {list(pn)}: must start at 1 and increase strictly "
                              f"(e.g. {list(DEFAULT_SCHEDULE)})")
        if self.image_size % self.downsample:
            raise ConfigError(f"FlexVAR image_size {self.image_size} is not a multiple of the downsampling "
                              f"factor {self.downsample}")
        if pn[-1] > self.grid:
            raise ConfigError(f"FlexVAR scale_schedule {list(pn)}: the last scale {pn[-1]} is larger than the "
                              f"latent ({self.grid} x {self.grid} at image_size {self.image_size})")


def scale_bounds(schedule) -> list[tuple[int, int]]:
    """[start, end) of every scale in the flat sequence."""
    out, cur = [], 0
    for p in schedule:
        out.append((cur, cur + p * p))
        cur += p * p
    return out


class FlexVAE(VQTokenizer):
    """The FlexVAR tokenizer (implements ``visbpp.core.interfaces.ImageTokenizer``)."""

    family = "flexvar"

    def __init__(self, cfg: FlexVAEConfig):
        super().__init__(cfg)
        self.schedule = tuple(cfg.scale_schedule)
        self.scale_bounds = scale_bounds(self.schedule)
        self.tokens_per_image = self.scale_bounds[-1][1]
        self.Cvae = cfg.codebook_embed_dim

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, L) int64, always in float32 (autocast off)."""
        S = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, S, S):
            raise ValueError(f"FlexVAR tokenizer expects images (B, 3, {S}, {S}) in [-1, 1], got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            h = self.latent(x.float())  # (B, Cvae, S/16, S/16)
            return torch.cat([self.quantize.indices(F.interpolate(h, size=(p, p), mode="area"))
                              for p in self.schedule], dim=1)

    def split(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """(B, L) flat tokens -> per-scale (B, p_s^2) views (shape and values checked)."""
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"FlexVAR tokens must be (B, {self.tokens_per_image}) for the schedule "
                             f"{list(self.schedule)}, got {tuple(tokens.shape)}")
        check_token_values(tokens, self.vocab_size)
        return [tokens[:, a:b] for a, b in self.scale_bounds]

    @torch.inference_mode()
    def teacher_input(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L - 1, Cvae) float32: for s = 0..K-2 the normalised code vectors of scale s
        bicubic-upsampled to scale s+1, row-major, concatenated."""
        idx = self.split(tokens)
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            parts = []
            for s, p in enumerate(self.schedule[:-1]):
                codes = self.quantize.lookup(idx[s], (p, p))  # (B, Cvae, p, p), normalised rows
                nxt = self.schedule[s + 1]
                parts.append(F.interpolate(codes, size=(nxt, nxt), mode="bicubic").flatten(2).transpose(1, 2))
            if not parts:
                return self.quantize.embedding.weight.new_zeros(tokens.shape[0], 0, self.Cvae)
            return torch.cat(parts, dim=1)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, 3, S, S) from the last scale alone (as the sampler), unclamped."""
        p = self.schedule[-1]
        if p * self.cfg.downsample != self.image_size:
            raise ConfigError(f"FlexVAR reconstructions decode the last scale ({p} x {p} -> {p * self.cfg.downsample} "
                              f"px), not the {self.image_size} px input: no reconstruction at this image_size")
        last = self.split(tokens)[-1]
        with torch.autocast(device_type=tokens.device.type, enabled=False):
            return self.decoder(self.post_quant_conv(self.quantize.lookup(last, (p, p))))
