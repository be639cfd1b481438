"""`visbpp bench` over several models, one JSON line each (random weights, synthetic images).

usage: python benchmarks/bench_models.py --models llamagen-b-256,var-d16 [--batch-size 2] [--device cpu]
       [--dtype fp32] [--iters 1] [--peak-gflops G] > out.jsonl
``--peak-gflops`` (e.g. from cpu_peak.py) gives the MFU on a CPU, whose peak is not in the table.
"""

import argparse
import json
import os

from visbpp.core.engine.bench import bench
from visbpp.models.jobs import random_modules

p = argparse.ArgumentParser()
p.add_argument("--models", required=True)
p.add_argument("--batch-size", type=int, default=2)
p.add_argument("--device", default="auto")
p.add_argument("--dtype", default="fp32")
p.add_argument("--iters", type=int, default=1)
p.add_argument("--peak-gflops", type=float)
a = p.parse_args()
if a.peak_gflops:
    os.environ["VISBPP_PEAK_TFLOPS"] = str(a.peak_gflops / 1000)
for mid in a.models.split(","):
    tok, ar = random_modules(mid)
    r = bench(tok, ar, a.batch_size, a.device, a.dtype, iters=a.iters)
    r["model_id"] = mid
    print(json.dumps(r), flush=True)
    del tok, ar
