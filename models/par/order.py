"""PAR's token order as plain data (no torch): the permutation of the raster grid and its groups.

The grid (side G) is cut into s x s regions of m x m cells (n = s^2 regions, m = G / s), regions
numbered in raster order q = R s + C. The k-th token in PAR order is within-region step
p = k div n of region q = k mod n: cell (row, col) = (R m + r, C m + c) with (r, c) = divmod(p, m),
(R, C) = divmod(q, s). Group g = k div n holds step g of every region: group 0 is generated one
token at a time, every later group in one parallel step (each token conditionally independent of
its group given the class and the earlier groups).
"""

from __future__ import annotations

import math


def check_order(grid: int, n: int) -> None:
    """ValueError unless ``n`` (tokens per parallel step) is a square whose side divides ``grid``."""
    s = math.isqrt(n) if n > 0 else 0
    if s * s != n or s == 0:
        raise ValueError(f"ar_token_num {n} is not a positive square number (n = s^2 regions of the grid)")
    if grid % s:
        raise ValueError(f"ar_token_num {n}: the {grid}x{grid} token grid does not split into {s}x{s} regions")


def permutation(grid: int, n: int) -> list[int]:
    """``perm[k]`` = raster index of the k-th token in PAR order (``u = tokens_raster[:, perm]``)."""
    check_order(grid, n)
    s = math.isqrt(n)
    m = grid // s
    perm = []
    for k in range(grid * grid):
        (r, c), (big_r, big_c) = divmod(k // n, m), divmod(k % n, s)
        perm.append((big_r * m + r) * grid + big_c * m + c)
    return perm


def group_names(grid: int, n: int) -> tuple[str, ...]:
    """Names of the sequential first group and (if any) the parallel groups, with their token counts."""
    groups = grid * grid // n
    seq = f"group 0 (sequential, {n} tokens)"
    return (seq,) if groups == 1 else (seq, f"groups 1-{groups - 1} (parallel, {grid * grid - n} tokens)")


def raster_groups(grid: int, n: int) -> tuple[int, ...]:
    """Per raster cell: 0 if its token is in the sequential first group, else 1 (parallel)."""
    out = [0] * (grid * grid)
    for k, cell in enumerate(permutation(grid, n)):
        out[cell] = 0 if k < n else 1
    return tuple(out)
