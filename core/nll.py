"""Token NLL from final hidden states, chunked along the sequence.

Families compute their final hidden states ``h (B, L, D)`` in one teacher-forced
forward and hand them here with their output head. Logits are made ``chunk`` positions
at a time; each chunk is then log-softmaxed in float32 a small block of rows at a time
and only the target's log-probability is kept, so a batch never holds B x L x V float32
logits (nor their log-probabilities) at once. Correct under bf16 autocast: the head may
run in bf16, the log-softmax never does. The values are bit-identical to a float32
``log_softmax`` of the whole chunk followed by a gather (the softmax of a row does not
depend on the other rows).
"""

from __future__ import annotations

from typing import Callable

import torch

from .errors import VisbppError

LN2 = 0.6931471805599453
BLOCK_BYTES = 32 * 2**20  # float32 log-probabilities made at once (smaller blocks cost time on a CPU)


def default_chunk(batch: int, vocab: int, budget_bytes: int = 256 * 2**20) -> int:
    """Sequence positions per chunk so that one chunk of fp32 logits stays under ``budget_bytes``."""
    return max(1, budget_bytes // max(1, batch * vocab * 4))


def chunked_nll(
    hidden: torch.Tensor,
    head: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    chunk: int | None = None,
) -> torch.Tensor:
    """hidden (B, L, D), targets (B, L) int64 -> (B, L) float32 nats = -log_softmax(head(h))[target]."""
    B, L = targets.shape
    out = torch.empty(B, L, dtype=torch.float32, device=hidden.device)
    step = chunk or L
    for s in range(0, L, step):
        e = min(L, s + step)
        logits = head(hidden[:, s:e])  # (B, e-s, V)
        out[:, s:e] = nll_from_logits(logits, targets[:, s:e])
        del logits
    return out


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


def bits_per_image(token_nll: torch.Tensor) -> torch.Tensor:
    """(B, L) nats -> (B,) float64 bits."""
    return token_nll.double().sum(-1) / LN2


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
