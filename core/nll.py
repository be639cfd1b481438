"""Token NLL from final hidden states, chunked along the sequence.

Families compute their final hidden states ``h (B, L, D)`` in one teacher-forced
forward and hand them here with their output head, ``chunk`` positions at a time.

- A plain ``nn.Linear`` head (most families; ``pre`` maps the hidden states to the head's
  input, e.g. VAR's AdaLN before the head) goes through :func:`linear_head_nll`: the logits
  are made ``VOCAB_BLOCK`` vocabulary columns at a time, each block reduced to its float32
  logsumexp while it is still in cache, and the target's logit is gathered from its block.
  NLL = logsumexp - target logit. No (rows, V) tensor exists at any time: less memory
  traffic than a full log-softmax, and less memory (a block of V/VOCAB_BLOCK columns).
- Any other head (a callable giving logits) goes through :func:`nll_from_logits`: float32
  log-softmax a block of rows at a time, only the target's log-probability kept.

Both are correct under bf16 autocast: the head may run in bf16, the reductions never do.
They agree to float32 rounding (a few 1e-6 nats on logits of magnitude ~10, tested).
"""

from __future__ import annotations

from typing import Callable

import torch

from visbpp.core.errors import VisbppError
from visbpp.core.linear import Linear, linear

BLOCK_BYTES = 32 * 2**20  # float32 log-probabilities made at once (smaller blocks cost time on a CPU)
VOCAB_BLOCK = 2048        # head columns per GEMM in linear_head_nll (1024-2048 fastest on a CPU; see BENCHMARKS.md)


