"""The scoring engine: images -> tokens (cached) -> teacher-forced bits per image, per model.

Flow of :func:`run`:

1. List the data (``visbpp.core.engine.data``) and select the subset; the run id
   (``visbpp.core.engine.run_identity``) is a hash of the jobs, the data, the subset and the settings
   that change bits: rerunning the same command on the same machine resumes (or finds the
   finished run); changing any of these starts anew.
2. A run whose complete results are already in the results store does no work (it only
   copies them to ``out_dir``) and says so (``visbpp.core.engine.finished``, the same check that
   `visbpp run` makes before importing torch).
3. Jobs are grouped by ``tokenizer_key``; every group with work left loads its tokenizer (the
   first group also its first AR model, so a bad file fails before any write). The encode pass
   (``visbpp.core.engine.encode_pass``) decodes each image not yet in some group's token cache once,
   in DataLoader workers (``--workers auto``), and applies each group's preprocessing to it;
   tokens are fp32, always (tokens are data, shared by every model and by bf16 and fp32
   runs); bad images are recorded in the cache with the reason.
4. Per group, each AR model scores the cached tokens in fixed batches
   (``visbpp.core.engine.score_loop``); finished batches go to the run state
   (``visbpp.core.store.runstate``) through a background writer, flushed at most every
   ``persist.FLUSH_SECONDS`` (and at the end, on cancel and on error), so that a rerun after
   Ctrl-C or kill -9 continues with the same batches — hence bits identical to an
   uninterrupted run. Batches are fixed over the subset, so a torchrun with N ranks (batch
   k of the pending ones goes to rank k mod N) scores the same batches as one process.
5. Rank 0 gathers the rows, reduces sums in float64, writes ``out_dir`` and the results
   store (``visbpp.core.store.results``).

Numerics: fp32 by default, optional bf16 autocast of the AR forward (the families keep the
log-softmax in fp32), bits summed in float64 on the device, per batch. ``--compile`` wraps
the AR forward in torch.compile; on CUDA the flash / memory-efficient SDPA kernels are allowed
(both recorded in ``results.json``). TF32 stays off unless asked, and
then applies to the AR forward only: encoding always runs with TF32 off.

Errors before any work: an ``out_dir`` or cache dir that cannot be written (``OutputError``),
a run already in progress in another process (``RunInProgressError``: a filelock per run and
rank under ``<cache_dir>/locks/`` is held for the whole run). A model that scored no image
(every selected image was bad) is a ``DataError`` and nothing is marked complete. Data with
more classes than a model's ``num_classes`` is an error; with fewer, a warning event
(``StageChanged`` with stage ``"warning"``) names both numbers.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Callable, Sequence

import torch

from visbpp.core.engine import data as D
from visbpp.core.engine import encode_pass as EP
from visbpp.core.engine import finished as FIN
from visbpp.core.engine import preprocessing as PP
from visbpp.core.engine import recon as RC
from visbpp.core.engine import runtime as RT
from visbpp.core.engine import score_loop as SL
from visbpp.core.engine.events import Event, ImageSkipped, ModelFinished, RunFinished, RunStarted, StageChanged
from visbpp.core.engine.run_types import RunResult, RunSettings, ScoringJob  # noqa: F401 - re-exported (engine API)
from visbpp.core.engine.runtime import find_batch_size  # noqa: F401 - re-exported (engine API)
from visbpp.core.linear import backend as linear_backend
from visbpp.core.nll import NonFiniteNLLError  # noqa: F401 - re-exported (engine API)
from visbpp.core.registry.class_names import describe
from visbpp.core.store import results as R
from visbpp.core.store import token_store as TS
from visbpp.core.store.runs import clear_run
from visbpp.core.store.runstate import RunInProgressError, RunState, run_lock  # noqa: F401 - re-exported
from visbpp.core.store.token_cache import TokenCache, image_key

LN2 = 0.6931471805599453
NO_LABEL = "no label in the CSV"
CPU_AUTO_BATCH = 16          # --batch-size auto on CPU (no OOM signal to back off from)
GPU_AUTO_START = 512         # first candidate of --batch-size auto on CUDA/MPS


class _Emitter:
    def __init__(self, cb, rank):
        self.cb = cb if rank == 0 else None

    def __call__(self, ev: Event) -> None:
        if self.cb is not None:
            self.cb(ev)


def _to_device(m, device):
    return m.to(device) if isinstance(m, torch.nn.Module) else m


def run(jobs: Sequence[ScoringJob], settings: RunSettings, on_event: Callable[[Event], None] | None = None,
        cancel: threading.Event | None = None) -> RunResult:
    """Score ``jobs`` on the data of ``settings`` (see the module docstring)."""
    cache_dir = FIN.check_run(jobs, settings)
    dist = RT.dist_from_env()
    device = RT.resolve_device(settings.device, dist.local_rank)
    RT.init_dist(dist, device)
    RT.autocast(device, settings.dtype)  # validates the dtype name
    RT.efficient_attention(device)
    PP.check(settings.preprocess)
    emit = _Emitter(on_event, dist.rank)

    where = FIN.locate(jobs, settings, cache_dir, device.type)  # data, subset, run id, results-store folder
    ds, samples, identity, run_id, store = where.ds, where.samples, where.identity, where.run_id, where.store

    done = None if settings.force else R.finished_run(store, dist.rank == 0)  # complete, per_image.csv intact
    if done is not None:
        return FIN.noop_result(done, store, settings, emit, dist.rank)
    lock = run_lock(cache_dir, run_id, dist.rank)
    try:
        if settings.force and dist.rank == 0:  # results and run state dropped; the token cache stays
            clear_run(cache_dir, run_id)
        done = None if settings.force else R.finished_run(store, dist.rank == 0)  # finished while we waited
        if done is not None:
            return FIN.noop_result(done, store, settings, emit, dist.rank)
        return _run_locked(jobs, settings, emit, cancel, cache_dir, dist, device, ds, samples, identity, run_id)
    finally:
        lock.release()


def _run_locked(jobs, settings, emit, cancel, cache_dir, dist, device, ds, samples, identity, run_id) -> RunResult:
    ids = [j.model_id for j in jobs]
    emit(RunStarted(run_id, tuple(ids), len(samples)))
    for note in RT.dtype_notes(device, settings.dtype):
        emit(StageChanged("", "warning", note))
    for image in _unlabeled(ds, settings):
        emit(ImageSkipped(image, NO_LABEL))
    state = RunState(os.path.join(cache_dir, "runs", run_id), identity, dist.rank)
    ctx = _Ctx(settings, device, dist, emit, cancel, cache_dir, state, samples, ds)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    groups: dict[str, list[ScoringJob]] = {}
    for j in jobs:
        groups.setdefault(j.tokenizer_key, []).append(j)
    new_rows: dict[str, list[dict]] = {j.model_id: [] for j in jobs}
    bad: dict[str, dict[str, str]] = {}   # tokenizer_key -> {image: reason}
    resolution: dict[str, int] = {}
    plans: list[EP.GroupPlan] = []
    for key, group in groups.items():
        plan = ctx.plan(group, bad.setdefault(key, {}), resolution, load_model=not plans)
        if plan is not None:
            plans.append(plan)
    cancelled = False
    if plans:
        ctx.barrier()  # every rank has read the same cache state before any rank writes to it
        cancelled = EP.encode_all(ctx, plans)  # one decode per image for every tokenizer
        if not cancelled:
            ctx.barrier()
    for plan in plans:
        if cancelled:
            break
        cancelled = ctx.score_group(plan, new_rows, bad[plan.group[0].tokenizer_key], resolution)
        plan.tok = plan.model = None
        RT.free_memory(device)
    return ctx.finish(jobs, run_id, identity, new_rows, bad, resolution, cancelled, started)


def _reference_source(jobs) -> str | None:
    """Where the run's ``reference_bpp`` values come from: one source, or per model when they differ."""
    srcs = {j.model_id: j.reference_bpp_source for j in jobs if j.reference_bpp_source}
    if len(set(srcs.values())) <= 1:
        return next(iter(srcs.values()), None)
    return "; ".join(f"{m}: {s}" for m, s in srcs.items())


