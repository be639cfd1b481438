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
official-code fixtures). Which one a process uses (:func:`backend`) is the request of
``visbpp.core.cpu_linear`` — unless the oneDNN op is missing or fails the feature test run at
import (its private signature may change with a torch upgrade): then ``F.linear``, with
:func:`note` saying why. The backend is part of a CPU run's identity and recorded in results.

Model files build plain ``nn.Linear``; :func:`use_backend_linears` turns them into :class:`Linear`
(same parameters and keys) where models are finished after loading (``core/registry/build``).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.cpu_linear import ENV, requested

_OP = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _call_op(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return _OP(x, weight, bias, "none", [], "")


def feature_test() -> str | None:
    """None when the oneDNN op computes ``F.linear`` of a small float32 input here, else why not."""
    if _OP is None or not torch.backends.mkldnn.is_available():
        return "this torch build has no oneDNN linear op"
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 2, 24, generator=g), torch.randn(16, 24, generator=g), torch.randn(16, generator=g)
    try:
        with torch.inference_mode():
            got = _call_op(x, w, b)
    except Exception as e:  # noqa: BLE001 - any failure of the private op means: do not use it
        return f"the oneDNN linear op failed its feature test ({type(e).__name__}: {e})"
    want = F.linear(x, w, b)
    if got.shape != want.shape or got.dtype != want.dtype or not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
        return "the oneDNN linear op gave another result than F.linear in its feature test"
    return None


def _choose() -> tuple[str, str | None]:
    want = requested()
    if want == "aten":
        return "aten", None
    why = feature_test()
    return ("onednn", None) if why is None else ("aten", f"{ENV}: oneDNN asked for, F.linear used instead: {why}")


_BACKEND, _NOTE = _choose()
_FORCE_ATEN = contextvars.ContextVar("visbpp_force_aten_linear", default=False)


def backend() -> str:
    """``"onednn"`` or ``"aten"``: what float32 CPU linears of scoring run on in this process."""
    return _BACKEND


def note() -> str | None:
    """Why oneDNN was asked for but is not used (a missing op or a failed feature test), else None."""
    return _NOTE


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
        return _call_op(x, weight, bias)
    return F.linear(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) whose forward is :func:`linear`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def use_backend_linears(module: nn.Module) -> nn.Module:
    """Every plain ``nn.Linear`` inside ``module`` becomes a :class:`Linear` in place (its class only:
    the same parameters, keys and hooks); returns ``module``."""
    for m in module.modules():
        if type(m) is nn.Linear:
            m.__class__ = Linear
    return module
