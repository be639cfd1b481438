"""Which float32 CPU linear the scoring forward asks for, decided without torch.

``VISBPP_CPU_LINEAR=onednn|aten`` chooses; unset or empty means the default: oneDNN on x86-64
CPUs (where it was measured, BENCHMARKS.md) and ``F.linear`` (``aten``) elsewhere. What a process
actually uses is ``visbpp.core.linear.backend()``: the request, unless oneDNN is missing or fails
its feature test there. The torch-free quick check of a finished run (``engine.finished``) keys
the run identity on the request.
"""

from __future__ import annotations

import os
import platform

ENV = "VISBPP_CPU_LINEAR"
BACKENDS = ("onednn", "aten")


def requested(machine: str | None = None) -> str:
    """The backend ``VISBPP_CPU_LINEAR`` asks for (empty or unset: the machine's default); a value
    other than onednn/aten is a ``ValueError`` naming the variable."""
    machine = (machine or platform.machine()).lower()
    default = "onednn" if machine in ("x86_64", "amd64") else "aten"
    want = os.environ.get(ENV, "").strip().lower() or default
    if want not in BACKENDS:
        raise ValueError(f"{ENV}={want!r}: expected onednn or aten (or leave it empty for the default, {default})")
    return want
