"""The scoring engine: images -> tokens (cached) -> teacher-forced bits per image, per model.

Flow of :func:`run`:

1. List the data (``visbpp.core.engine.data``) and select the subset; the run id
   (``visbpp.core.engine.run_identity``) is a hash of the jobs, the data, the subset and the settings
   that change bits: rerunning the same command on the same machine resumes (or finds the
   finished run); changing any of these starts anew.
2. A run whose complete results are already in the results store does no work (it only
   copies them to ``out_dir``) and says so, with a ``ModelFinished`` per model
   (``visbpp.core.engine.finished``, the same check that `visbpp run` makes before importing torch).
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
   k of the pending ones goes to rank k mod N) scores the same batches as one process. As each
   model's scoring completes (at once for a model scored in an earlier session) it is summarised
   and ``ModelFinished`` is emitted (``visbpp.core.engine.finalize``).
5. Rank 0 gathers the rows, reduces sums in float64, writes ``out_dir`` and the results
   store (``visbpp.core.store.results``) — only when every model is complete: a cancel keeps the
   run state, and the same run resumes.

Numerics: fp32 by default, optional bf16 autocast of the AR forward (the families keep the
log-softmax in fp32), bits summed in float64 on the device, per batch. ``--compile`` wraps
the AR forward in torch.compile; on CUDA the flash / memory-efficient SDPA kernels are allowed
(both recorded in ``results.json``). TF32 stays off unless asked, and
then applies to the AR forward only: encoding always runs with TF32 off.

Errors before any work: settings that are not valid (``RunSettings`` checks itself), an
``out_dir`` or cache dir that cannot be written (``OutputError``), a run already in progress in
another process (``RunInProgressError``: a filelock per run and rank under
``<cache_dir>/locks/`` is held for the whole run). A model that scored no image (every selected
image was bad) is a ``DataError`` and nothing is marked complete. Data with more classes than a
model's ``num_classes`` is an error; with fewer, a warning event (``StageChanged`` with stage
``"warning"``) names both numbers.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Sequence

import torch

from visbpp.core import linear as LN
from visbpp.core.engine import encode_pass as EP
from visbpp.core.engine import finished as FIN
from visbpp.core.engine import preprocessing as PP
from visbpp.core.engine import recon as RC
from visbpp.core.engine import runtime as RT
from visbpp.core.engine import score_loop as SL
from visbpp.core.engine.constants import NO_LABEL
from visbpp.core.engine.context import RunContext
from visbpp.core.engine.events import Event, ImageSkipped, RunStarted, StageChanged
from visbpp.core.engine.finalize import Tally, finish, now, run_notes, unlabeled
from visbpp.core.engine.run_types import RunResult, RunSettings, ScoringJob  # noqa: F401 - re-exported (engine API)
from visbpp.core.engine.runtime import find_batch_size  # noqa: F401 - re-exported (engine API)
from visbpp.core.nll import NonFiniteNLLError  # noqa: F401 - re-exported (engine API)
from visbpp.core.store.reading import finished_run
from visbpp.core.store.runs import clear_run
from visbpp.core.store.runstate import RunInProgressError, RunState, run_lock  # noqa: F401 - re-exported
from visbpp.core.store.token_cache import TokenCache


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
    RT.efficient_attention(device)
    emit = _Emitter(on_event, dist.rank)

    where = FIN.locate(jobs, settings, cache_dir, device.type, LN.backend())  # data, subset, run id, store folder
    done = None if settings.force else finished_run(where.store, dist.rank == 0)  # complete, per_image.csv intact
    if done is not None:
        return FIN.noop_result(done, where.store, settings, emit, dist.rank)
    lock = run_lock(cache_dir, where.run_id, dist.rank)
    try:
        if settings.force and dist.rank == 0:  # results and run state dropped; the token cache stays
            clear_run(cache_dir, where.run_id)
        done = None if settings.force else finished_run(where.store, dist.rank == 0)  # finished while we waited
        if done is not None:
            return FIN.noop_result(done, where.store, settings, emit, dist.rank)
        state = RunState(os.path.join(cache_dir, "runs", where.run_id), where.identity, dist.rank)
        ctx = RunContext(settings, device, dist, emit, cancel, cache_dir, state, where.samples, where.ds)
        return _run_locked(ctx, list(jobs), where)
    finally:
        lock.release()


def _run_locked(ctx: RunContext, jobs: list[ScoringJob], where: FIN.Located) -> RunResult:
    ctx.emit(RunStarted(where.run_id, tuple(j.model_id for j in jobs), len(ctx.samples)))
    for note in run_notes(ctx):
        ctx.emit(StageChanged("", "warning", note))
    for image in unlabeled(ctx):
        ctx.emit(ImageSkipped(image, NO_LABEL))
    started = now()
    tally = Tally(ctx, jobs)
    groups: dict[str, list[ScoringJob]] = {}
    for j in jobs:
        groups.setdefault(j.tokenizer_key, []).append(j)
    plans: list[EP.GroupPlan] = []
    for group in groups.values():
        plan = _plan(ctx, group, tally, load_model=not plans)
        if plan is not None:
            plans.append(plan)
    cancelled = False
    if plans:
        ctx.barrier()  # every rank has read the same cache state before any rank writes to it
        cancelled = EP.encode_all(ctx, plans)  # one decode per image for every tokenizer
        if not cancelled:
            ctx.barrier()
    for plan in plans:
        cancelled = cancelled or ctx.cancelled()
        if cancelled:
            break
        cancelled = _score_group(ctx, plan, tally)
        plan.tok = plan.model = None
        RT.free_memory(ctx.device)
    return finish(ctx, tally, where.run_id, where.identity, cancelled, started)


def _plan(ctx: RunContext, group: list[ScoringJob], tally: Tally, load_model: bool) -> EP.GroupPlan | None:
    """Load a group's tokenizer (and, for the first group, its first model: a bad file fails
    before any write) and open its token cache; None when the group was scored in an earlier
    session (its models are finished at once)."""
    done = {j.model_id: ctx.state.done_rows(j.model_id, ctx.keys) for j in group}
    pending = [j for j in group if any(s.image not in done[j.model_id] for s in ctx.samples)]
    if not pending:  # scored in an earlier session: bad images and resolution are in the run state
        tally.bad[group[0].tokenizer_key].update(ctx.state.meta.get("bad", {}).get(group[0].tokenizer_key, {}))
        for j in group:
            tally.resolution[j.model_id] = ctx.state.meta.get("resolution", {}).get(j.model_id)
            tally.model_finished(j)
        return None
    first = pending[0]
    ctx.emit(StageChanged(first.model_id, "loading", "tokenizer"))
    tok = _to_device(first.load_tokenizer(), ctx.device)
    if hasattr(tok, "eval"):
        tok.eval()
    model = None
    if load_model:
        ctx.emit(StageChanged(first.model_id, "loading", "transformer"))
        model = _to_device(first.load_model(tok), ctx.device)
        ctx.check_classes(first, model)
    pp = PP.for_tokenizer(ctx.settings.preprocess, tok)
    cache = TokenCache(ctx.cache_dir, first.tokenizer_key, pp.id, tok.image_size,
                       getattr(tok, "tokens_per_image", None), getattr(tok, "vocab_size", None))
    ctx.token_cache_keys[first.tokenizer_key] = cache.folder_key
    ctx.preprocess_ids[first.tokenizer_key] = pp.id
    need = [s for s in ctx.samples if any(s.image not in done[j.model_id] for j in pending)]
    return EP.GroupPlan(group, pending, done, tok, pp, cache, model, need)


def _score_group(ctx: RunContext, plan: EP.GroupPlan, tally: Tally) -> bool:
    """Score every pending model of an encoded group, each finished as it completes; True when cancelled."""
    tok, cache, model, first = plan.tok, plan.cache, plan.model, plan.pending[0]
    key = first.tokenizer_key
    bad = tally.bad[key]
    cache.reload()
    for msg in cache.set_aside:
        ctx.emit(StageChanged(first.model_id, "warning", msg))
    for s in ctx.samples:
        reason = cache.bad.get(ctx.keys[s.image])
        if reason is not None and s.image not in bad:
            bad[s.image] = reason
            ctx.emit(ImageSkipped(s.image, reason))
    good = [s for s in ctx.samples if s.image not in bad]
    ctx.state.meta.setdefault("bad", {})[key] = dict(bad)
    for j in plan.group:
        tally.resolution[j.model_id] = int(tok.image_size)
        ctx.state.meta.setdefault("resolution", {})[j.model_id] = int(tok.image_size)
    ctx.state.save_meta()
    if ctx.settings.recon and RC.reconstruct(ctx, tok, cache, good, key, first.model_id):
        return True
    for j in plan.group:  # scored in an earlier session
        if j not in plan.pending:
            tally.model_finished(j)
    for j in plan.pending:
        if ctx.cancelled():  # a model not started when the cancel came is not started
            return True
        if model is None:
            ctx.emit(StageChanged(j.model_id, "loading", "transformer"))
            model = _to_device(j.load_model(tok), ctx.device)
        if hasattr(model, "eval"):
            model.eval()
        if ctx.settings.compile:
            model = SL.compiled(model)
        if SL.score(ctx, j, model, tok, cache, good, plan.done[j.model_id], tally.new_rows[j.model_id]):
            return True
        tally.model_finished(j)
        model = plan.model = None
        RT.free_memory(ctx.device)
    return False
