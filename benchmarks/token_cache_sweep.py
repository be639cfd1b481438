"""Family sweep with the token cache vs re-encoding the images for every size, through the real engine.

usage: python benchmarks/token_cache_sweep.py --models var-d16,var-d20 [--images 4] [--batch-size 2]
       [--device cpu] [--dtype fp32]

Random-weight real architectures (one tokenizer shared by the sizes, as the released
checkpoints share theirs), N synthetic images in an ImageFolder. (a) one `run` of all sizes
with one token cache: every image is encoded once; (b) one `run` per size, each with an empty
token cache: every size re-encodes. Prints one JSON object with both wall times, the stage
times and the ratio (b)/(a).
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
from PIL import Image

from visbpp.core.engine.events import StageChanged
from visbpp.core.engine.runner import RunSettings, ScoringJob, run
from visbpp.core.registry.catalog import get_card
from visbpp.models import get_family

p = argparse.ArgumentParser()
p.add_argument("--models", required=True)
p.add_argument("--images", type=int, default=4)
p.add_argument("--batch-size", type=int, default=2)
p.add_argument("--device", default="cpu")
p.add_argument("--dtype", default="fp32")
a = p.parse_args()

ids = a.models.split(",")
cards = [get_card(m) for m in ids]
fam = get_family(cards[0].family)
configs = [fam.config_for(c.id) for c in cards]
tok = fam.build_tokenizer(configs[0]).eval()
models = {c.id: fam.build_transformer(cfg, tok).eval() for c, cfg in zip(cards, configs)}
res = cards[0].resolution
assert all(c.resolution == res and c.tokenizer_id == cards[0].tokenizer_id for c in cards), "one tokenizer setting"

tmp = tempfile.mkdtemp(prefix="visbpp-sweep-")
rng = np.random.default_rng(0)
os.makedirs(f"{tmp}/data/c0")
for i in range(a.images):
    Image.fromarray(rng.integers(0, 256, (res, res, 3), dtype=np.uint8)).save(f"{tmp}/data/c0/{i:04d}.png")


def job(mid):
    return ScoringJob(mid, fam.name, f"random:{fam.name}", lambda: tok, lambda t, m=mid: models[m])


def timed(jobs, cache):
    stages, last = {}, [None, time.perf_counter()]

    def on(e):
        if isinstance(e, StageChanged):
            now = time.perf_counter()
            if last[0]:
                stages[last[0]] = stages.get(last[0], 0.0) + now - last[1]
            last[:] = [e.stage, now]

    t = time.perf_counter()
    run(jobs, RunSettings(data=f"{tmp}/data", batch_size=a.batch_size, device=a.device, dtype=a.dtype,
                          cache_dir=cache), on)
    return time.perf_counter() - t, stages


shared_s, shared_stages = timed([job(m) for m in ids], f"{tmp}/cache-shared")
per = [timed([job(m)], f"{tmp}/cache-{m}") for m in ids]
per_s = sum(t for t, _ in per)
print(json.dumps({
    "models": ids, "images": a.images, "batch_size": a.batch_size, "device": a.device, "dtype": a.dtype,
    "shared_cache_s": shared_s, "reencode_s": per_s, "ratio_reencode_over_cache": per_s / shared_s,
    "shared_stage_s": shared_stages, "per_model": [{"model": m, "s": t, "stages": s} for m, (t, s) in zip(ids, per)],
}))