def default_chunk(batch: int, vocab: int, budget_bytes: int = 256 * 2**20) -> int:
    """Sequence positions per chunk so that one chunk of fp32 logits stays under ``budget_bytes``."""
    return max(1, budget_bytes // max(1, batch * vocab * 4))


def is_plain_linear(head: object) -> bool:
    """An ``nn.Linear`` whose forward is the stock one or :class:`~visbpp.core.linear.Linear`'s
    (its weight and bias are the whole head)."""
    return isinstance(head, torch.nn.Linear) and type(head).forward in (torch.nn.Linear.forward, Linear.forward)


def chunked_nll(
    hidden: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    chunk: int | None = None,
    pre: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """hidden (B, L, D), targets (B, L) int64 -> (B, L) float32 nats = -log_softmax(head(pre(h)))[target].

    ``head``: a plain ``nn.Linear`` or a ``(weight (V, D), bias (V,) | None)`` pair (both take the
    vocabulary-blocked :func:`linear_head_nll`), or any callable giving (B, l, V) logits.
    ``pre`` (default: identity) is applied to each chunk of hidden states before ``head``.
    """
    B, L = targets.shape
    out = torch.empty(B, L, dtype=torch.float32, device=hidden.device)
    step = chunk or L
    linear = (head.weight, head.bias) if is_plain_linear(head) else head if isinstance(head, tuple) else None
    for s in range(0, L, step):
        e = min(L, s + step)
        x = hidden[:, s:e] if pre is None else pre(hidden[:, s:e])  # (B, e-s, D)
        if linear is not None:
            out[:, s:e] = linear_head_nll(x.reshape(-1, x.shape[-1]), *linear,
                                          targets[:, s:e].reshape(-1)).view(B, e - s)
        else:
            logits = head(x)  # (B, e-s, V)
            out[:, s:e] = nll_from_logits(logits, targets[:, s:e])
            del logits
    return out


def linear_head_nll(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                    vocab_block: int = VOCAB_BLOCK, host_check: bool | None = None) -> torch.Tensor:
    """x (N, D) head input, weight (V, D), bias (V,) or None, targets (N,) -> (N,) float32 nats.

    NLL = logsumexp(logits) - logits[target] with logits = x W^T + b, made ``vocab_block``
    columns at a time (under autocast in its dtype, like the head module would): each block is
    reduced to its float32 logsumexp, and the target's logit is taken from the block that holds
    it, so the logit is exactly the one the full head would give.

    A target outside the vocabulary raises ``IndexError`` when ``host_check`` (default: on the
    CPU); otherwise its NLL is NaN (a host check on an accelerator would wait for the queued forward).
    """
    N, V = x.shape[0], weight.shape[0]
    outside = (targets < 0) | (targets >= V)
    on_cpu = x.device.type == "cpu" if host_check is None else host_check
    if on_cpu and N and bool(outside.any()):  # on an accelerator this would wait for the queued forward
        raise IndexError(f"target token {int(targets[outside][0])} outside the head's vocabulary of {V}")
    nblocks = -(-V // vocab_block)
    lse = torch.empty(N, nblocks, dtype=torch.float32, device=x.device)  # per-block logsumexp
    target_logit = None
    for i in range(nblocks):
        s, e = i * vocab_block, min(V, (i + 1) * vocab_block)
        logits = linear(x, weight[s:e], None if bias is None else bias[s:e])  # (N, e-s)
        with torch.autocast(device_type=x.device.type, enabled=False):
            lse[:, i] = torch.logsumexp(logits.float(), dim=-1)
            local = targets - s
            inside = (local >= 0) & (local < e - s)
            picked = logits.gather(-1, local.clamp(0, e - s - 1)[:, None]).squeeze(-1).float()
            target_logit = picked if target_logit is None else torch.where(inside, picked, target_logit)
        del logits
    with torch.autocast(device_type=x.device.type, enabled=False):
        nll = (torch.logsumexp(lse, dim=-1) if nblocks > 1 else lse[:, 0]) - target_logit
    # without the host check a target outside the vocabulary gives NaN (the engine's finiteness check reports it)
    return nll if on_cpu else nll.masked_fill(outside, float("nan"))


def nll_from_logits(logits: torch.Tensor, targets: torch.Tensor, block_bytes: int = BLOCK_BYTES) -> torch.Tensor:
    """logits (..., V) any dtype, targets (...) -> float32 nats, via fp32 log-softmax + gather.

    Rows are processed ``block_bytes`` of float32 at a time: peak extra memory is one block,
    not a float32 copy plus the log-probabilities of every logit.
    """
    V = logits.shape[-1]
    flat = logits.reshape(-1, V)  # (N, V), a view for contiguous logits
    t = targets.reshape(-1, 1)
    out = torch.empty(flat.shape[0], dtype=torch.float32, device=logits.device)
    rows = max(1, block_bytes // (4 * V))
    with torch.autocast(device_type=logits.device.type, enabled=False):
        for s in range(0, flat.shape[0], rows):
            logp = torch.log_softmax(flat[s:s + rows].float(), dim=-1)  # (rows, V) float32
            out[s:s + rows] = -logp.gather(-1, t[s:s + rows]).squeeze(-1)
    return out.view(targets.shape)


def auto_chunked_nll(hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor, vocab: int) -> torch.Tensor:
    """:func:`chunked_nll` with a chunk size chosen from the batch size and vocabulary."""
    return chunked_nll(hidden, head, targets, default_chunk(targets.shape[0], vocab))


class NonFiniteNLLError(VisbppError, ValueError):
    """A model gave NaN or infinite NLL for an image: scoring stops, nothing of the batch is kept."""


def check_finite(nll: torch.Tensor, model_id: str, images: list[str], dtype: str = "fp32") -> None:
    """Raise :class:`NonFiniteNLLError` naming the model, the first image and the cause when ``nll``
    (B, L) holds NaN or inf."""
    bad = ~torch.isfinite(nll)
    if not bool(bad.any()):
        return
    row = int(bad.any(-1).nonzero()[0, 0])
    pos = int(bad[row].nonzero()[0, 0])
    v = float(nll[row, pos])
    kind = "NaN" if v != v else ("+inf (probability 0 for the true token)" if v > 0 else "-inf")
    hint = ("bf16 may overflow: rerun with --dtype fp32" if dtype == "bf16"
            else "the checkpoint may be damaged or not match the configuration")
    raise NonFiniteNLLError(
        f"{model_id}: non-finite NLL ({kind}) for image {images[row]} at token {pos} "
        f"({int(bad.any(-1).sum())} of {len(images)} images in its batch); {hint}. "
        f"Nothing of this batch was kept; earlier batches stay for the rerun.")
