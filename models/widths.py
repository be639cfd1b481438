"""Layer widths derived from configuration values (plain arithmetic, no torch)."""

from __future__ import annotations


def swiglu_hidden(dim: int, multiple_of: int, ffn_dim_multiplier: float | None = None) -> int:
    """Llama FFN width: int(2 * 4 dim / 3) (times the multiplier), rounded up to ``multiple_of``."""
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)
