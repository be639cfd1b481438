"""The models' results as they finish, and the end of a run: summaries, metadata, the written outputs.

:class:`Tally` collects what the run's parts find per model (new rows, bad images per tokenizer,
resolution) and :meth:`Tally.model_finished` closes a model as soon as its scoring is complete
(or at once, for a model scored in an earlier session): its rows of every rank are merged with
those of the run state, summarised, and ``ModelFinished`` is emitted — in the order the models
finish. :func:`finish` then writes a complete run (rank 0: token NLL files, reconstruction
metrics, ``--out`` and the results store, ``results.json`` last) and returns its
:class:`RunResult`; a cancelled or incomplete run writes nothing but its run state (a rerun
resumes it).
"""

from __future__ import annotations

import dataclasses
import os
import time

import torch

from visbpp.core import linear as LN
from visbpp.core.engine import data as D
from visbpp.core.engine import recon as RC
from visbpp.core.engine import runtime as RT
from visbpp.core.engine.constants import NO_LABEL
from visbpp.core.engine.context import RunContext
from visbpp.core.engine.events import ModelFinished, RunFinished, StageChanged
from visbpp.core.engine.run_types import RunResult, ScoringJob
from visbpp.core.registry.checkpoints import file_sha256
from visbpp.core.store import provenance as PV
from visbpp.core.store import results as O
from visbpp.core.store import token_store as TS
from visbpp.core.store.summary import summarize


def unlabeled(ctx: RunContext) -> tuple[str, ...]:
    """Flat-layout files without a CSV row, reported as skipped when the whole folder is scored."""
    s = ctx.settings
    return ctx.ds.unlabeled if s.limit is None and s.per_class is None else ()


def run_notes(ctx: RunContext) -> list[str]:
    """Warnings about how this machine runs the settings (recorded with the results)."""
    notes = RT.dtype_notes(ctx.device, ctx.settings.dtype)
    if ctx.device.type == "cpu" and LN.note():
        notes.append(LN.note())
    return notes


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Tally:
    """Per model of a run: rows scored in this session, bad images of its tokenizer, resolution,
    and, once finished, its rows (run order) and summary."""

    def __init__(self, ctx: RunContext, jobs: list[ScoringJob]) -> None:
        self.ctx, self.jobs = ctx, jobs
        self.new_rows: dict[str, list[dict]] = {j.model_id: [] for j in jobs}
        self.bad: dict[str, dict[str, str]] = {j.tokenizer_key: {} for j in jobs}   # tokenizer key -> {image: reason}
        self.resolution: dict[str, int | None] = {}
        self.finished: dict[str, tuple[list[dict], dict]] = {}   # model id -> (rows, summary)
        self.order = {s.image: i for i, s in enumerate(ctx.samples)}

    def _rows(self, j: ScoringJob) -> list[dict]:
        """The model's rows of every rank, merged with the run state's, in run order."""
        ctx = self.ctx
        parts = ctx.gather(self.new_rows[j.model_id])
        if ctx.dist.active:  # float64 reduction of the sums, checked against the gathered rows
            import torch.distributed as td

            mine = torch.tensor([sum(r["bits"] for r in self.new_rows[j.model_id])], dtype=torch.float64)
            td.all_reduce(mine)
            want = sum(r["bits"] for p in parts for r in p)
            assert abs(float(mine[0]) - want) <= 1e-9 * max(1.0, abs(want)), "rank reduction mismatch"
        merged = dict(ctx.state.done_rows(j.model_id, ctx.keys))
        merged.update({r["image"]: r for p in parts for r in p})
        return sorted((r for r in merged.values() if r["image"] in self.order), key=lambda r: self.order[r["image"]])

    def _summary(self, j: ScoringJob, rows: list[dict]) -> dict:
        s = self.ctx.settings
        skipped = len(self.bad.get(j.tokenizer_key, {})) + len(unlabeled(self.ctx))
        summary = summarize(j.model_id, rows, skipped, j.family, self.resolution.get(j.model_id), j.reference_bpp,
                            s.dtype, s.preprocess)
        return summary | ({"order": j.order} if j.order is not None else {})  # only models with an order axis

    def model_finished(self, j: ScoringJob) -> None:
        """Every image of ``j`` is scored: keep its rows and summary and emit ``ModelFinished``."""
        rows = self._rows(j)
        summary = self._summary(j, rows)
        self.finished[j.model_id] = (rows, summary)
        if summary["n_images"]:  # a model with no image scored fails the run in finish()
            self.ctx.emit(ModelFinished(j.model_id, summary["n_images"], summary["bpp"], summary["bits_per_token"],
                                        dict(summary)))

    def result(self, j: ScoringJob) -> tuple[list[dict], dict]:
        """(rows, summary) of ``j``: as finished, or what it has so far (a cancelled run)."""
        if j.model_id in self.finished:
            return self.finished[j.model_id]
        rows = self._rows(j)
        return rows, self._summary(j, rows)


