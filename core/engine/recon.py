"""Tokenizer reconstruction quality (``visbpp run --recon``): PSNR and SSIM per image and per tokenizer.

The cached tokens of every image are decoded and compared with the preprocessed input (both in the
families' [-1, 1] range, mapped to [0, 255]; the reconstruction clamped, as the official
reconstructions are). Values are cached per tokenizer beside its tokens
(``<cache>/tokens/<key>/recon-*.jsonl``, one fsync'd line per batch), so a rerun, another run on
the same images or a kill costs nothing already computed.

- PSNR = 10 log10(255^2 / MSE), MSE over all pixels and channels.
- SSIM: the standard definition (Wang et al. 2004): 11x11 Gaussian window, sigma 1.5, K1 0.01,
  K2 0.03, L = 255, population (co)variances, the mean of the SSIM map over the window positions
  that lie inside the image ("valid"), per RGB channel, then the mean over the channels.

:func:`finalize` writes ``recon.csv`` (tokenizer key, image, psnr, ssim) next to per_image.csv and
adds ``recon_psnr`` / ``recon_ssim`` (means over the model's tokenizer's images) to the summaries.
"""

from __future__ import annotations

import csv
import glob
import io
import os

import numpy as np
import torch
import torch.nn.functional as F

from visbpp.core.engine import data as D
from visbpp.core.engine import runtime as RT
from visbpp.core.engine.context import RunContext
from visbpp.core.engine.encode_pass import encode_batch_size, resolve_workers
from visbpp.core.engine.events import Progress, StageChanged
from visbpp.core.store.runstate import RowAppender, read_lines
from visbpp.core.store.token_cache import atomic_write_text, image_key

WINDOW, SIGMA, K1, K2, PEAK = 11, 1.5, 0.01, 0.03, 255.0


def _to_255(x: torch.Tensor) -> torch.Tensor:
    return (x.double().clamp(-1, 1) + 1) * 127.5


def gaussian_window(size: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return torch.outer(g, g)  # (size, size), sums to 1


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images on [0, 255] -> (B,) float64 SSIM (see the module docstring)."""
    x, y = x.double(), y.double()
    B, C, H, W = x.shape
    if min(H, W) < WINDOW:
        raise ValueError(f"SSIM needs images of at least {WINDOW}x{WINDOW} pixels, got {H}x{W}")
    w = gaussian_window().to(x.device)[None, None].expand(C, 1, WINDOW, WINDOW)

    def filt(z):
        return F.conv2d(z, w, groups=C)  # valid positions only

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    c1, c2 = (K1 * PEAK) ** 2, (K2 * PEAK) ** 2
    m = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return m.mean((2, 3)).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) on [0, 255] -> (B,) float64 PSNR in dB (MSE floored at 1e-10: identical images give 148 dB)."""
    mse = ((x.double() - y.double()) ** 2).mean((1, 2, 3)).clamp_min(1e-10)
    return 10 * torch.log10(PEAK ** 2 / mse)


def _cached(folder: str) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for p in sorted(glob.glob(os.path.join(folder, "recon-*.jsonl"))):
        for line in read_lines(p)[0]:
            for k, a, b in line["rows"]:
                out[k] = (float(a), float(b))
    return out


def reconstruct(ctx: RunContext, tok, cache, good, tokenizer_key: str, label: str) -> bool:
    """Decode and measure every image of ``good`` not yet cached; True when cancelled."""
    have = _cached(cache.folder)
    todo = [s for s in good if image_key(s.path) not in have]
    bs = encode_batch_size(ctx)
    batches = [list(range(i, min(len(todo), i + bs))) for i in range(0, len(todo), bs)][ctx.dist.rank::ctx.dist.world]
    total = sum(len(b) for b in batches)
    if total:
        ctx.emit(StageChanged(label, "reconstructing", f"{total} images"))
        loader = torch.utils.data.DataLoader(D.ImageDataset(todo, tok.preprocess), batch_sampler=batches,
                                             num_workers=resolve_workers(ctx.settings.workers, ctx.device, total),
                                             collate_fn=D.collate)
        app = RowAppender(os.path.join(cache.folder, f"recon-{os.getpid()}-rank{ctx.dist.rank}.jsonl"))
        rate = RT.Rate(total)
        try:
            for pos, x, badl in loader:
                if ctx.cancelled():
                    return True
                if x is not None:
                    keys = [image_key(todo[i].path) for i in pos]
                    toks = torch.stack([cache.tokens[k] for k in keys]).to(ctx.device)
                    with torch.inference_mode(), RT.tf32_mode(False):
                        rec = tok.decode(toks).float().cpu()
                    a, b = _to_255(x), _to_255(rec)
                    app.append([[k, float(p), float(s)] for k, p, s in zip(keys, psnr(a, b), ssim(a, b))])
                ips, eta = rate.add(len(pos) + len(badl))
                ctx.emit(Progress(label, "reconstructing", rate.done, total, ips, eta))
        finally:
            app.close()
    ctx.state.meta.setdefault("recon", {})[tokenizer_key] = cache.folder
    ctx.state.save_meta()
    return False


def finalize(ctx: RunContext, jobs, summaries: list[dict], dests: list[str]) -> None:
    folders = ctx.state.meta.get("recon", {}) if ctx.settings.recon else {}
    if not folders:
        for d in dict.fromkeys(x for x in dests if x):  # from an earlier run into the same folder
            if os.path.exists(os.path.join(d, "recon.csv")):
                os.remove(os.path.join(d, "recon.csv"))
        return
    rows, by_key = [], {}
    for key, folder in folders.items():
        have = _cached(folder)
        vals = [(s.image, *have[image_key(s.path)]) for s in ctx.samples if image_key(s.path) in have]
        by_key[key] = vals
        rows += [{"tokenizer_key": key, "image": im, "psnr": p, "ssim": s} for im, p, s in vals]
    for j, s in zip(jobs, summaries):
        vals = by_key.get(j.tokenizer_key, [])
        if vals:
            s["recon_psnr"] = float(np.mean([v[1] for v in vals]))
            s["recon_ssim"] = float(np.mean([v[2] for v in vals]))
            s["recon_n"] = len(vals)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["tokenizer_key", "image", "psnr", "ssim"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    for d in dict.fromkeys(x for x in dests if x):
        os.makedirs(d, exist_ok=True)
        atomic_write_text(os.path.join(d, "recon.csv"), buf.getvalue())
