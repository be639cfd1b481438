"""The engine's data types, free of torch: a job to score, the settings of a run, its result.

``visbpp.core.engine.runner`` re-exports them; front-ends and ``visbpp.models.jobs`` can build jobs
and settings (and find a finished run, ``visbpp.core.engine.finished``) without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, Mapping

from visbpp.core.engine.preprocessing import DEFAULT_PREPROCESSING

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
    order: str | None = None   # scoring order of a family with an order axis ("raster" | "perm:K"), else None


@dataclass(frozen=True)
class RunSettings:
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
    preprocess: str = DEFAULT_PREPROCESSING   # "official" (the family's own) | "paper" (core/engine/preprocessing.py)
    unconditional: bool = False  # also score every image with the model's null class (where it has one)
    recon: bool = False          # also decode the tokens: PSNR/SSIM per image and tokenizer (core/engine/recon.py)
    compile: bool = False        # torch.compile the AR forward (score_loop.compiled)
    force: bool = False          # recompute a finished run (its results and run state are dropped; tokens stay cached)


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
