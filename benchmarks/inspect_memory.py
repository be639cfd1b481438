"""Peak RSS of `visbpp inspect` on a large synthetic run of two models (no model, no images).

usage: python benchmarks/inspect_memory.py [--images 50000] [--tokens 256] [--classes 1000] [--dir TMP]

Writes one complete run of two models over ``--images`` images (``--classes`` classes, a 16x16
token grid by default) with the engine's own writers: run-state chunks of per-token NLL
(``token_store.ChunkWriter``, random fp32 nats), then ``token_store.finalize`` and
``results.write_outputs`` into one result folder. Then, in a fresh process each, it runs
``visbpp inspect FOLDER --json`` and the text report with the paired comparison of the two models,
and reports each one's peak RSS (``ru_maxrss`` of the child) and wall time. One JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from visbpp.core.interfaces import TokenLayout
from visbpp.core.units import LN2

MODELS = ("synthetic-a", "synthetic-b")
PIXELS = 256 * 256


def write_run(folder: str, n: int, L: int, classes: int, batch: int = 1000) -> None:
    from visbpp.core.store import results as R
    from visbpp.core.store import token_store as TS

    side = math.isqrt(L)

    class Model:
        token_layout = TokenLayout("raster", (side, L // side))
        null_class = None

    class Job:
        def __init__(self, model_id):
            self.model_id, self.family = model_id, "synthetic"

    state = os.path.join(folder, "state")
    rows: list[dict] = []
    for k, mid in enumerate(MODELS):
        w = TS.ChunkWriter(state, mid, Model(), False)
        rng = np.random.default_rng(k)
        for s in range(0, n, batch):
            ids = range(s, min(n, s + batch))
            imgs = [f"class{i % classes:04d}/img{i:06d}.JPEG" for i in ids]
            nll = rng.gamma(2.0, 1.5 + 0.1 * k, size=(len(imgs), L)).astype(np.float32)
            w.put(imgs, nll)
            bits = nll.astype(np.float64).sum(1) / LN2
            rows += [{"model_id": mid, "image": im, "label": i % classes, "bits": float(b), "tokens": L,
                      "pixels": PIXELS, "bpp": float(b) / (3 * PIXELS)} for i, im, b in zip(ids, imgs, bits)]
    summaries = [R.summarize(mid, [r for r in rows if r["model_id"] == mid], 0, "synthetic", 256) for mid in MODELS]
    out = os.path.join(folder, "run")
    TS.finalize(state, [Job(m) for m in MODELS], rows, summaries, [out])
    doc = {"run_id": "synthetic-inspect", "complete": True, "models": summaries, "skipped": [],
           "metadata": {"subset": {"n_selected": n, "n_classes": classes}}}
    R.write_outputs(out, doc, rows)
    shutil.rmtree(state)


def measure(args: list[str]) -> dict:
    """Peak RSS (MB, ``ru_maxrss`` of that child alone, from ``wait4``) and wall time of ``visbpp ARGS``
    in a fresh process (its stdout discarded)."""
    code = "import sys; from visbpp.tui.cli import app; sys.argv = ['visbpp', *sys.argv[1:]]; app()"
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=err,
                             env={**os.environ, "COLUMNS": "120"})
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            err.seek(0)
            raise SystemExit(f"visbpp {' '.join(args)} failed:\n{err.read().decode(errors='replace')}")
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one, removed after)")
    a = ap.parse_args()
    work = a.dir or tempfile.mkdtemp(prefix="visbpp-inspect-bench-")
    os.environ.setdefault("VISBPP_HOME", os.path.join(work, "home"))
    try:
        t0 = time.perf_counter()
        write_run(work, a.images, a.tokens, a.classes)
        written = time.perf_counter() - t0
        folder = os.path.join(work, "run")
        res = {"images": a.images, "models": len(MODELS), "tokens": a.tokens, "classes": a.classes,
               "write_s": round(written, 1),
               "token_nll_mb_per_model": round(a.images * a.tokens * 4 / 2**20, 1),
               "inspect_json": measure(["inspect", folder, "--json"]),
               "inspect_text_paired": measure(["inspect", folder, "--compare", MODELS[0], "--compare", MODELS[1]])}
        print(json.dumps(res))
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
