"""What the parts of a run share: :class:`RunContext`, built once by ``runner.run`` and handed to the
encode pass, the scoring loop, the reconstruction pass and the end of the run.

It holds the run's settings, device and ranks, its event callback and cancel flag, the run state
and the selected images, plus what the parts record for ``results.json`` (batch sizes, token-cache
folders, preprocessing ids, decode workers). Nothing here imports another engine module that
imports this one: the engine's modules form no import cycle.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from visbpp.core.engine import data as D
from visbpp.core.engine.events import Event, StageChanged
from visbpp.core.engine.run_types import RunSettings, ScoringJob
from visbpp.core.engine.runtime import Dist
from visbpp.core.registry.class_names import describe
from visbpp.core.store.runstate import RunState
from visbpp.core.store.token_cache import image_key

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class RunContext:
    """One run in progress (see the module docstring)."""

    settings: RunSettings
    device: "torch.device"
    dist: Dist
    emit: Callable[[Event], None]             # events reach the front-end on rank 0 only
    cancel: threading.Event | None
    cache_dir: str
    state: RunState
    samples: list[D.Sample]                   # the selected images, in run order
    ds: D.Dataset
    keys: dict[str, str] = field(init=False)  # image -> its identity in the token cache (path, size, mtime)
    batch_sizes: dict[str, int] = field(default_factory=dict)         # model id -> scoring batch size
    token_cache_keys: dict[str, str] = field(default_factory=dict)    # tokenizer key -> token-cache folder
    preprocess_ids: dict[str, str] = field(default_factory=dict)      # tokenizer key -> preprocessing id
    workers: int | None = None                # decode workers of the encode pass (resolved from --workers)
    warned: set[str] = field(default_factory=set)  # models warned about a class-count mismatch

    def __post_init__(self) -> None:
        self.keys = {s.image: image_key(s.path) for s in self.samples}

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def barrier(self) -> None:
        if self.dist.active:
            import torch.distributed as td

            td.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank (a list of one without torchrun)."""
        if not self.dist.active:
            return [obj]
        import torch.distributed as td

        out = [None] * self.dist.world
        td.all_gather_object(out, obj)
        return out

    def check_classes(self, job: ScoringJob, model: Any) -> None:
        """Labels by class name: the model must have those classes. Labels by position (models of
        unknown classes): error when the data has more classes than the model; warn (once) when fewer."""
        ncls, have = getattr(model, "num_classes", None), len(self.ds.classes)
        if job.class_names is not None:
            if ncls is not None and ncls != len(job.class_names):
                raise D.DataError(f"{job.model_id} has num_classes={ncls}, but its labels come from "
                                  f"{describe(job.class_names)}: this model was trained on other classes")
            return
        if ncls is None or not have or have == ncls or job.model_id in self.warned:
            return
        if have > ncls:
            raise D.DataError(f"{self.ds.root}: the data has {have} classes but {job.model_id} has num_classes={ncls}: "
                              f"class labels would be out of range (is this the right data folder?)")
        self.warned.add(job.model_id)
        self.emit(StageChanged(job.model_id, "warning", f"the data has {have} classes but the model has "
                               f"num_classes={ncls}: labels are the data's class indices 0..{have - 1}"))
