"""The engine's data types, free of torch: a job to score, the settings of a run, its result.

``visbpp.core.engine.runner`` re-exports them; front-ends and ``visbpp.models.jobs`` can build jobs
and settings (and find a finished run, ``visbpp.core.engine.finished``) without importing torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, Mapping

from visbpp.core.engine import preprocessing as PP
from visbpp.core.errors import SettingsError

if TYPE_CHECKING:  # pragma: no cover
    from visbpp.core.interfaces import ARModel, ImageTokenizer


@dataclass(frozen=True)
class ScoringJob:
    """One AR model to score (see the engine contract)."""

    model_id: str
    family: str
    tokenizer_key: str
    load_tokenizer: Callable[[], "ImageTokenizer"]
    load_model: Callable[["ImageTokenizer"], "ARModel"]
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    reference_bpp: float | None = None
    class_names: tuple[str, ...] | None = None  # the model's classes in index order (labels by folder name); None: unknown
    reference_bpp_source: str | None = None     # where reference_bpp comes from (the published table, the micro zoo)
    order: str | None = None   # scoring order of a family with an order axis ("raster" | "perm:K"), else None


DTYPES = ("fp32", "bf16")                 # fp32: the reference; bf16: autocast of the AR forward
DEVICES = ("auto", "cuda", "mps", "cpu")  # and "cuda:N"


def check_dtype(dtype: str) -> str:
    """``dtype`` if it is one of :data:`DTYPES`, else :class:`SettingsError` (``--dtype``)."""
    if dtype not in DTYPES:
        raise SettingsError(f"--dtype {dtype!r}: expected {' or '.join(DTYPES)}", "dtype")
    return dtype


@dataclass(frozen=True)
class RunSettings:
    """The settings of a run; they check themselves when made (:class:`SettingsError` naming the
    option, its value and what is expected; ``field`` = the attribute), so front-ends only translate
    their input. Whether a named device is available is the engine's check (``runtime.resolve_device``)."""

    data: str
    labels_csv: str | None = None
    out_dir: str | None = None
    limit: int | None = None
    per_class: int | None = None
    batch_size: int | Literal["auto"] = 16
    device: str = "auto"
    dtype: Literal["fp32", "bf16"] = "fp32"
    tf32: bool = False
    workers: int | Literal["auto"] = "auto"  # decode worker processes; auto: CPU count based (encode_pass)
    cache_dir: str | None = None
    preprocess: str = PP.DEFAULT_PREPROCESSING   # "official" (the family's own) | "paper" (core/engine/preprocessing.py)
    unconditional: bool = False  # also score every image with the model's null class (where it has one)
    recon: bool = False          # also decode the tokens: PSNR/SSIM per image and tokenizer (core/engine/recon.py)
    compile: bool = False        # torch.compile the AR forward (score_loop.compiled)
    force: bool = False          # recompute a finished run (its results and run state are dropped; tokens stay cached)

    def __post_init__(self) -> None:
        def positive(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        for name, what in (("limit", "the image limit"), ("per_class", "the images per class")):
            v = getattr(self, name)
            if v is not None and not positive(v):
                raise SettingsError(f"--{name.replace('_', '-')} {v}: {what} must be a whole number of at least 1 "
                                    f"(leave it out for all images)", name)
        if self.batch_size != "auto" and not positive(self.batch_size):
            raise SettingsError(f"--batch-size {self.batch_size}: the batch size must be a whole number of at least 1, "
                                f"or auto (the largest that fits)", "batch_size")
        if self.workers != "auto" and not (isinstance(self.workers, int) and not isinstance(self.workers, bool)
                                           and self.workers >= 0):
            raise SettingsError(f"--workers {self.workers}: the decode workers must be auto, 0 (decode in the main "
                                f"process) or more", "workers")
        check_dtype(self.dtype)
        if not isinstance(self.device, str) or not (self.device.lower() in DEVICES
                                                    or re.fullmatch(r"cuda:\d+", self.device.lower())):
            raise SettingsError(f"--device {self.device!r}: expected {', '.join(DEVICES)} or cuda:N", "device")
        PP.check(self.preprocess)


@dataclass
class RunResult:
    run_id: str
    models: list[dict]                       # per-model summaries (results.SUMMARY_FIELDS)
    per_image: list[dict]                    # rows (results.ROW_FIELDS)
    skipped: list[dict]                      # {"image", "reason"}
    metadata: dict
    cancelled: bool = False
    out_dir: str | None = None
    already_finished: bool = False           # the run was complete before: nothing was scored
    store_dir: str | None = None             # folder in the results store (rank 0, complete runs)
