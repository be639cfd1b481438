"""What the engine costs on top of the model: ``engine.run`` against a bare loop, side by side, one process.

usage: python benchmarks/engine_overhead.py [--case tiny|b256|both] [--rounds 3] [--threads 1]
       [--workers 0,1] [--flops]   -> JSON lines, then a Markdown table (BENCHMARKS.md)

Per case, the same random-weight tokenizer + AR model, the same JPEGs, batch size, device (CPU)
and torch threads:
* ``bare``: the necessary work only: decode each file (``data.load_image``), the family's
  preprocess, ``encode`` (fp32, inference mode), ``token_nll`` with the labels, float64 bits;
* ``engine``: ``engine.run`` on the same folder with a fresh cache dir (so it encodes too), for
  each ``--workers`` value (0 = decode in the main process).
Rounds alternate (bare, engine w0, engine w1, bare, ...) so that load from other processes
hits all of them alike; medians are reported. ``decode/s/worker`` is the rate of decode +
preprocess of one process. ``--flops`` also counts the model FLOPs per image (tokenizer and
AR) for the H100 projection.

Cases: ``tiny`` = the LlamaGen conformance fixture's architecture (64 px, 16 tokens: overhead
dominates), 96 images of 80x80, batch 16; ``b256`` = llamagen-b-256 (VQ-16 + GPT-B, 256
tokens), 16 images of 320x256, batch 8.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

from visbpp.core.engine import data as D
from visbpp.core.engine.bench import count_flops, seed
from visbpp.core.engine.runner import RunSettings, ScoringJob, run
from visbpp.core.units import LN2
from visbpp.models.jobs import random_modules

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "shared", "conformance", "llamagen", "config.json")
CASES = {"tiny": dict(n=96, size=(80, 80), bs=16), "b256": dict(n=16, size=(320, 256), bs=8)}


def make_jpegs(root: str, n: int, size: tuple[int, int], classes: int = 4) -> list[tuple[str, int]]:
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        c = i % classes
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        f = rng.uniform(0.01, 0.1, 3)  # smooth content, so the JPEG is a realistic size
        a = np.stack([128 + 100 * np.sin(f[k] * xx + f[(k + 1) % 3] * yy + k) for k in range(3)], -1)
        a = np.clip(a + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8)
        p = os.path.join(root, f"c{c}", f"img{i:04d}.JPEG")
        Image.fromarray(a).save(p, quality=90)
        out.append((p, c))
    return sorted(out, key=lambda t: (t[1], t[0]))


def bare(tok, ar, files, bs) -> float:
    t0 = time.perf_counter()
    total = 0.0
    for i in range(0, len(files), bs):
        chunk = files[i:i + bs]
        x = torch.stack([tok.preprocess(D.load_image(p)) for p, _ in chunk])
        labels = torch.tensor([c for _, c in chunk])
        with torch.inference_mode():
            toks = tok.encode(x)
            nll = ar.token_nll(toks, labels)
        total += float((nll.double().sum(-1) / LN2).sum())
    return len(files) / (time.perf_counter() - t0)


def engine(tok, ar, root, bs, workers) -> float:
    job = ScoringJob("bench-model", "llamagen", "bench-tok", lambda: tok, lambda t: ar)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        res = run([job], RunSettings(data=root, batch_size=bs, device="cpu", cache_dir=cache, workers=workers))
        dt = time.perf_counter() - t0
    return len(res.per_image) / dt


def scoring_overhead(tok, ar, root, files, bs, rounds) -> tuple[float, float]:
    """Host seconds per image that the engine's scoring loop adds to the bare ``token_nll`` loop
    (tokens cached; median over rounds; wall and process CPU time, per-run fixed costs included): what
    a GPU run pays per image and model beyond the forward."""
    with tempfile.TemporaryDirectory() as cache:
        s = RunSettings(data=root, batch_size=bs, device="cpu", cache_dir=cache, workers=0)
        res = run([ScoringJob("warm", "llamagen", "bench-tok", lambda: tok, lambda t: ar)], s)
        n = len(res.per_image)
        x = torch.stack([tok.preprocess(D.load_image(p)) for p, _ in files])
        with torch.inference_mode():
            toks = tok.encode(x)
        labels = torch.tensor([c for _, c in files])
        wall, cpu = [], []
        for r in range(rounds):
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.inference_mode():
                for i in range(0, n, bs):
                    float((ar.token_nll(toks[i:i + bs], labels[i:i + bs]).double().sum(-1) / LN2).sum())
            t_bare, c_bare = time.perf_counter() - t0, time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            run([ScoringJob(f"score-{r}", "llamagen", "bench-tok", lambda: tok, lambda t: ar)], s)
            wall.append((time.perf_counter() - t0 - t_bare) / n)
            cpu.append((time.process_time() - c0 - c_bare) / n)
    return statistics.median(wall), statistics.median(cpu)


def decode_rate(tok, files) -> float:
    t0 = time.perf_counter()
    for p, _ in files:
        tok.preprocess(D.load_image(p))
    return len(files) / (time.perf_counter() - t0)


def case(name: str, rounds: int, workers: list[int], flops: bool) -> dict:
    spec = CASES[name]
    seed(0)
    tok, ar = (random_modules(family="llamagen", config_path=FIXTURE) if name == "tiny"
               else random_modules("llamagen-b-256"))
    tok.eval(), ar.eval()
    with tempfile.TemporaryDirectory() as root:
        files = make_jpegs(root, spec["n"], spec["size"])
        bare(tok, ar, files[: spec["bs"]], spec["bs"])  # warm-up (allocator, kernels)
        res: dict[str, list[float]] = {"bare": [], **{f"engine_w{w}": [] for w in workers}}
        dec = []
        for _ in range(rounds):
            res["bare"].append(bare(tok, ar, files, spec["bs"]))
            for w in workers:
                res[f"engine_w{w}"].append(engine(tok, ar, root, spec["bs"], w))
            dec.append(decode_rate(tok, files))
        out = {"case": name, "images": spec["n"], "batch": spec["bs"], "threads": torch.get_num_threads(),
               "rounds": rounds, "decode_per_s_per_worker": statistics.median(dec),
               **{f"{k}_ips": statistics.median(v) for k, v in res.items()}, "all": res}
        for w in workers:
            out[f"ratio_w{w}"] = out[f"engine_w{w}_ips"] / out["bare_ips"]
        if name == "tiny":
            w, c = scoring_overhead(tok, ar, root, files, spec["bs"], rounds)
            out["scoring_overhead_s_per_image"], out["scoring_overhead_cpu_s_per_image"] = w, c
        if flops:
            x = torch.stack([tok.preprocess(D.load_image(files[0][0]))])
            with torch.inference_mode():
                t = tok.encode(x)
            out["tokenizer_flops"] = count_flops(lambda: tok.encode(x))
            out["ar_flops"] = count_flops(lambda: ar.token_nll(t, torch.zeros(1, dtype=torch.long)))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--case", default="both", choices=["tiny", "b256", "both"])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", default="0,1")
    p.add_argument("--images", type=int, help="images per round (default: the case's)")
    p.add_argument("--flops", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    workers = [int(w) for w in a.workers.split(",")]
    rows = []
    for name in (["tiny", "b256"] if a.case == "both" else [a.case]):
        if a.images:
            CASES[name]["n"] = a.images
        r = case(name, a.rounds, workers, a.flops)
        rows.append(r)
        print(json.dumps(r), flush=True)
    print("\n| case | images | batch | threads | bare img/s | " + " | ".join(
        f"engine w{w} img/s | ratio w{w}" for w in workers) + " | decode+preprocess img/s/worker |", file=sys.stderr)
    for r in rows:
        cells = " | ".join(f"{r[f'engine_w{w}_ips']:.2f} | {r[f'ratio_w{w}']:.3f}" for w in workers)
        print(f"| {r['case']} | {r['images']} | {r['batch']} | {r['threads']} | {r['bare_ips']:.2f} | {cells} | "
              f"{r['decode_per_s_per_worker']:.1f} |", file=sys.stderr)


if __name__ == "__main__":
    main()