def finish(ctx: RunContext, tally: Tally, run_id: str, identity: dict, cancelled: bool, started: str) -> RunResult:
    """The run's result; a complete run is written (rank 0) and ``RunFinished`` emitted."""
    jobs, s = tally.jobs, ctx.settings
    if ctx.dist.active:
        cancelled = any(ctx.gather(cancelled))
    rows: list[dict] = []
    summaries: list[dict] = []
    for j in jobs:
        r, summary = tally.result(j)
        rows.extend(r)
        summaries.append(summary)
    union = {k: v for g in tally.bad.values() for k, v in g.items()}
    unl = unlabeled(ctx)
    sel_bad = [{"image": x.image, "reason": union[x.image]} for x in ctx.samples if x.image in union]
    sel_bad += [{"image": u, "reason": NO_LABEL} for u in unl]
    meta = _metadata(ctx, jobs, identity, started)
    result = RunResult(run_id, summaries, rows, sel_bad, meta, cancelled, s.out_dir)
    complete = not cancelled and all(m["n_images"] + m["images_skipped"] == len(ctx.samples) + len(unl)
                                     for m in summaries)
    empty = [m["model_id"] for m in summaries if m["n_images"] == 0]
    if complete and empty:  # never mark a run complete that has no BPP
        first = f" (e.g. {sel_bad[0]['image']}: {sel_bad[0]['reason']})" if sel_bad else ""
        raise D.DataError(f"{', '.join(empty)}: 0 images scored: all {len(ctx.samples)} selected images were "
                          f"skipped{first}; nothing written")
    if ctx.dist.rank == 0 and complete:
        doc = {"run_id": run_id, "complete": True, "started_at": started, "finished_at": now(),
               "models": summaries, "skipped": sel_bad, "metadata": meta, "per_image_file": "per_image.csv"}
        ctx.emit(StageChanged("", "writing", s.out_dir or ""))
        dests = [O.store_dir(run_id, ctx.cache_dir), s.out_dir]
        TS.finalize(ctx.state.folder, jobs, rows, summaries, dests)
        RC.finalize(ctx, jobs, summaries, dests)
        result.store_dir = O.store(doc, rows, ctx.cache_dir)
        if s.out_dir:
            O.write_outputs(s.out_dir, doc, rows)
    if ctx.dist.active:
        ctx.barrier()
    result.cancelled = cancelled or not complete
    ctx.emit(RunFinished(run_id, s.out_dir if complete else None, cancelled))
    return result


def _reference_source(jobs: list[ScoringJob]) -> str | None:
    """Where the run's ``reference_bpp`` values come from: one source, or per model when they differ."""
    srcs = {j.model_id: j.reference_bpp_source for j in jobs if j.reference_bpp_source}
    if len(set(srcs.values())) <= 1:
        return next(iter(srcs.values()), None)
    return "; ".join(f"{m}: {s}" for m, s in srcs.items())


def _metadata(ctx: RunContext, jobs: list[ScoringJob], identity: dict, started: str) -> dict:
    s, device = ctx.settings, ctx.device
    ckpts = {j.model_id: {role: {"path": os.path.abspath(p), "sha256": file_sha256(p) if os.path.isfile(p) else None}
                          for role, p in j.checkpoints.items()} for j in jobs}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "versions": PV.versions(), "git_hash": PV.git_hash(), "checkpoints": ckpts,
        "tokenizer_keys": {j.model_id: j.tokenizer_key for j in jobs},
        "token_cache": ctx.token_cache_keys, "preprocess": s.preprocess,
        "preprocess_ids": ctx.preprocess_ids, "reference_bpp_source": _reference_source(jobs), "device": str(device),
        "device_name": name, "dtype": s.dtype, "tf32": s.tf32, "batch_size": ctx.batch_sizes or
        {j.model_id: ctx.state.batch_size(j.model_id) for j in jobs},
        "batch_size_setting": s.batch_size, "world_size": ctx.dist.world, "workers": s.workers,
        "decode_workers": ctx.workers, "compile": s.compile, "sdpa": RT.sdpa_backends(device),
        "cpu_linear": LN.backend() if device.type == "cpu" else None,
        "subset": {"data": ctx.ds.root, "layout": ctx.ds.layout, "labels_csv": identity["labels_csv"],
                   "limit": s.limit, "per_class": s.per_class, "n_selected": len(ctx.samples),
                   "n_classes": len(ctx.ds.classes)},
        "started_at": started, "settings": dataclasses.asdict(s),
        "notes": run_notes(ctx),
    }
