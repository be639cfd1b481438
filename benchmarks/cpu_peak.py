"""Measured GEMM throughput of this machine (fp32 and bf16), the reference for CPU MFU.

usage: python benchmarks/cpu_peak.py [--n 2048] [--iters 5]
Prints one JSON object: GFLOP/s per dtype for an n x n x n matmul (``torch.matmul``: MKL for
fp32), the same for fp32 through visbpp's scoring linear (``fp32_scoring_linear``: oneDNN where
available, see ``core/linear.py``), and the thread count.
"""

import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=2048)
p.add_argument("--iters", type=int, default=5)
a = p.parse_args()
out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "n": a.n}
for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
    x = torch.randn(a.n, a.n, dtype=dt)
    y = torch.randn(a.n, a.n, dtype=dt)
    x @ y
    best = float("inf")
    for _ in range(a.iters):
        t = time.perf_counter()
        x @ y
        best = min(best, time.perf_counter() - t)
    out[f"{name}_gflops"] = 2 * a.n**3 / best / 1e9

from visbpp.core.linear import backend, linear  # noqa: E402

x, w = torch.randn(a.n, a.n), torch.randn(a.n, a.n)
with torch.inference_mode():
    linear(x, w)
    best = float("inf")
    for _ in range(a.iters):
        t = time.perf_counter()
        linear(x, w)
        best = min(best, time.perf_counter() - t)
out["fp32_scoring_linear_gflops"], out["scoring_linear_backend"] = 2 * a.n**3 / best / 1e9, backend()
print(json.dumps(out))
