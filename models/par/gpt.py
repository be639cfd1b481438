"""PAR's class-conditional GPT: LlamaGen's trunk scoring the tokens in PAR's group-parallel order.

The model takes raster tokens (the VQ-16 tokenizer's output, shared with LlamaGen) and reorders
them itself (``order.py``): u = tokens[:, perm]. Teacher-forced sequence of L positions (L = grid^2,
n = ``ar_token_num``): position 0 the class; positions 1..n the tokens u_0..u_{n-1}; positions
n+1..2n-1 the learned special embeddings M_1..M_{n-1}; position p >= 2n the token u_{p-n} (the same
region's token one group earlier). Output row k predicts u_k. Attention is causal over positions
0..n-1, then block-causal over blocks of n positions starting at position n (full attention inside a
block), so a parallel group never sees its own tokens. RoPE: each token carries the 2-D angles of
its own raster cell; the class and special positions get all-zero rows.

``token_nll`` returns the NLL per raster cell (row j of ``hidden_states`` is the output row of the
token at cell j), so bit maps line up with LlamaGen's; ``token_layout`` names the sequential first
group and the parallel groups. Attribute names equal the official state-dict keys:
LlamaGen's plus ``spe_tok_embeddings.special_embeddings.weight`` (n - 1, dim).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from visbpp.core.interfaces import TokenLayout

from ..llama import Rope2D, rope_2d_table
from ..llamagen.gpt import C2IScorer, GPTConfig, TransformerBlock
from .order import check_order, group_names, permutation, raster_groups


@dataclass(frozen=True)
class PARConfig(GPTConfig):
    """LlamaGen's GPT arguments plus PAR's (upstream names)."""

    ar_token_num: int = 4     # n: regions = tokens per parallel step = tokens of the sequential first group
    spe_token_num: int = 3    # special (transition) embeddings, n - 1

    def validate(self) -> None:
        super().validate()
        check_order(self.grid, self.ar_token_num)
        if self.spe_token_num != self.ar_token_num - 1:
            raise ValueError(f"spe_token_num {self.spe_token_num} must be ar_token_num - 1 = {self.ar_token_num - 1} "
                             f"(the group blocks only line up so)")


def group_mask(length: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(length, length) bool, True = may attend: row i sees column j iff j <= i, or i >= n and j ends
    no later than i's block (blocks of n positions from position n)."""
    i = torch.arange(length, device=device)[:, None]
    j = torch.arange(length, device=device)[None, :]
    end = torch.where(i >= n, n * (torch.div(i - n, n, rounding_mode="floor") + 2) - 1, i)  # last position i sees
    return j <= end


class PARRope(Rope2D):
    """The RoPE table of PAR's sequence: zero (class), the cells of u_0..u_{n-1}, n - 1 zero rows
    (special tokens), the cells of u_n..u_{L-1}: (L + n) rows, cached per device like LlamaGen's."""

    def __init__(self, grid: int, head_dim: int, base: float, perm: list[int], n: int):
        super().__init__(grid, head_dim, base, n_cls=1)
        self.perm, self.n = perm, n

    def real(self) -> torch.Tensor:
        cells = rope_2d_table(self.grid, self.head_dim, self.base, n_cls=0)[torch.tensor(self.perm)]  # PAR order
        zero = cells.new_zeros(1, *cells.shape[1:])
        return torch.cat([zero, cells[: self.n], zero.expand(self.n - 1, -1, -1), cells[self.n:]])


class SpecialTokens(nn.Module):
    """The n - 1 learned special embeddings (``special_embeddings.weight``), inputs only."""

    def __init__(self, count: int, dim: int):
        super().__init__()
        self.special_embeddings = nn.Embedding(count, dim)


class PARGPT(C2IScorer):
    """PAR c2i transformer (implements ``visbpp.core.interfaces.ARModel``; tokens in raster order)."""

    family = "par"
    length_note = "PAR scores whole images: its order interleaves every cell of the grid"

    def __init__(self, cfg: PARConfig):
        super().__init__()
        cfg.validate()
        self._init_trunk(cfg, lambda: TransformerBlock(cfg))
        self.spe_tok_embeddings = SpecialTokens(cfg.spe_token_num, cfg.dim)
        n, g = cfg.ar_token_num, cfg.grid
        self.perm = permutation(g, n)  # perm[k] = raster cell of the k-th token in PAR order
        self.rope = PARRope(g, cfg.head_dim, cfg.rope_base, self.perm, n)
        self.token_layout = TokenLayout("raster", (g, g), group_names=group_names(g, n), group_of=raster_groups(g, n))
        self._cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def freqs_cis(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The (L + n, head_dim/2, 2) (cos, sin) RoPE table of the full-length sequence on ``device``."""
        return torch.view_as_real(self.rope(device))

    def _order(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(perm, its inverse, the (L, L) group mask) on ``device``, made once per device."""
        if device not in self._cache:
            perm = torch.tensor(self.perm, device=device)
            self._cache[device] = (perm, torch.argsort(perm),
                                   group_mask(self.tokens_per_image, self.cfg.ar_token_num, device))
        return self._cache[device]

    def _check(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        super()._check(tokens, labels)
        if tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"token sequence length {tokens.shape[1]}: {self.length_note}, "
                             f"{self.tokens_per_image} tokens in raster order")

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) raster tokens, (B,) labels -> (B, L, dim) final-normed states; row j predicts tokens[:, j]."""
        B, L = tokens.shape
        n = self.cfg.ar_token_num
        perm, inv, mask = self._order(tokens.device)
        e = self.tok_embeddings(tokens[:, perm[: L - 1]])  # u_0..u_{L-2}: the last token is never an input
        special = self.spe_tok_embeddings.special_embeddings.weight.unsqueeze(0).expand(B, -1, -1)
        x = torch.cat([self.cls_embedding(labels), e[:, :n], special, e[:, n:]], dim=1)[:, :L]  # (B, L, dim)
        freqs = self.rope(x.device)[:L]
        for layer in self.layers:
            x = layer(x, freqs, mask=mask)
        return self.norm(x)[:, inv]  # PAR-order rows back to raster cells
