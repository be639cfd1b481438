"""Throughput benchmark of a tokenizer + AR model with random weights (``visbpp bench``).

The caller builds the real architecture with random weights (``visbpp.models.jobs.random_modules``);
nothing is downloaded. Images are synthetic (random pixels through the family's own
preprocessing), tokens are what the tokenizer makes of them, labels are random.

Reported: tokenizer and AR throughput (images/s, tokens/s), peak memory, FLOPs per image
counted from the operator shapes by ``torch.utils.flop_counter`` (batch of one, forward
only), the MFU where the device's peak is known (a table of GPUs, or ``VISBPP_PEAK_TFLOPS``),
and the gap between the bf16 and fp32 BPP on the same tokens.

Reproducible: call :func:`seed` before building the random-weight modules (``visbpp bench``
does, with ``--seed``, default 0); the synthetic images and labels are drawn from the same
seed, so two runs print the same BPPs. Encoding runs with TF32 off, as in the engine.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import torch

from visbpp.core.engine import runtime as RT
from visbpp.core.engine.run_types import check_dtype
from visbpp.core.linear import aten_linears
from visbpp.core.linear import backend as linear_backend
from visbpp.core.units import LN2

# dense peak TFLOP/s per (GPU name fragment, dtype); "tf32" = fp32 with TF32 allowed
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},
    "H100": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "tf32": 183.0, "fp32": 91.6},
    "A10G": {"bf16": 70.0, "tf32": 35.0, "fp32": 31.2},
    "L4": {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3},
    "V100": {"fp32": 15.7},
}


def peak_flops(device: torch.device, dtype: str, tf32: bool) -> float | None:
    """Peak FLOP/s of ``device`` for ``dtype`` or None when unknown."""
    env = os.environ.get("VISBPP_PEAK_TFLOPS")
    if env:
        return float(env) * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    key = "bf16" if dtype == "bf16" else ("tf32" if tf32 else "fp32")
    for frag, peaks in PEAK_TFLOPS.items():
        if frag in name:
            v = peaks.get(key)
            return v * 1e12 if v else None
    return None


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.inference_mode(), aten_linears():  # counted as aten.mm
        fn()
    return int(fc.get_total_flops())


def _time(fn, device, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    RT.synchronize(device)
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    RT.synchronize(device)
    return (time.perf_counter() - t) / iters


def seed(value: int = 0) -> None:
    """Seed torch's global generator, from which the random weights are drawn."""
    torch.manual_seed(int(value))


def synthetic_batch(tokenizer, batch_size: int, seed: int = 0) -> torch.Tensor:
    from PIL import Image

    rng = np.random.default_rng(seed)
    s = int(tokenizer.image_size)
    xs = [tokenizer.preprocess(Image.fromarray(rng.integers(0, 256, (s, s, 3), dtype=np.uint8)))
          for _ in range(batch_size)]
    return torch.stack(xs)


def bench(tokenizer, model, batch_size: int = 8, device: str = "auto", dtype: str = "fp32", tf32: bool = False,
          iters: int = 3, warmup: int = 1, flops: bool = True, compare_dtypes: bool = True,
          seed: int = 0) -> dict[str, Any]:
    """Measure ``tokenizer`` (encode) and ``model`` (token_nll) on synthetic data; returns a dict."""
    check_dtype(dtype)
    dev = RT.resolve_device(device)
    tokenizer = tokenizer.to(dev).eval() if isinstance(tokenizer, torch.nn.Module) else tokenizer
    model = model.to(dev).eval() if isinstance(model, torch.nn.Module) else model
    x = synthetic_batch(tokenizer, batch_size, seed).to(dev)
    RT.reset_peak(dev)
    with torch.inference_mode(), RT.tf32_mode(False):
        tokens = tokenizer.encode(x)
    L = int(tokens.shape[1])
    ncls = int(getattr(model, "num_classes", 1))
    labels = torch.randint(0, ncls, (batch_size,), generator=torch.Generator().manual_seed(seed)).to(dev)

    def enc():
        with torch.inference_mode(), RT.tf32_mode(False):
            tokenizer.encode(x)

    def score(dt=dtype):
        with torch.inference_mode(), RT.autocast(dev, dt), RT.tf32_mode(tf32):
            return model.token_nll(tokens, labels)

    t_enc = _time(enc, dev, iters, warmup)
    t_ar = _time(score, dev, iters, warmup)
    mem = RT.memory_stats(dev)
    out: dict[str, Any] = {
        "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "dtype": dtype, "tf32": tf32, "batch_size": batch_size, "resolution": int(tokenizer.image_size),
        "tokens_per_image": L, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu_linear": linear_backend() if dev.type == "cpu" else None,
        "tokenizer_images_per_s": batch_size / t_enc, "tokenizer_s_per_batch": t_enc,
        "ar_images_per_s": batch_size / t_ar, "ar_tokens_per_s": batch_size * L / t_ar, "ar_s_per_batch": t_ar,
        "peak_memory_bytes": mem.peak if mem.peak is not None else mem.rss,
        "peak_memory_kind": "cuda peak allocated" if mem.peak is not None else "host RSS",
        "tokenizer_params": sum(p.numel() for p in tokenizer.parameters()) if hasattr(tokenizer, "parameters") else None,
        "ar_params": sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None,
    }
    if flops:
        f_enc = count_flops(lambda: tokenizer.encode(x[:1]))
        f_ar = count_flops(lambda: model.token_nll(tokens[:1], labels[:1]))
        out["tokenizer_flops_per_image"] = f_enc
        out["ar_flops_per_image"] = f_ar
        peak = peak_flops(dev, dtype, tf32)
        out["peak_flops"] = peak
        peak_tok = peak_flops(dev, "fp32", False)  # encoding: fp32, TF32 off (as in the engine)
        out["tokenizer_mfu"] = f_enc * batch_size / t_enc / peak_tok if peak_tok else None
        out["ar_mfu"] = f_ar * batch_size / t_ar / peak if peak else None
    if compare_dtypes:
        bits = {}
        for dt in ("fp32", "bf16"):
            try:
                bits[dt] = float(score(dt).double().sum() / LN2)
            except RuntimeError as e:  # a device without bf16 autocast support
                bits[dt] = None
                out["bf16_error"] = str(e).splitlines()[0]
        pix = 3 * batch_size * int(tokenizer.image_size) ** 2
        out["bpp_fp32"] = bits["fp32"] / pix
        out["bpp_bf16"] = bits["bf16"] / pix if bits["bf16"] is not None else None
        out["bf16_bpp_rel_diff"] = (abs(out["bpp_bf16"] - out["bpp_fp32"]) / out["bpp_fp32"]
                                    if out["bpp_bf16"] is not None else None)
    return out