def _unlabeled(ds, settings) -> tuple[str, ...]:
    """Flat-layout files without a CSV row, reported as skipped when the whole folder is scored."""
    return ds.unlabeled if settings.limit is None and settings.per_class is None else ()


class _Ctx:
    def __init__(self, settings, device, dist, emit, cancel, cache_dir, state, samples, ds):
        self.s, self.device, self.dist, self.emit, self.cancel = settings, device, dist, emit, cancel
        self.cache_dir, self.state, self.samples, self.ds = cache_dir, state, samples, ds
        self.batch_sizes: dict[str, int] = {}
        self.warned: set[str] = set()
        self.token_cache_keys: dict[str, str] = {}
        self.keys = {s.image: image_key(s.path) for s in samples}  # identity of each image, as the token cache
        self.preprocess_ids: dict[str, str] = {}
        self.workers: int | None = None   # decode workers of the encode pass (resolved from --workers)

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def barrier(self) -> None:
        if self.dist.active:
            import torch.distributed as td

            td.barrier()

    # ------------------------------------------------------------------ per tokenizer group
    def check_classes(self, j, model) -> None:
        """Labels by class name: the model must have those classes. Labels by position (models of
        unknown classes): error when the data has more classes than the model; warn (once) when fewer."""
        ncls, have = getattr(model, "num_classes", None), len(self.ds.classes)
        if j.class_names is not None:
            if ncls is not None and ncls != len(j.class_names):
                raise D.DataError(f"{j.model_id} has num_classes={ncls}, but its labels come from "
                                  f"{describe(j.class_names)}: this model was trained on other classes")
            return
        if ncls is None or not have or have == ncls or j.model_id in self.warned:
            return
        if have > ncls:
            raise D.DataError(f"{self.ds.root}: the data has {have} classes but {j.model_id} has num_classes={ncls}: "
                              f"class labels would be out of range (is this the right data folder?)")
        self.warned.add(j.model_id)
        self.emit(StageChanged(j.model_id, "warning", f"the data has {have} classes but the model has "
                               f"num_classes={ncls}: labels are the data's class indices 0..{have - 1}"))

    def plan(self, group, bad, resolution, load_model: bool) -> EP.GroupPlan | None:
        """Load a group's tokenizer (and, for the first group, its first model: a bad file fails
        before any write) and open its token cache; None when the group was scored earlier."""
        done = {j.model_id: self.state.done_rows(j.model_id, self.keys) for j in group}
        pending = [j for j in group if any(s.image not in done[j.model_id] for s in self.samples)]
        if not pending:  # scored in an earlier session: bad images and resolution are in the run state
            bad.update(self.state.meta.get("bad", {}).get(group[0].tokenizer_key, {}))
            for j in group:
                resolution[j.model_id] = self.state.meta.get("resolution", {}).get(j.model_id)
            return None
        first = pending[0]
        self.emit(StageChanged(first.model_id, "loading", "tokenizer"))
        tok = _to_device(first.load_tokenizer(), self.device)
        if hasattr(tok, "eval"):
            tok.eval()
        model = None
        if load_model:
            self.emit(StageChanged(first.model_id, "loading", "transformer"))
            model = _to_device(first.load_model(tok), self.device)
            self.check_classes(first, model)
        pp = PP.for_tokenizer(self.s.preprocess, tok)
        cache = TokenCache(self.cache_dir, first.tokenizer_key, pp.id, tok.image_size,
                           getattr(tok, "tokens_per_image", None), getattr(tok, "vocab_size", None))
        self.token_cache_keys[first.tokenizer_key] = cache.folder_key
        self.preprocess_ids[first.tokenizer_key] = pp.id
        need = [s for s in self.samples if any(s.image not in done[j.model_id] for j in pending)]
        return EP.GroupPlan(group, pending, done, tok, pp, cache, model, need)

    def score_group(self, plan: EP.GroupPlan, new_rows, bad, resolution) -> bool:
        """Score every pending model of an encoded group; True when cancelled."""
        tok, cache, model, first = plan.tok, plan.cache, plan.model, plan.pending[0]
        cache.reload()
        for msg in cache.set_aside:
            self.emit(StageChanged(first.model_id, "warning", msg))
        for s in self.samples:
            reason = cache.bad.get(self.keys[s.image])
            if reason is not None and s.image not in bad:
                bad[s.image] = reason
                self.emit(ImageSkipped(s.image, reason))
        good = [s for s in self.samples if s.image not in bad]
        self.state.meta.setdefault("bad", {})[first.tokenizer_key] = dict(bad)
        for j in plan.group:
            resolution[j.model_id] = int(tok.image_size)
            self.state.meta.setdefault("resolution", {})[j.model_id] = int(tok.image_size)
        self.state.save_meta()
        if self.s.recon and RC.reconstruct(self, tok, cache, good, first.tokenizer_key, first.model_id):
            return True
        for j in plan.pending:
            if model is None:
                self.emit(StageChanged(j.model_id, "loading", "transformer"))
                model = _to_device(j.load_model(tok), self.device)
            if hasattr(model, "eval"):
                model.eval()
            if self.s.compile:
                model = SL.compiled(model)
            if SL.score(self, j, model, tok, cache, good, plan.done[j.model_id], new_rows[j.model_id]):
                return True
            model = plan.model = None
            RT.free_memory(self.device)
        return False

    # ------------------------------------------------------------------ results
    def _gather(self, obj):
        if not self.dist.active:
            return [obj]
        import torch.distributed as td

        out = [None] * self.dist.world
        td.all_gather_object(out, obj)
        return out

    def finish(self, jobs, run_id, identity, new_rows, bad, resolution, cancelled, started) -> RunResult:
        if self.dist.active:
            flags = self._gather(cancelled)
            cancelled = any(flags)
        gathered = self._gather({k: v for k, v in new_rows.items()})
        all_new: dict[str, list[dict]] = {j.model_id: [] for j in jobs}
        for part in gathered:
            for k, v in part.items():
                all_new[k].extend(v)
        if self.dist.active:  # float64 reduction of the sums, checked against the gathered rows
            import torch.distributed as td

            mine = torch.tensor([sum(r["bits"] for r in new_rows[j.model_id]) for j in jobs], dtype=torch.float64)
            td.all_reduce(mine)
            for i, j in enumerate(jobs):
                want = sum(r["bits"] for r in all_new[j.model_id])
                assert abs(float(mine[i]) - want) <= 1e-9 * max(1.0, abs(want)), "rank reduction mismatch"
        order = {s.image: i for i, s in enumerate(self.samples)}
        rows: list[dict] = []
        summaries: list[dict] = []
        union = {k: v for g in bad.values() for k, v in g.items()}
        sel_bad = [{"image": s.image, "reason": union[s.image]} for s in self.samples if s.image in union]
        unl = _unlabeled(self.ds, self.s)
        sel_bad += [{"image": u, "reason": NO_LABEL} for u in unl]
        n_bad = {j.model_id: len(bad.get(j.tokenizer_key, {})) + len(unl) for j in jobs}
        for j in jobs:
            merged = dict(self.state.done_rows(j.model_id, self.keys))
            merged.update({r["image"]: r for r in all_new[j.model_id]})
            mr = sorted((r for r in merged.values() if r["image"] in order), key=lambda r: order[r["image"]])
            rows.extend(mr)
            summaries.append(R.summarize(j.model_id, mr, n_bad[j.model_id], j.family, resolution.get(j.model_id),
                                         j.reference_bpp, self.s.dtype, self.s.preprocess))
        meta = self._metadata(jobs, identity, started)
        result = RunResult(run_id, summaries, rows, sel_bad, meta, cancelled, self.s.out_dir)
        complete = not cancelled and all(s["n_images"] + s["images_skipped"] == len(self.samples) + len(unl)
                                         for s in summaries)
        empty = [s["model_id"] for s in summaries if s["n_images"] == 0]
        if complete and empty:  # never mark a run complete that has no BPP
            first = f" (e.g. {sel_bad[0]['image']}: {sel_bad[0]['reason']})" if sel_bad else ""
            raise D.DataError(f"{', '.join(empty)}: 0 images scored: all {len(self.samples)} selected images were "
                              f"skipped{first}; nothing written")
        if self.dist.rank == 0 and complete:
            doc = {"run_id": run_id, "complete": True, "started_at": started,
                   "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "models": summaries, "skipped": sel_bad, "metadata": meta,
                   "per_image_file": "per_image.csv"}
            self.emit(StageChanged("", "writing", self.s.out_dir or ""))
            TS.finalize(self.state.folder, jobs, rows, summaries, [R.store_dir(run_id, self.cache_dir), self.s.out_dir])
            RC.finalize(self, jobs, summaries, [R.store_dir(run_id, self.cache_dir), self.s.out_dir])
            result.store_dir = R.store(doc, rows, self.cache_dir)
            if self.s.out_dir:
                R.write_outputs(self.s.out_dir, doc, rows)
            for s in summaries:
                self.emit(ModelFinished(s["model_id"], s["n_images"], s["bpp"], s["bits_per_token"], s))
        if self.dist.active:
            self.barrier()
        result.cancelled = cancelled or not complete
        self.emit(RunFinished(run_id, self.s.out_dir if complete else None, cancelled))
        return result

    def _metadata(self, jobs, identity, started) -> dict:
        ckpts = {}
        for j in jobs:
            ckpts[j.model_id] = {role: {"path": os.path.abspath(p),
                                        "sha256": R.file_sha256(p, self.cache_dir) if os.path.isfile(p) else None}
                                 for role, p in j.checkpoints.items()}
        dev = str(self.device)
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None
        return {
            "versions": R.versions(), "git_hash": R.git_hash(), "checkpoints": ckpts,
            "tokenizer_keys": {j.model_id: j.tokenizer_key for j in jobs},
            "token_cache": self.token_cache_keys, "preprocess": self.s.preprocess,
            "preprocess_ids": self.preprocess_ids, "reference_bpp_source": _reference_source(jobs), "device": dev, "device_name": name,
            "dtype": self.s.dtype, "tf32": self.s.tf32, "batch_size": self.batch_sizes or
            {j.model_id: self.state.batch_size(j.model_id) for j in jobs},
            "batch_size_setting": self.s.batch_size, "world_size": self.dist.world, "workers": self.s.workers,
            "decode_workers": self.workers, "compile": self.s.compile, "sdpa": RT.sdpa_backends(self.device),
            "cpu_linear": linear_backend() if self.device.type == "cpu" else None,
            "subset": {"data": self.ds.root, "layout": self.ds.layout, "labels_csv": identity["labels_csv"],
                       "limit": self.s.limit, "per_class": self.s.per_class, "n_selected": len(self.samples),
                       "n_classes": len(self.ds.classes)},
            "started_at": started, "settings": dataclasses.asdict(self.s),
            "notes": RT.dtype_notes(self.device, self.s.dtype),
        }
