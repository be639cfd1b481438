"""Peak RSS of assembling the per-token NLL file of a large run (synthetic NLLs, no model).

usage: python benchmarks/token_store_memory.py [--images 50000] [--tokens 680] [--batch 512] [--dir TMP]

Writes the run-state chunks as the engine does (one per batch of ``--batch`` images), then, in a
fresh process, times :func:`visbpp.core.store.token_store.finalize` and reports its peak RSS next to the
size of one chunk and of the final array. One JSON line on stdout.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from visbpp.core.units import LN2


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def write_chunks(state, n, L, batch):
    from visbpp.core.store.token_store import ChunkWriter

    class Fake:
        token_layout = None
        null_class = None

    w = ChunkWriter(state, "synthetic", Fake(), False)
    rng = np.random.default_rng(0)
    rows = []
    for s in range(0, n, batch):
        imgs = [f"class{i % 1000:04d}/img{i:06d}.JPEG" for i in range(s, min(n, s + batch))]
        nll = rng.gamma(2.0, 1.5, size=(len(imgs), L)).astype(np.float32)
        w.put(imgs, nll)
        bits = nll.astype(np.float64).sum(1) / LN2
        rows += [{"model_id": "synthetic", "image": im, "label": 0, "bits": float(b), "tokens": L,
                  "pixels": 256 * 256, "bpp": float(b) / (3 * 256 * 256)} for im, b in zip(imgs, bits)]
    return rows


def assemble(state, rows_path, dest):
    from visbpp.core.store.token_store import finalize

    with open(rows_path) as f:
        rows = json.load(f)

    class Job:
        model_id, family = "synthetic", "synthetic"

    summaries = [{"model_id": "synthetic"}]
    base = rss_mb()
    t = time.perf_counter()
    finalize(state, [Job()], rows, summaries, [dest])
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rss_before_mb": round(base, 1), "peak_rss_mb": round(peak, 1), "seconds": round(dt, 2)}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=50000)
    p.add_argument("--tokens", type=int, default=680)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--dir")
    p.add_argument("--assemble", nargs=3)
    a = p.parse_args()
    if a.assemble:
        return assemble(*a.assemble)
    root = tempfile.mkdtemp(dir=a.dir)
    state, dest = os.path.join(root, "state"), os.path.join(root, "out")
    os.makedirs(dest)
    rows = write_chunks(state, a.images, a.tokens, a.batch)
    rows_path = os.path.join(root, "rows.json")
    with open(rows_path, "w") as f:
        json.dump(rows, f)
    out = subprocess.run([sys.executable, __file__, "--assemble", state, rows_path, dest], capture_output=True,
                         text=True, check=True)
    r = json.loads(out.stdout.splitlines()[-1])
    r.update(images=a.images, tokens=a.tokens, chunk_mb=round(a.batch * a.tokens * 4 / 2**20, 2),
             final_array_mb=round(a.images * a.tokens * 4 / 2**20, 1))
    npy = [f for f in os.listdir(os.path.join(dest, "token_nll")) if f.endswith(".npy")][0]
    r["file_mb"] = round(os.path.getsize(os.path.join(dest, "token_nll", npy)) / 2**20, 1)
    r["growth_mb"] = round(r["peak_rss_mb"] - r["rss_before_mb"], 1)
    shutil.rmtree(root)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
