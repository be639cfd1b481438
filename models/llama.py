"""Llama-style pieces shared by LlamaGen and the SEED-Voken families (Open-MAGVIT2, IBQ).

- the 2-D rotary table (class positions all zero) and its application, one implementation,
  cached per device and dtype by :class:`Rope2D`;
- causal attention with fused ``attention.wqkv`` / ``attention.wo`` (optionally grouped
  key/value heads);
- the pre-norm block ``attention``, ``feed_forward.w1/w2/w3``, ``attention_norm``, ``ffn_norm``,
  optionally AdaLN-modulated (``ada_lin.1``) as IBQ uses it.

Attribute names equal the official state-dict keys of all three families.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import FeedForward, RMSNorm

# --------------------------------------------------------------------------- 2-D RoPE


def rope_2d_table(grid: int, head_dim: int, base: float = 10000.0, n_cls: int = 1) -> torch.Tensor:
    """(n_cls + grid^2, head_dim/2, 2) float32 table of (cos, sin) per position and angle pair.

    Image token k has row r = k // grid and column c = k % grid; its head_dim/2 angles are
    [r w_0 .. r w_(m-1), c w_0 .. c w_(m-1)] with w_i = base^(-2i / (head_dim/2)), m = head_dim/4.
    The first ``n_cls`` rows are all zero (cos = sin = 0): a class position's q and k vanish.
    """
    half = head_dim // 2
    freqs = 1.0 / (base ** (torch.arange(0, half, 2)[: half // 2].float() / half))  # (m,)
    pos = torch.arange(grid, dtype=torch.float32)
    ang = torch.outer(pos, freqs)  # (grid, m)
    grid_ang = torch.cat(
        [ang[:, None, :].expand(grid, grid, -1), ang[None, :, :].expand(grid, grid, -1)], dim=-1
    )  # (grid rows, grid cols, 2m): row angles then column angles
    table = torch.stack([torch.cos(grid_ang), torch.sin(grid_ang)], dim=-1).flatten(0, 1)  # (grid^2, half, 2)
    return torch.cat([torch.zeros(n_cls, half, 2), table])


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """x (B, T, H, D), rope (T, D/2) complex64 (cos + i sin), or (B, T, D/2) for rows per sample
    (models scored in a different order per image): rotate the interleaved pairs (2p, 2p+1) as
    complex numbers in float32, cast back to x's dtype.

    (a + ib)(cos + i sin) = (a cos - b sin) + i (b cos + a sin): bit-identical to the real
    arithmetic of the official code, in one complex multiply.
    """
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (B, T, H, D/2)
    r = rope[None, :, None, :] if rope.ndim == 2 else rope[:, :, None, :]
    out = torch.view_as_real(xc * r)  # (B, T, H, D/2, 2)
    return out.flatten(3).type_as(x)


class Rope2D:
    """The complex RoPE table of a ``grid`` x ``grid`` image after ``n_cls`` class positions,
    computed once on the CPU and cached per (device, dtype). Not a module: no state-dict keys."""

    def __init__(self, grid: int, head_dim: int, base: float = 10000.0, n_cls: int = 1):
        self.grid, self.head_dim, self.base, self.n_cls = grid, head_dim, base, n_cls
        self._cache: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

    def real(self) -> torch.Tensor:
        """The (T, head_dim/2, 2) float32 (cos, sin) table."""
        return rope_2d_table(self.grid, self.head_dim, self.base, self.n_cls)

    def __call__(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        """(n_cls + grid^2, head_dim/2) complex table on ``device``."""
        key = (torch.device(device), dtype)
        if key not in self._cache:
            self._cache[key] = torch.view_as_complex(self.real().contiguous()).to(device=key[0], dtype=dtype)
        return self._cache[key]


# --------------------------------------------------------------------------- attention and block


class Attention(nn.Module):
    """Fused ``wqkv`` (q | k | v), 2-D RoPE on q and k, causal SDPA, ``wo``. No biases.

    ``rope=None``: no rotation at all (position-free attention, for models that add a learned
    absolute position table to the input instead). ``mask`` (T, T) bool, True = may attend:
    replaces the causal mask (e.g. PAR's group mask); None = causal.
    """

    def __init__(self, dim: int, n_head: int, n_kv_head: int | None = None):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = n_head, n_kv_head or n_head, dim // n_head
        self.wqkv = nn.Linear(dim, (self.n_head + 2 * self.n_kv) * self.head_dim, bias=False)
        self.wo = nn.Linear(self.n_head * self.head_dim, dim, bias=False)

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = x.shape
        q_size, kv_size = self.n_head * self.head_dim, self.n_kv * self.head_dim
        q, k, v = self.wqkv(x).split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(B, T, self.n_head, self.head_dim)  # (B, T, H, Dh)
        k = k.view(B, T, self.n_kv, self.head_dim)
        v = v.view(B, T, self.n_kv, self.head_dim)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, T, Dh)
        if self.n_kv != self.n_head:
            k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)  # (B, H, T, Dh)
        return self.wo(y.transpose(1, 2).reshape(B, T, q_size))


class Block(nn.Module):
    """Pre-norm llama block; with ``adaln`` the IBQ modulation from ``ada_lin`` = (SiLU, nn.Linear(D, 6D)).

    Plain: h = x + attn(attention_norm(x)); out = h + ffn(ffn_norm(h)).
    AdaLN chunks are (gamma1, gamma2, scale1, scale2, shift1, shift2):
    h = x + g1 * attn(norm(x) * (1 + s1) + b1); out = h + g2 * ffn(norm(h) * (1 + s2) + b2).
    """

    def __init__(self, dim: int, n_head: int, ffn_hidden: int, norm_eps: float = 1e-5, *,
                 n_kv_head: int | None = None, adaln: bool = False):
        super().__init__()
        self.attention = Attention(dim, n_head, n_kv_head)
        self.feed_forward = FeedForward(dim, ffn_hidden)
        self.attention_norm = RMSNorm(dim, norm_eps)
        self.ffn_norm = RMSNorm(dim, norm_eps)
        if adaln:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None, cond: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask``: see :class:`Attention` (None = causal; then not passed on, so attention subclasses
        without a mask argument keep working)."""
        at = (rope,) if mask is None else (rope, mask)
        if cond is None:
            h = _add(self.attention(self.attention_norm(x), *at), x)
            return _add(self.feed_forward(self.ffn_norm(h)), h)
        g1, g2, s1, s2, b1, b2 = self.ada_lin(cond).chunk(6, dim=-1)  # each (B, 1, D)
        h = x + g1 * self.attention(self.attention_norm(x) * (1 + s1) + b1, *at)
        return h + g2 * self.feed_forward(self.ffn_norm(h) * (1 + s2) + b2)


def _add(fresh: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x + fresh, in place on ``fresh`` (a new branch output) when that keeps its dtype: the same
    values (IEEE addition commutes) without allocating another (B, T, D) tensor."""
    return fresh.add_(x) if torch.result_type(fresh, x) == fresh.dtype else x + fresh
