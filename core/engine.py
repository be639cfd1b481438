"""The scoring engine: images -> tokens (cached) -> teacher-forced bits per image, per model.

Flow of :func:`run`:

1. List the data (``visbpp.core.data``) and select the subset; the run id is a hash of the
   jobs (ids, tokenizer keys, checkpoint paths/sizes/mtimes), the data, the subset, the
   preprocessing protocol (``visbpp.core.preprocessing``), the dtype, TF32, the device type
   and the batch-size setting: rerunning the same command on the same machine resumes (or
   finds the finished run); changing any of these starts anew.
2. A run whose complete results are already in the results store does no work (it only
   copies them to ``out_dir``) and says so.
3. Jobs are grouped by ``tokenizer_key``. Per group the tokenizer is loaded once and every
   image not yet in the token cache is encoded (fp32, always: tokens are data, shared by
   every model and by bf16 and fp32 runs); bad images are recorded in the cache with the
   reason. Then each AR model of the group scores the cached tokens in fixed batches.
4. Each finished batch is appended to the run state (``visbpp.core.runstate``) so that a
   rerun after Ctrl-C or kill -9 continues with the same batches — hence bits identical to
   an uninterrupted run. Batches are fixed over the subset, so a torchrun with N ranks (batch
   k of the pending ones goes to rank k mod N) scores the same batches as one process.
5. Rank 0 gathers the rows, reduces sums in float64, writes ``out_dir`` and the results
   store (``visbpp.core.results``).

Numerics: fp32 by default, optional bf16 autocast of the AR forward (the families keep the
log-softmax in fp32), bits summed in float64 on the host. TF32 stays off unless asked, and
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
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping, Sequence

import torch

from . import data as D
from . import preprocessing as PP
from . import recon as RC
from . import results as R
from . import runtime as RT
from . import token_store as TS
from .cards import PUBLISHED_TABLE
from .errors import ConfigError
from .events import Event, ImageSkipped, ModelFinished, Progress, RunFinished, RunStarted, StageChanged
from .interfaces import ARModel, ImageTokenizer
from .nll import NonFiniteNLLError, check_finite  # noqa: F401 - NonFiniteNLLError re-exported (engine API)
from .runs import clear_run
from .runstate import RunInProgressError, RunState, run_lock  # noqa: F401 - re-exported
from .runtime import find_batch_size  # noqa: F401 - re-exported (engine API)
from .token_cache import TokenCache, image_key

LN2 = 0.6931471805599453
NO_LABEL = "no label in the CSV"
CPU_AUTO_BATCH = 16          # --batch-size auto on CPU (no OOM signal to back off from)
GPU_AUTO_START = 512         # first candidate of --batch-size auto on CUDA/MPS


@dataclass(frozen=True)
class ScoringJob:
    """One AR model to score (see the engine contract)."""

    model_id: str
    family: str
    tokenizer_key: str
    load_tokenizer: Callable[[], ImageTokenizer]
    load_model: Callable[[ImageTokenizer], ARModel]
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    reference_bpp: float | None = None


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
    workers: int = 0
    cache_dir: str | None = None
    preprocess: str = PP.DEFAULT_PREPROCESSING   # "official" (the family's own) | "paper" (core/preprocessing.py)
    unconditional: bool = False  # also score every image with the model's null class (where it has one)
    recon: bool = False          # also decode the tokens: PSNR/SSIM per image and tokenizer (core/recon.py)
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


class _Emitter:
    def __init__(self, cb, rank):
        self.cb = cb if rank == 0 else None

    def __call__(self, ev: Event) -> None:
        if self.cb is not None:
            self.cb(ev)


def _identity(jobs, settings, samples, ds, device_type: str) -> dict:
    def stat(p):
        try:
            st = os.stat(p)
            return [os.path.abspath(p), st.st_size, st.st_mtime_ns]
        except OSError:
            return [p]

    return {
        "jobs": [[j.model_id, j.family, j.tokenizer_key, {k: stat(v) for k, v in sorted(j.checkpoints.items())}]
                 for j in jobs],
        "data": ds.root, "layout": ds.layout,
        "labels_csv": os.path.abspath(settings.labels_csv) if settings.labels_csv else None,
        "limit": settings.limit, "per_class": settings.per_class, "n_images": len(samples),
        "first_last": [samples[0].image, samples[-1].image] if samples else [],
        "dtype": settings.dtype, "batch_size": settings.batch_size, "tf32": settings.tf32, "device": device_type,
        "preprocess": settings.preprocess,
        **{k: True for k in ("unconditional", "recon") if getattr(settings, k)},
    }


def _to_device(m, device):
    return m.to(device) if isinstance(m, torch.nn.Module) else m


def _chunks(seq, n):
    return [seq[i:i + n] for i in range(0, len(seq), n)]


def run(jobs: Sequence[ScoringJob], settings: RunSettings, on_event: Callable[[Event], None] | None = None,
        cancel: threading.Event | None = None) -> RunResult:
    """Score ``jobs`` on the data of ``settings`` (see the module docstring)."""
    if not jobs:
        raise ConfigError("no models to score")
    ids = [j.model_id for j in jobs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"model ids must be unique in a run: {ids}")
    if settings.workers < 0:
        raise ConfigError(f"--workers {settings.workers}: expected 0 (decode in the main process) or more")
    cache_dir = R.usable_dirs(settings.out_dir, settings.cache_dir)
    dist = RT.dist_from_env()
    device = RT.resolve_device(settings.device, dist.local_rank)
    RT.init_dist(dist, device)
    RT.autocast(device, settings.dtype)  # validates the dtype name
    PP.check(settings.preprocess)
    emit = _Emitter(on_event, dist.rank)

    ds = D.scan(settings.data, settings.labels_csv)
    samples = D.select(ds.samples, settings.limit, settings.per_class)
    if not samples:
        raise D.DataError(f"{ds.root}: no images selected")
    identity = _identity(jobs, settings, samples, ds, device.type)
    run_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    store = R.store_dir(run_id, cache_dir)

    done = None if settings.force else R.finished_run(store, dist.rank == 0)  # complete, per_image.csv intact
    if done is not None:
        return _finished_noop(*done, store, settings, emit, dist)
    lock = run_lock(cache_dir, run_id, dist.rank)
    try:
        if settings.force and dist.rank == 0:  # results and run state dropped; the token cache stays
            clear_run(cache_dir, run_id)
        done = None if settings.force else R.finished_run(store, dist.rank == 0)  # finished while we waited
        if done is not None:
            return _finished_noop(*done, store, settings, emit, dist)
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
    cancelled = False
    for key, group in groups.items():
        cancelled = ctx.score_group(group, new_rows, bad.setdefault(key, {}), resolution)
        if cancelled:
            break
    return ctx.finish(jobs, run_id, identity, new_rows, bad, resolution, cancelled, started)


def _unlabeled(ds, settings) -> tuple[str, ...]:
    """Flat-layout files without a CSV row, reported as skipped when the whole folder is scored."""
    return ds.unlabeled if settings.limit is None and settings.per_class is None else ()


def _finished_noop(doc, rows, store, settings, emit, dist) -> RunResult:
    if dist.rank == 0 and settings.out_dir:
        TS.copy_outputs(store, settings.out_dir)
        R.write_outputs(settings.out_dir, doc, rows)
    msg = f"run {doc['run_id']} already finished at {doc.get('finished_at', '?')}: nothing recomputed (--force recomputes it)"
    emit(StageChanged("", "done", msg))
    emit(RunFinished(doc["run_id"], settings.out_dir, False))
    return RunResult(doc["run_id"], doc["models"], rows, doc.get("skipped", []), R.run_config(doc),
                     False, settings.out_dir, already_finished=True, store_dir=store)


class _Ctx:
    def __init__(self, settings, device, dist, emit, cancel, cache_dir, state, samples, ds):
        self.s, self.device, self.dist, self.emit, self.cancel = settings, device, dist, emit, cancel
        self.cache_dir, self.state, self.samples, self.ds = cache_dir, state, samples, ds
        self.batch_sizes: dict[str, int] = {}
        self.warned: set[str] = set()
        self.token_cache_keys: dict[str, str] = {}
        self.keys = {s.image: image_key(s.path) for s in samples}  # identity of each image, as the token cache
        self.preprocess_ids: dict[str, str] = {}

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def barrier(self) -> None:
        if self.dist.active:
            import torch.distributed as td

            td.barrier()

    # ------------------------------------------------------------------ per tokenizer group
    def check_classes(self, j, model) -> None:
        """Error when the data has more classes than the model; warn (once) when it has fewer."""
        ncls, have = getattr(model, "num_classes", None), len(self.ds.classes)
        if ncls is None or not have or have == ncls or j.model_id in self.warned:
            return
        if have > ncls:
            raise D.DataError(f"{self.ds.root}: the data has {have} classes but {j.model_id} has num_classes={ncls}: "
                              f"class labels would be out of range (is this the right data folder?)")
        self.warned.add(j.model_id)
        self.emit(StageChanged(j.model_id, "warning", f"the data has {have} classes but the model has "
                               f"num_classes={ncls}: labels are the data's class indices 0..{have - 1}"))

    def score_group(self, group, new_rows, bad, resolution) -> bool:
        done = {j.model_id: self.state.done_rows(j.model_id, self.keys) for j in group}
        pending = [j for j in group if any(s.image not in done[j.model_id] for s in self.samples)]
        if not pending:  # scored in an earlier session: bad images and resolution are in the run state
            bad.update(self.state.meta.get("bad", {}).get(group[0].tokenizer_key, {}))
            for j in group:
                resolution[j.model_id] = self.state.meta.get("resolution", {}).get(j.model_id)
            return False
        first = pending[0]
        self.emit(StageChanged(first.model_id, "loading", "tokenizer"))
        tok = _to_device(first.load_tokenizer(), self.device)
        if hasattr(tok, "eval"):
            tok.eval()
        self.emit(StageChanged(first.model_id, "loading", "transformer"))
        model = _to_device(first.load_model(tok), self.device)  # a bad file fails here, before any write
        self.check_classes(first, model)
        pp = PP.for_tokenizer(self.s.preprocess, tok)
        cache = TokenCache(self.cache_dir, first.tokenizer_key, pp.id, tok.image_size,
                           getattr(tok, "tokens_per_image", None), getattr(tok, "vocab_size", None))
        self.token_cache_keys[first.tokenizer_key] = cache.folder_key
        self.preprocess_ids[first.tokenizer_key] = pp.id
        need = [s for s in self.samples if any(s.image not in done[j.model_id] for j in pending)]
        self.barrier()  # every rank has read the same cache state before any rank writes to it
        if self._encode(tok, pp, cache, need, first.model_id):
            return True
        self.barrier()
        cache.reload()
        for msg in cache.set_aside:
            self.emit(StageChanged(first.model_id, "warning", msg))
        for s in self.samples:
            reason = cache.bad.get(image_key(s.path))
            if reason is not None and s.image not in bad:
                bad[s.image] = reason
                self.emit(ImageSkipped(s.image, reason))
        good = [s for s in self.samples if s.image not in bad]
        self.state.meta.setdefault("bad", {})[first.tokenizer_key] = dict(bad)
        for j in group:
            resolution[j.model_id] = int(tok.image_size)
            self.state.meta.setdefault("resolution", {})[j.model_id] = int(tok.image_size)
        self.state.save_meta()
        if self.s.recon and RC.reconstruct(self, tok, cache, good, first.tokenizer_key, first.model_id):
            return True
        for j in pending:
            if model is None:
                self.emit(StageChanged(j.model_id, "loading", "transformer"))
                model = _to_device(j.load_model(tok), self.device)
            if hasattr(model, "eval"):
                model.eval()
            if self._score(j, model, tok, cache, good, done[j.model_id], new_rows[j.model_id]):
                return True
            model = None
            RT.free_memory(self.device)
        del tok
        RT.free_memory(self.device)
        return False

    def _encode(self, tok, pp, cache, need, label) -> bool:
        todo = [s for s in need if not cache.has(image_key(s.path))]
        bs = self.s.batch_size if isinstance(self.s.batch_size, int) else (
            CPU_AUTO_BATCH if self.device.type == "cpu" else 64)
        batches = _chunks(list(range(len(todo))), bs)[self.dist.rank::self.dist.world]
        total = sum(len(b) for b in batches)
        if not total:
            return False
        self.emit(StageChanged(label, "encoding", f"{total} images"))
        loader = torch.utils.data.DataLoader(
            D.ImageDataset(todo, pp.transform, pp.decode), batch_sampler=batches, num_workers=self.s.workers,
            collate_fn=D.collate, pin_memory=self.device.type == "cuda")
        rate = RT.Rate(total)
        for pos, x, badl in loader:
            if self.cancelled():
                return True
            toks = self._encode_batch(tok, x) if x is not None else None
            cache.put([image_key(todo[i].path) for i in pos], toks,
                      {image_key(todo[i].path): r for i, r in badl})
            ips, eta = rate.add(len(pos) + len(badl))
            self.emit(Progress(label, "encoding", rate.done, total, ips, eta, RT.memory_stats(self.device)))
        return False

    def _encode_batch(self, tok, x):
        x = x.to(self.device, non_blocking=True)
        try:
            with torch.inference_mode(), RT.tf32_mode(False):  # tokens are data: never TF32
                return tok.encode(x).cpu()
        except Exception as e:  # noqa: BLE001
            if not RT.is_oom(e) or len(x) == 1:
                raise
        RT.free_memory(self.device)
        h = len(x) // 2
        return torch.cat([self._encode_batch(tok, x[:h]), self._encode_batch(tok, x[h:])])

    # ------------------------------------------------------------------ per model
    def _batch_size(self, j, model, cache, good) -> int:
        bs = self.state.batch_size(j.model_id)
        if bs is None:
            if isinstance(self.s.batch_size, int):
                bs = self.s.batch_size
            elif self.device.type == "cpu":
                bs = CPU_AUTO_BATCH
            else:
                bs = self._probe_batch(model, cache, good)
            if self.dist.active:  # every rank uses rank 0's choice
                import torch.distributed as td

                t = torch.tensor([bs], dtype=torch.long)
                td.broadcast(t, 0)
                bs = int(t)
            self.state.set_batch_size(j.model_id, bs)
        self.batch_sizes[j.model_id] = bs
        return bs

    def _probe_batch(self, model, cache, good) -> int:
        """Largest batch (halving from GPU_AUTO_START) whose forward fits, backing off on OOM."""
        ex = next((cache.tokens[image_key(s.path)] for s in good if image_key(s.path) in cache.tokens), None)
        if ex is None:
            return CPU_AUTO_BATCH

        def attempt(bs):
            toks = ex.unsqueeze(0).expand(bs, *ex.shape).contiguous().to(self.device)
            labels = torch.zeros(bs, dtype=torch.long, device=self.device)
            with torch.inference_mode(), RT.autocast(self.device, self.s.dtype), RT.tf32_mode(self.s.tf32):
                model.token_nll(toks, labels)
            RT.synchronize(self.device)

        return find_batch_size(attempt, min(GPU_AUTO_START, max(1, len(good))), self.device)

    def _score(self, j, model, tok, cache, good, done, out_rows) -> bool:
        self.check_classes(j, model)
        bs = self._batch_size(j, model, cache, good)
        batches = [b for b in _chunks(good, bs) if any(s.image not in done for s in b)]
        mine = batches[self.dist.rank::self.dist.world]
        total = sum(len(b) for b in mine)
        self.emit(StageChanged(j.model_id, "scoring", f"{total} images, batch size {bs}"))
        RT.reset_peak(self.device)
        appender = self.state.appender(j.model_id)
        chunks = TS.ChunkWriter(self.state.folder, j.model_id, model, self.s.unconditional)
        rate = RT.Rate(total)
        pixels = int(tok.image_size) ** 2
        try:
            for b in mine:
                if self.cancelled():
                    return True
                keys = [image_key(s.path) for s in b]
                toks = torch.stack([cache.tokens[k] for k in keys]).to(self.device)
                labels = torch.tensor([s.label for s in b], dtype=torch.long, device=self.device)
                with torch.inference_mode(), RT.autocast(self.device, self.s.dtype), RT.tf32_mode(self.s.tf32):
                    nll, parts, null = TS.score_batch(model, toks, labels, self.s.unconditional)
                nll = nll.double()
                check_finite(nll, j.model_id, [s.image for s in b], self.s.dtype)  # nothing non-finite is kept
                bits = (nll.sum(-1) / LN2).tolist()
                ntok = int(nll.shape[1])
                rows = [{"model_id": j.model_id, "image": s.image, "label": s.label, "bits": v, "tokens": ntok,
                         "pixels": pixels, "bpp": v / (3 * pixels)} for s, v in zip(b, bits)]
                chunks.put([s.image for s in b], parts, null)  # before the rows: every row has its chunk
                appender.append(rows, keys)
                out_rows.extend(rows)
                ips, eta = rate.add(len(b))
                self.emit(Progress(j.model_id, "scoring", rate.done, total, ips, eta, RT.memory_stats(self.device)))
        finally:
            appender.close()
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
            "preprocess_ids": self.preprocess_ids, "reference_bpp_source": PUBLISHED_TABLE, "device": dev, "device_name": name,
            "dtype": self.s.dtype, "tf32": self.s.tf32, "batch_size": self.batch_sizes or
            {j.model_id: self.state.batch_size(j.model_id) for j in jobs},
            "batch_size_setting": self.s.batch_size, "world_size": self.dist.world, "workers": self.s.workers,
            "subset": {"data": self.ds.root, "layout": self.ds.layout, "labels_csv": identity["labels_csv"],
                       "limit": self.s.limit, "per_class": self.s.per_class, "n_selected": len(self.samples),
                       "n_classes": len(self.ds.classes)},
            "started_at": started, "settings": dataclasses.asdict(self.s),
            "notes": RT.dtype_notes(self.device, self.s.dtype),
        }
