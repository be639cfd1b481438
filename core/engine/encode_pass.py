"""The encode pass of a run: every image decoded once, tokenized by every tokenizer group that needs it.

The images that some group has not cached yet go through one DataLoader (decoding in its
worker processes); each decoded image gets each group's own preprocessing (the family's, or
the paper protocol's), so a run over several tokenizers reads each file once. Tokens are
computed in fp32 with TF32 off (tokens are data, shared by every model and dtype) and kept in
each group's :class:`~visbpp.core.store.token_cache.TokenCache`; shards are written by a
background writer at most once per ``persist.FLUSH_SECONDS`` / ``FLUSH_IMAGES`` (and at the
end or on cancel). Batches are fixed over the images to encode; with N ranks, batch k goes
to rank k mod N.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import torch

from visbpp.core.engine import data as D
from visbpp.core.engine import persist as P
from visbpp.core.engine import runtime as RT
from visbpp.core.engine.constants import CPU_AUTO_BATCH, GPU_ENCODE_BATCH
from visbpp.core.engine.context import RunContext
from visbpp.core.engine.events import Progress, StageChanged
from visbpp.core.store.token_cache import image_key

AUTO_MIN_IMAGES = 256   # --workers auto decodes fewer images than this in the main process (start-up costs more)
AUTO_CAP = {"cuda": 16, "cpu": 4}


@dataclass
class GroupPlan:
    """One tokenizer group of a run, ready for the encode pass."""

    group: list                 # ScoringJobs sharing the tokenizer
    pending: list               # those with images left to score
    done: dict                  # model_id -> {image: row} scored earlier
    tok: object = None
    pp: object = None           # preprocessing.Preprocessing
    cache: object = None        # TokenCache
    model: object = None        # the first pending model, loaded (validated) before any write, or None
    need: list = field(default_factory=list)  # samples some pending model still has to score


def resolve_workers(setting, device: torch.device, n_images: int) -> int:
    """``--workers``: a number as given; ``auto``: CPU count based, capped, 0 for small jobs."""
    if setting != "auto":
        return int(setting)
    if n_images < AUTO_MIN_IMAGES:
        return 0
    if threading.current_thread() is not threading.main_thread():
        # a run started from a thread (the TUI's scoring worker): forking a process whose other
        # threads may hold locks can kill or hang the decode workers, so decode in-process
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(AUTO_CAP.get(device.type, 4), cpus - 1))


def encode_batch_size(ctx: RunContext) -> int:
    """Images per encode (and reconstruction) batch: ``--batch-size``, or with ``auto`` a fixed size per device."""
    bs = ctx.settings.batch_size
    return bs if isinstance(bs, int) else (CPU_AUTO_BATCH if ctx.device.type == "cpu" else GPU_ENCODE_BATCH)


def encode_all(ctx: RunContext, plans: list[GroupPlan]) -> bool:
    """Encode what the plans' caches lack, one decode per image; True when cancelled."""
    by_decode: dict = {}
    for p in plans:
        by_decode.setdefault(p.pp.decode, []).append(p)
    return any(_encode(ctx, ps) for ps in by_decode.values())


def _encode(ctx: RunContext, plans: list[GroupPlan]) -> bool:
    todo_sets = [{s.image for s in p.need if not p.cache.has(ctx.keys[s.image])} for p in plans]
    todo = [s for s in ctx.samples if any(s.image in t for t in todo_sets)]
    wanted = [[g for g, t in enumerate(todo_sets) if s.image in t] for s in todo]
    bs = encode_batch_size(ctx)
    batches = [list(range(i, min(len(todo), i + bs))) for i in range(0, len(todo), bs)]
    mine = batches[ctx.dist.rank::ctx.dist.world]
    total = sum(len(b) for b in mine)
    if not total:
        return False
    label = plans[0].pending[0].model_id
    ctx.workers = resolve_workers(ctx.settings.workers, ctx.device, total)
    ctx.emit(StageChanged(label, "encoding", f"{total} images, {len(plans)} tokenizer(s), {ctx.workers} decode workers"))
    ds = D.MultiImageDataset(todo, plans[0].pp.decode, [p.pp.transform for p in plans], wanted)
    extra = {"prefetch_factor": 4} if ctx.workers else {}
    loader = torch.utils.data.DataLoader(ds, batch_sampler=mine, num_workers=ctx.workers, collate_fn=D.collate_multi,
                                         pin_memory=ctx.device.type == "cuda", **extra)
    it = iter(loader)  # workers start before the writer thread exists
    flushers = [P.Flusher(p.cache.write_many) for p in plans]
    rate = RT.Rate(total)
    ok = False
    try:
        for parts in it:
            if ctx.cancelled():
                ok = True
                return True
            seen: set[int] = set()
            for p, fl, (pos, x, badl) in zip(plans, flushers, parts):
                toks = _encode_batch(ctx, p.tok, x) if x is not None else None
                keys = [image_key(todo[i].path) for i in pos]
                bad = {image_key(todo[i].path): r for i, r in badl}
                if keys or bad:  # this group may need none of the batch's images
                    p.cache.add(keys, toks, bad)
                    fl.add((keys, toks, bad), len(keys) + len(bad))
                seen.update(pos, (i for i, _ in badl))
            ips, eta = rate.add(len(seen))
            ctx.emit(Progress(label, "encoding", rate.done, total, ips, eta, RT.memory_stats(ctx.device)))
        ok = True
        return False
    finally:
        for fl in flushers:  # what was encoded is written, also on cancel or error
            fl.close(raise_errors=ok)


def _encode_batch(ctx: RunContext, tok, x):
    x = x.to(ctx.device, non_blocking=True)
    try:
        with torch.inference_mode(), RT.tf32_mode(False):  # tokens are data: never TF32
            return tok.encode(x).cpu()
    except Exception as e:  # noqa: BLE001
        if not RT.is_oom(e) or len(x) == 1:
            raise
    RT.free_memory(ctx.device)
    h = len(x) // 2
    return torch.cat([_encode_batch(ctx, tok, x[:h]), _encode_batch(ctx, tok, x[h:])])
