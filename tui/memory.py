"""Memory probe for the memory panel (no textual): per-GPU CUDA statistics when torch and a
GPU are present, else the resident set size of this process."""

from __future__ import annotations

import os
import sys

from visbpp.core.engine.events import MemoryStats


def host_rss() -> int | None:
    """Current resident set size in bytes (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except Exception:  # noqa: BLE001
        return None


def probe_memory() -> list[MemoryStats]:
    """One entry per CUDA device (allocated / reserved / peak / total), plus host RSS.

    torch is used only once something else imported it (the app imports it in a background
    worker), so the probe never stalls the UI thread on a cold ``import torch``.
    """
    out: list[MemoryStats] = []
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None) if torch is not None else None
    try:
        if cuda is not None and cuda.is_available():
            for i in range(cuda.device_count()):
                out.append(MemoryStats(
                    device=f"cuda:{i}",
                    allocated=int(cuda.memory_allocated(i)),
                    reserved=int(cuda.memory_reserved(i)),
                    peak=int(cuda.max_memory_allocated(i)),
                    total=int(cuda.get_device_properties(i).total_memory),
                ))
    except Exception:  # noqa: BLE001 - a half-initialised CUDA must not break the panel
        out = []
    out.append(MemoryStats(device="host", rss=host_rss()))
    return out
