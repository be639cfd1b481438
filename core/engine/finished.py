"""Is this run finished already? The one check shared by ``engine.run`` and the quick start of `visbpp run`.

A run is identified by its run id (``run_identity``), which includes the device type. The engine
resolves the device with torch and calls :func:`locate` and :func:`noop_result` with
``device.type``. Before importing torch, a front-end can call :func:`finished_without_torch`: it
decides the device type without torch only when that is certain (:func:`device_type_without_torch`)
and returns the finished run's result exactly as the engine would (the same events, the same
files written to ``out_dir``); in every other case it returns None and the caller runs the
engine, which reports any error. Nothing here imports torch.
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

from visbpp.core.cpu_linear import requested as requested_cpu_linear
from visbpp.core.engine import data as D
from visbpp.core.engine import run_identity as RI
from visbpp.core.engine.events import Event, ModelFinished, RunFinished, StageChanged
from visbpp.core.engine.run_types import RunResult, RunSettings, ScoringJob
from visbpp.core.errors import ConfigError, VisbppError
from visbpp.core.registry.class_names import describe
from visbpp.core.store import results as R
from visbpp.core.store import token_store as TS
from visbpp.core.store.reading import finished_run, run_config

# device nodes through which torch could find a GPU on Linux (NVIDIA, ROCm, WSL)
GPU_DEVICE_NODES = ("/dev/nvidia*", "/dev/kfd", "/dev/dxg")


def check_run(jobs: Sequence[ScoringJob], settings: RunSettings) -> str:
    """The checks of a run that need no device; returns the cache dir (``OutputError`` when it or
    ``out_dir`` is not a writable folder)."""
    if not jobs:
        raise ConfigError("no models to score")
    ids = [j.model_id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"model ids must be unique in a run: {ids}")
    return R.usable_dirs(settings.out_dir, settings.cache_dir)


@dataclass(frozen=True)
class Located:
    """Where a run is: its data, selected images, identity, run id and results-store folder."""

    ds: D.Dataset
    samples: list
    identity: dict
    run_id: str
    store: str


def class_names(jobs: Sequence[ScoringJob]) -> tuple[str, ...] | None:
    """The class names the run's labels come from: those of its models (one set per run)."""
    sets = {j.class_names for j in jobs} - {None}
    if len(sets) > 1:
        kinds = "; ".join(f"{', '.join(j.model_id for j in jobs if j.class_names == s)}: {describe(s)}"
                          for s in sorted(sets, key=len))
        raise ConfigError(f"these models have different classes ({kinds}); a run labels its images for one "
                          f"class set: score them in separate runs")
    return next(iter(sets), None)


def locate(jobs: Sequence[ScoringJob], settings: RunSettings, cache_dir: str, device_type: str,
           cpu_linear: str) -> Located:
    """Scan the data (labels from the models' class names), select the subset and compute the run id
    (``DataError`` when nothing is selected); ``cpu_linear`` is the float32 CPU linear backend (see
    ``run_identity``)."""
    ds = D.scan(settings.data, settings.labels_csv, class_names(jobs))
    samples = D.select(ds.samples, settings.limit, settings.per_class)
    if not samples:
        raise D.DataError(f"{ds.root}: no images selected")
    identity = RI.identity(jobs, settings, samples, ds, device_type, cpu_linear)
    run_id = RI.run_id(identity)
    return Located(ds, samples, identity, run_id, R.store_dir(run_id, cache_dir))


def noop_result(done: tuple[dict, list[dict]], store: str, settings: RunSettings,
                emit: Callable[[Event], None], rank: int = 0) -> RunResult:
    """The result of a run found complete in the store (``done`` = ``reading.finished_run``): its
    outputs are copied to ``out_dir`` (rank 0), a ``ModelFinished`` is emitted per model (its stored
    summary) and nothing is recomputed."""
    doc, rows = done
    if rank == 0 and settings.out_dir:
        TS.copy_outputs(store, settings.out_dir)
        R.write_outputs(settings.out_dir, doc, rows)
    msg = f"run {doc['run_id']} already finished at {doc.get('finished_at', '?')}: nothing recomputed (--force recomputes it)"
    emit(StageChanged("", "done", msg))
    for m in doc["models"]:
        emit(ModelFinished(m["model_id"], m["n_images"], m["bpp"], m["bits_per_token"], dict(m)))
    emit(RunFinished(doc["run_id"], settings.out_dir, False))
    return RunResult(doc["run_id"], doc["models"], rows, doc.get("skipped", []), run_config(doc),
                     False, settings.out_dir, already_finished=True, store_dir=store)


def auto_device_type() -> str | None:
    """``"cpu"`` when ``--device auto`` certainly resolves to the CPU (Linux without any GPU device
    node: torch then finds neither CUDA nor ROCm; MPS exists on macOS only), else None (unknown
    without importing torch)."""
    if not sys.platform.startswith("linux"):
        return None
    if any(glob.glob(pattern) for pattern in GPU_DEVICE_NODES):
        return None
    return "cpu"


def device_type_without_torch(name: str | None) -> str | None:
    """The device type ``runtime.resolve_device(name)`` gives, when it is certain without torch: only
    the CPU (``cpu``, or ``auto`` on a machine without GPU device nodes). CUDA and MPS give None:
    whether they are available (else the engine's ``DeviceError``) needs torch."""
    name = (name or "auto").lower()
    if name == "cpu":
        return "cpu"
    if name == "auto":
        return auto_device_type()
    return None


def finished_without_torch(jobs: Sequence[ScoringJob], settings: RunSettings,
                           on_event: Callable[[Event], None] | None = None) -> RunResult | None:
    """The result of ``engine.run(jobs, settings, on_event)`` when the run is finished already and
    that can be decided without torch; None otherwise (``--force``, a torchrun, a device type that
    needs torch, a run not finished, or any error: the engine then reports it)."""
    if settings.force or os.environ.get("WORLD_SIZE", "1").strip() not in ("", "1"):
        return None  # a torchrun (or a WORLD_SIZE the engine must judge)
    device_type = device_type_without_torch(settings.device)
    if device_type is None:
        return None
    try:
        cache_dir = check_run(jobs, settings)
        where = locate(jobs, settings, cache_dir, device_type, requested_cpu_linear())
        done = finished_run(where.store, True)
    except (VisbppError, ValueError, OSError):
        return None
    if done is None:
        return None
    return noop_result(done, where.store, settings, on_event or (lambda e: None))
