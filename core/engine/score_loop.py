"""The per-model scoring loop of a run: cached tokens -> teacher-forced bits per image.

Batches are fixed over the good images (``good``) so that a resumed run or a torchrun with N
ranks (batch k of the pending ones goes to rank k mod N) scores the same batches as one
process, hence identical bits. The next batch's tokens are staged (pinned, non-blocking copy
on CUDA) and, on CUDA, the next forward is queued before the host reads the current batch's
results, so the host's bookkeeping overlaps the device's work; bits are summed on the device in
float64 per batch and moved to the host once. A non-finite NLL stops the run (nothing of that batch is kept).
Rows and per-token chunks are made durable by a background writer (``visbpp.core.engine.persist``):
chunks of a batch before its row line, at most once per flush interval and at the end, on
cancel or on error.
"""

from __future__ import annotations

import math

import torch

from visbpp.core.engine import persist as P
from visbpp.core.engine import runtime as RT
from visbpp.core.engine.constants import CPU_AUTO_BATCH, GPU_AUTO_START
from visbpp.core.engine.context import RunContext
from visbpp.core.engine.events import Progress, StageChanged
from visbpp.core.engine.runtime import find_batch_size
from visbpp.core.nll import check_finite
from visbpp.core.store import token_store as TS
from visbpp.core.units import LN2

COMPILE_BACKEND = "inductor"   # torch.compile backend of --compile
OVERLAP = {"cuda": 1}           # per device type: batches queued on the device before the host reads one


def chunks(seq, n):
    return [seq[i:i + n] for i in range(0, len(seq), n)]


def batch_size(ctx: RunContext, j, model, cache, good) -> int:
    bs = ctx.state.batch_size(j.model_id)
    if bs is None:
        if isinstance(ctx.settings.batch_size, int):
            bs = ctx.settings.batch_size
        elif ctx.device.type == "cpu":
            bs = CPU_AUTO_BATCH
        else:
            bs = _probe_batch(ctx, model, cache, good)
        if ctx.dist.active:  # every rank uses rank 0's choice
            import torch.distributed as td

            t = torch.tensor([bs], dtype=torch.long)
            td.broadcast(t, 0)
            bs = int(t)
        ctx.state.set_batch_size(j.model_id, bs)
    ctx.batch_sizes[j.model_id] = bs
    return bs


def _probe_batch(ctx: RunContext, model, cache, good) -> int:
    """Largest batch (halving from GPU_AUTO_START) whose forward fits, backing off on OOM."""
    ex = next((cache.tokens[ctx.keys[s.image]] for s in good if ctx.keys[s.image] in cache.tokens), None)
    if ex is None:
        return CPU_AUTO_BATCH

    def attempt(bs):
        toks = ex.unsqueeze(0).expand(bs, *ex.shape).contiguous().to(ctx.device)
        labels = torch.zeros(bs, dtype=torch.long, device=ctx.device)
        with torch.inference_mode(), RT.autocast(ctx.device, ctx.settings.dtype), RT.tf32_mode(ctx.settings.tf32):
            model.token_nll(toks, labels)
        RT.synchronize(ctx.device)

    return find_batch_size(attempt, min(GPU_AUTO_START, max(1, len(good))), ctx.device)


def compiled(model):
    """``model`` with its ``token_nll`` / ``subtoken_nll`` / ``order_nll`` (the AR forward and the NLL) wrapped by torch.compile."""
    for name in ("token_nll", "subtoken_nll", "order_nll"):
        fn = getattr(model, name, None)
        if fn is not None:
            setattr(model, name, torch.compile(fn, backend=COMPILE_BACKEND, dynamic=False))
    return model


def _staged(ctx: RunContext, cache, batches):
    """(batch, tokens, labels) on the device, the next batch's copy issued before the current is scored."""
    pin = ctx.device.type == "cuda"

    def stage(b):
        toks = torch.stack([cache.tokens[ctx.keys[s.image]] for s in b])
        labels = torch.tensor([s.label for s in b], dtype=torch.long)
        if pin:
            toks, labels = toks.pin_memory(), labels.pin_memory()
        return b, toks.to(ctx.device, non_blocking=pin), labels.to(ctx.device, non_blocking=pin)

    nxt = stage(batches[0]) if batches else None
    for k in range(len(batches)):
        cur = nxt
        nxt = stage(batches[k + 1]) if k + 1 < len(batches) else None
        yield cur


def score(ctx: RunContext, j, model, tok, cache, good, done, out_rows) -> bool:
    """Score model ``j`` on the pending batches of ``good``; True when cancelled."""
    ctx.check_classes(j, model)
    bs = batch_size(ctx, j, model, cache, good)
    batches = [b for b in chunks(good, bs) if any(s.image not in done for s in b)]
    mine = batches[ctx.dist.rank::ctx.dist.world]
    total = sum(len(b) for b in mine)
    ctx.emit(StageChanged(j.model_id, "scoring", f"{total} images, batch size {bs}"))
    RT.reset_peak(ctx.device)
    appender = ctx.state.appender(j.model_id)
    store = TS.ChunkWriter(ctx.state.folder, j.model_id, model, ctx.settings.unconditional)

    def write(items):  # background thread: every batch's chunk before the row lines that need it
        for images, parts, null, _, _ in items:
            store.put(images, parts, null)
        appender.append_many([(rows, keys) for _, _, _, rows, keys in items])

    flusher = P.Flusher(write)
    rate = RT.Rate(total)
    pixels = int(tok.image_size) ** 2

    def settle(b, nll, bits, parts, null):  # host side of a batch: read its bits, check, keep
        bits = bits.cpu().tolist()
        images = [s.image for s in b]
        if not all(math.isfinite(v) for v in bits):
            check_finite(nll.double().cpu(), j.model_id, images, ctx.settings.dtype)  # nothing non-finite is kept
        ntok = int(nll.shape[1])
        rows = [{"model_id": j.model_id, "image": s.image, "label": s.label, "bits": v, "tokens": ntok,
                 "pixels": pixels, "bpp": v / (3 * pixels)} for s, v in zip(b, bits)]
        flusher.add((images, parts.cpu().numpy(), None if null is None else null.cpu().numpy(), rows,
                     [ctx.keys[s.image] for s in b]), len(b))
        out_rows.extend(rows)
        ips, eta = rate.add(len(b))
        ctx.emit(Progress(j.model_id, "scoring", rate.done, total, ips, eta, RT.memory_stats(ctx.device)))

    lag = OVERLAP.get(ctx.device.type, 0)  # batches in flight before the host reads their results
    inflight: list = []
    ok = False
    try:
        for b, toks, labels in _staged(ctx, cache, mine):
            if ctx.cancelled():
                ok = True
                return True   # a batch still in flight is not kept: the rerun scores it
            with torch.inference_mode(), RT.autocast(ctx.device, ctx.settings.dtype), RT.tf32_mode(ctx.settings.tf32):
                nll, parts, null = TS.score_batch(model, toks, labels, ctx.settings.unconditional)
                inflight.append((b, nll, nll.double().sum(-1) / LN2, parts, null))  # bits: float64, on the device
            while len(inflight) > lag:
                settle(*inflight.pop(0))
        while inflight:
            settle(*inflight.pop(0))
        ok = True
        return False
    finally:
        try:
            flusher.close(raise_errors=ok)  # what was scored is made durable, also on cancel or error
        finally:
            appender.close()
