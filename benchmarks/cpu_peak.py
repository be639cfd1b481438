"""Measured GEMM throughput of this machine (fp32 and bf16), the reference for CPU MFU.

usage: python benchmarks/cpu_peak.py [--n 2048] [--iters 5]
Prints one JSON object: GFLOP/s per dtype for an n x n x n matmul, and the thread count.
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
print(json.dumps(out))
