"""Float32 linear layers of the scoring forward on the CPU through oneDNN.

PyTorch's float32 ``F.linear`` on the CPU is an MKL sgemm. On CPUs where MKL does not take its
AVX-512 path (AMD EPYC here), that runs at about half the speed of oneDNN's float32 GEMM, which
PyTorch ships too (``torch.ops.mkldnn._linear_pointwise``, the op ``torch.compile`` emits for CPU
linears with packed weights): 100 vs 200-230 GFLOP/s per core for the transformer shapes
(BENCHMARKS.md). :func:`linear` sends the float32 CPU linears of scoring — no autograd, no
autocast — to oneDNN, and everything else (CUDA, MPS, bf16 autocast, training, other dtypes,
``torch.compile`` traces, which pick their own kernels) to ``F.linear``.

Both are float32 GEMMs with float32 accumulation; only the summation order differs, so outputs
agree to float32 rounding and a model's per-token NLL to about 1e-5 nats (tested against the
official-code fixtures). The default is oneDNN on x86-64 CPUs and ``F.linear`` on others;
``VISBPP_CPU_LINEAR=aten|onednn`` overrides it; :func:`backend` names the choice, which results
record.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import platform
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

ENV = "VISBPP_CPU_LINEAR"  # "onednn" (default where available) or "aten"
_OP = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _choose(machine: str | None = None) -> str:
    """The backend: ``VISBPP_CPU_LINEAR`` when set; by default oneDNN on x86-64 (where it was
    measured) and ``F.linear`` elsewhere (e.g. ARM, where PyTorch's GEMM may be the faster one)."""
    machine = (machine or platform.machine()).lower()
    default = "onednn" if machine in ("x86_64", "amd64") else "aten"
    want = os.environ.get(ENV, default).strip().lower()
    if want not in ("onednn", "aten"):
        raise ValueError(f"{ENV}={want!r}: expected onednn or aten")
    if want == "onednn" and (_OP is None or not torch.backends.mkldnn.is_available()):
        return "aten"
    return want


_BACKEND = _choose()
_FORCE_ATEN = contextvars.ContextVar("visbpp_force_aten_linear", default=False)


def backend() -> str:
    """``"onednn"`` or ``"aten"``: what float32 CPU linears of scoring run on in this process."""
    return _BACKEND


@contextlib.contextmanager
def aten_linears() -> Iterator[None]:
    """Within this block (this thread / context) every :func:`linear` is ``F.linear``: e.g. for
    FLOP counting, whose formulas know the ATen matmuls but not the oneDNN op."""
    token = _FORCE_ATEN.set(True)
    try:
        yield
    finally:
        _FORCE_ATEN.reset(token)


def _compiling() -> bool:
    """Inside a ``torch.compile`` trace: the compiler picks its own CPU linear kernels (its lowering
    takes only weights it packed itself)."""
    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(fn()) if fn is not None else False


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _onednn_ok(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    return (_BACKEND == "onednn" and not _FORCE_ATEN.get() and not _compiling() and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32 and (bias is None or bias.dtype == torch.float32)
            and weight.device.type == "cpu" and weight.dim() == 2
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                                  or (bias is not None and bias.requires_grad)))
            and not _autocast_on("cpu"))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``: x (..., in), weight (out, in), bias (out,) -> (..., out)."""
    if _onednn_ok(x, weight, bias):
        return _OP(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose forward is :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)
