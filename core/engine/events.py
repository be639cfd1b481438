"""Progress events the scoring engine emits; front-ends (Rich CLI, Textual TUI) consume them.

The engine calls a plain ``callback(event)``; it never imports a UI. Every event is a
frozen dataclass so that it can be posted across threads as-is.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MemoryStats:
    """Memory of the device the run uses (bytes)."""

    device: str                  # "cuda:0", "mps", "cpu"
    allocated: int | None = None  # CUDA/MPS allocated by tensors
    reserved: int | None = None   # CUDA reserved by the caching allocator
    peak: int | None = None       # CUDA peak allocated since the run started
    total: int | None = None      # device total memory
    rss: int | None = None        # host resident set size (CPU runs, always filled when known)


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    models: tuple[str, ...]       # model ids in scoring order
    total_images: int             # images per model after subset selection and skips known so far


@dataclass(frozen=True)
class StageChanged:
    model_id: str                 # model (or tokenizer id while encoding)
    stage: str                    # "loading" | "encoding" | "scoring" | "writing" | "done"
    detail: str = ""


@dataclass(frozen=True)
class Progress:
    model_id: str
    stage: str                    # "encoding" | "scoring"
    done: int                     # images done in this stage
    total: int                    # images in this stage
    images_per_s: float           # recent throughput
    eta_s: float | None           # seconds left in this stage, None if unknown
    memory: MemoryStats | None = None


@dataclass(frozen=True)
class ImageSkipped:
    image: str                    # path relative to the data root (POSIX)
    reason: str


@dataclass(frozen=True)
class ModelFinished:
    model_id: str
    n_images: int
    bpp: float                    # bits / (3 H W) summed over images
    bits_per_token: float
    summary: dict = field(default_factory=dict)  # the full per-model summary row


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    out_dir: str | None
    cancelled: bool = False


Event = RunStarted | StageChanged | Progress | ImageSkipped | ModelFinished | RunFinished
