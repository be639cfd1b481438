"""Scoring orders of the random-order families (ARPG, RandAR): the permutations and the NLL per order.

An order is a permutation sigma of the L raster cells, sigma(i) = raster index of the i-th scored
token (raster order = identity). ``perm:K`` (``core/layout.Order``) uses sigma_k =
``torch.randperm(L, generator=torch.Generator("cpu").manual_seed(k))`` for k < K, the same for every
image. For L = 256 and k < 8 the list pinned in ``perms_256.npy`` (made with that rule; the tests
check it against torch's ``randperm``) is used instead, so a torch whose ``randperm`` changed still
scores the same orders.

A model mixes in :class:`OrderScoring` and defines ``scored_nll(tokens, labels, perm)``: one
teacher-forced forward in the order ``perm`` (B, L), one permutation per image. The mixin gives the
NLL per raster cell of every order of its ``order`` (``order_nll``) and the headline (``token_nll``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from visbpp.core.layout import Order, order_headline, parse_order

PINNED = {256: Path(__file__).with_name("perms_256.npy")}   # sequence length -> pinned sigma_0, sigma_1, ...


@lru_cache(maxsize=None)
def _pinned(length: int) -> torch.Tensor | None:
    path = PINNED.get(length)
    return None if path is None else torch.from_numpy(np.load(path).astype(np.int64))


def permutation(length: int, seed: int | None) -> torch.Tensor:
    """sigma (L,) int64 on the CPU: the identity for ``seed`` None (raster), else the seeded permutation."""
    if seed is None:
        return torch.arange(length)
    pinned = _pinned(length)
    if pinned is not None and seed < pinned.shape[0]:
        return pinned[seed].clone()
    return torch.randperm(length, generator=torch.Generator("cpu").manual_seed(seed))


def config_order(config: Mapping[str, Any], where: str, default: str) -> Order:
    """The scoring order a config asks for: its ``order`` string (``raster`` | ``perm:K``, which the jobs
    set), else ``default``. An object there is the conformance fixtures' description of the order
    convention (it has a ``convention`` field), not an option."""
    value = config.get("order")
    if value is None or (isinstance(value, Mapping) and "convention" in value):
        return parse_order(default, f"{where}: default order")
    return parse_order(value, f"{where}: order")


def check_permutation(perm: torch.Tensor, shape: tuple[int, int]) -> None:
    """ValueError unless ``perm`` is (B, L) integer with a permutation of 0..L-1 in every row."""
    if perm.shape != shape or perm.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"perm must be an integer tensor of shape {shape}, got {perm.dtype} {tuple(perm.shape)}")
    want = torch.arange(shape[1], device=perm.device)
    if not bool((perm.sort(dim=1).values == want).all()):
        raise ValueError("every row of perm must be a permutation of the token positions 0..L-1")


class OrderScoring:
    """Per-order NLL of a model that scores tokens in any order (see the module docstring).

    The model sets ``order`` (:class:`~visbpp.core.layout.Order`) and its ``token_layout``
    (``core/layout.order_layout``) and defines ``scored_nll(tokens, labels, perm) -> (B, L)`` float32
    nats in scoring order (column i = -ln p of the token at raster cell perm[:, i]).
    """

    order: Order

    def cell_nll(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """(B, L) float32 nats per raster cell under the orders ``perm`` (B, L)."""
        nll = self.scored_nll(tokens, labels, perm)
        return torch.empty_like(nll).scatter_(1, perm.long(), nll)

    def _orders(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        B, L = tokens.shape
        return [permutation(L, seed).to(tokens.device).expand(B, L) for seed in self.order.seeds]

    @torch.inference_mode()
    def order_nll(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L, orders) float32 nats per raster cell, one column per order of ``order.part_names``."""
        return torch.stack([self.cell_nll(tokens, labels, p) for p in self._orders(tokens)], dim=-1)

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) float32 nats per raster cell: the raster order's, or the mean over the permutations."""
        if not self.order.permutations:
            return self.cell_nll(tokens, labels, self._orders(tokens)[0])
        return order_headline(self.order_nll(tokens, labels), self.order.permutations).float()
