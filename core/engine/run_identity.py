"""The identity of a run: what makes a rerun of the same command resume instead of starting anew.

The run id is a hash of the jobs (ids, tokenizer keys, checkpoint paths/sizes/mtimes, the scoring
order of models with an order axis), the data, the subset, the preprocessing protocol, the dtype,
TF32, ``--compile``, the device type, the batch-size setting and, on the CPU, the float32 linear
backend (``core/linear``: oneDNN and ``F.linear`` differ by ~1e-5 nats, so a run of one is never
resumed or reused by the other). Settings that were added later enter the identity only when set or
when they differ from what earlier runs used (``aten`` linears; ``onednn`` is what earlier CPU runs
of this version used), so the ids of earlier runs stay the same; so does the label rule: labels
taken from the class names that differ from the folders' sorted positions (a subset of the classes)
add ``labels``.
"""

from __future__ import annotations

import hashlib
import json
import os

OPTIONAL_FLAGS = ("unconditional", "recon", "compile")


def identity(jobs, settings, samples, ds, device_type: str, cpu_linear: str) -> dict:
    """What identifies the run; ``cpu_linear`` is the float32 CPU linear backend of the process
    (``core.linear.backend()``; without torch ``core.cpu_linear.requested()``)."""
    def stat(p):
        try:
            st = os.stat(p)
            return [os.path.abspath(p), st.st_size, st.st_mtime_ns]
        except OSError:
            return [p]

    return {
        "jobs": [[j.model_id, j.family, j.tokenizer_key, {k: stat(v) for k, v in sorted(j.checkpoints.items())}]
                 + ([{"order": j.order}] if j.order is not None else []) for j in jobs],
        "data": ds.root, "layout": ds.layout,
        "labels_csv": os.path.abspath(settings.labels_csv) if settings.labels_csv else None,
        "limit": settings.limit, "per_class": settings.per_class, "n_images": len(samples),
        "first_last": [samples[0].image, samples[-1].image] if samples else [],
        "dtype": settings.dtype, "batch_size": settings.batch_size, "tf32": settings.tf32, "device": device_type,
        "preprocess": settings.preprocess,
        **{k: True for k in OPTIONAL_FLAGS if getattr(settings, k, False)},
        **({"cpu_linear": cpu_linear} if device_type == "cpu" and cpu_linear != "onednn" else {}),
        **({"labels": "by-class-name"} if getattr(ds, "relabelled", False) else {}),
    }


def run_id(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
