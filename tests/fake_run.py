"""Run the engine on the fakes of ``engine_fakes`` (plain python or under torchrun); prints JSON rows.

usage: fake_run.py DATA CACHE [--out DIR] [--batch-size N] [--models a,b]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from engine_fakes import fake_job  # noqa: E402
from visbpp.core.engine.runner import RunSettings, run  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("cache")
p.add_argument("--out")
p.add_argument("--batch-size", type=int, default=2)
p.add_argument("--models", default="fake-a")
a = p.parse_args()
jobs = [fake_job(m, seed=i) for i, m in enumerate(a.models.split(","))]
res = run(jobs, RunSettings(data=a.data, out_dir=a.out, batch_size=a.batch_size, device="cpu", cache_dir=a.cache))
if int(os.environ.get("RANK", 0)) == 0:
    print(json.dumps({"rows": res.per_image, "already_finished": res.already_finished,
                      "cancelled": res.cancelled}))
