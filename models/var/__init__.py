"""VAR family: multi-scale residual VQVAE + next-scale (VAR) transformer (spec: shared/specs/var.md)."""

from .family import FAMILY, VARFamily
from .transformer import VAR, VARConfig
from .vqvae import VQVAE, VQVAEConfig, phi_table

__all__ = ["FAMILY", "VARFamily", "VAR", "VARConfig", "VQVAE", "VQVAEConfig", "phi_table"]
