"""Device, precision, memory and torch.distributed helpers of the scoring engine and bench.

Distributed runs are started by ``torchrun`` (env ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``);
the process group uses NCCL on CUDA and gloo otherwise.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

from visbpp.core.engine.events import MemoryStats
from visbpp.core.errors import DeviceError  # noqa: E402 - re-exported


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1


def dist_from_env() -> Dist:
    return Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                int(os.environ.get("LOCAL_RANK", 0)))


def init_dist(dist: Dist, device: torch.device) -> None:
    import torch.distributed as td

    if dist.active and not td.is_initialized():
        td.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda: no CUDA device is available (torch.cuda.is_available() is False); "
                              "use --device cpu or auto")
        if name == "cuda":
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        return torch.device(name)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise DeviceError("--device mps: MPS is not available on this machine; use --device cpu or auto")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"--device {name!r}: expected auto, cuda, mps or cpu")


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)
    torch.set_float32_matmul_precision("high" if enabled else "highest")


@contextlib.contextmanager
def tf32_mode(enabled: bool):
    """TF32 matmuls on or off inside the block; the previous settings are restored after it."""
    prev = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
            torch.get_float32_matmul_precision())
    set_tf32(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev[0], prev[1]
        torch.set_float32_matmul_precision(prev[2])


BF16_SLOW_CPU = ("--dtype bf16 on a CPU without native bf16 instructions (no AVX512-BF16/AMX): bf16 is "
                 "emulated there and runs several times slower than fp32; fp32 is the reference and faster here")


def cpu_bf16_native() -> bool:
    """Whether this CPU runs bf16 matmuls natively (oneDNN's check: AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def dtype_notes(device: torch.device, dtype: str) -> list[str]:
    """Warnings about a dtype choice on this machine (recorded with the results)."""
    return [BF16_SLOW_CPU] if dtype == "bf16" and device.type == "cpu" and not cpu_bf16_native() else []


def autocast(device: torch.device, dtype: str):
    """The AR forward's precision context for a ``RunSettings.dtype`` (checked there)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if dtype == "bf16" else contextlib.nullcontext()


def efficient_attention(device: torch.device) -> None:
    """On CUDA, let scaled_dot_product_attention use its flash and memory-efficient kernels (bf16/fp16)."""
    if device.type == "cuda":
        torch.backends.cuda.enable_flash_sdp(True)
        torch.backends.cuda.enable_mem_efficient_sdp(True)


def sdpa_backends(device: torch.device) -> dict | str:
    """Which SDPA kernels the run allowed (recorded in results.json)."""
    if device.type != "cuda":
        return f"{device.type} (torch's own choice)"
    b = torch.backends.cuda
    return {"flash": b.flash_sdp_enabled(), "mem_efficient": b.mem_efficient_sdp_enabled(), "math": b.math_sdp_enabled()}


def host_rss() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return ru if sys.platform == "darwin" else ru * 1024


def memory_stats(device: torch.device) -> MemoryStats:
    if device.type == "cuda":
        i = device.index if device.index is not None else torch.cuda.current_device()
        return MemoryStats(str(device), torch.cuda.memory_allocated(i), torch.cuda.memory_reserved(i),
                           torch.cuda.max_memory_allocated(i), torch.cuda.get_device_properties(i).total_memory,
                           host_rss())
    if device.type == "mps":
        try:
            return MemoryStats("mps", torch.mps.current_allocated_memory(), torch.mps.driver_allocated_memory(),
                               None, None, host_rss())
        except (AttributeError, RuntimeError):
            pass
    return MemoryStats(str(device), rss=host_rss())


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def is_oom(e: BaseException) -> bool:
    if isinstance(e, getattr(torch.cuda, "OutOfMemoryError", ())):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def free_memory(device: torch.device) -> None:
    """Give cached accelerator memory back (after a full gc pass, so that cyclic garbage holding device
    tensors goes too). On the CPU a tensor is freed with its last reference: nothing to do there
    (a full gc pass of a process holding models costs up to a second)."""
    import gc

    if device.type == "cpu":
        return
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        with contextlib.suppress(Exception):
            torch.mps.empty_cache()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        with contextlib.suppress(Exception):
            torch.mps.synchronize()


class Rate:
    """Images/s over the recent batches and the ETA of a stage."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.hist = [(time.perf_counter(), 0)]

    def add(self, n: int) -> tuple[float, float | None]:
        self.done += n
        self.hist = (self.hist + [(time.perf_counter(), self.done)])[-21:]
        (t0, d0), (t1, d1) = self.hist[0], self.hist[-1]
        ips = (d1 - d0) / max(t1 - t0, 1e-9)
        return ips, ((self.total - self.done) / ips if ips > 0 else None)


def find_batch_size(attempt: Callable[[int], None], start: int, device: torch.device | None = None) -> int:
    """Largest of start, start/2, ..., 1 for which ``attempt(bs)`` does not run out of memory."""
    bs = max(1, int(start))
    while True:
        try:
            attempt(bs)
            return bs
        except Exception as e:  # noqa: BLE001
            if not is_oom(e) or bs == 1:
                raise
        bs //= 2
        if device is not None:
            free_memory(device)
