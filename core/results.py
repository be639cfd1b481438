"""Scoring results: per-image rows, per-model summaries, run metadata, files and the results store.

Per-image row: ``model_id, image, label, bits, tokens, pixels, bpp`` where ``pixels = H*W``
of the scored (preprocessed) image and ``bpp = bits / (3*pixels)``.

Per-model summary: ``n_images``, ``sum_bits`` (float64), ``bpp = sum_bits / sum(3*H*W)``,
``bits_per_pixel = sum_bits / sum(H*W)``, ``bits_per_token = sum_bits / sum(tokens)``, a
bootstrap 95% CI of the BPP over images (percentile, 2000 resamples, fixed seed) and the
number of images skipped.

``--out DIR`` gets ``per_image.csv``, ``summary.csv``, ``skipped.csv`` (when images were
skipped; a stale one from an earlier run is removed otherwise) and ``results.json`` (summaries, skipped images, metadata; no per-image rows); every
finished run is also stored the same way in ``<cache_dir>/results/<run_id>/``, which
:func:`measured_results` reads. Every file is written atomically, and results.json is written
last with ``"complete": true``, so a folder without it (or with an older one) is never taken
for a finished run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import sys
import warnings
from typing import Iterable

import numpy as np

from .token_cache import atomic_write_text, default_cache_dir

ROW_FIELDS = ("model_id", "image", "label", "bits", "tokens", "pixels", "bpp")
SUMMARY_FIELDS = ("model_id", "family", "resolution", "n_images", "sum_bits", "bpp", "bits_per_pixel",
                  "bits_per_token", "bpp_ci_low", "bpp_ci_high", "images_skipped", "reference_bpp", "dtype",
                  "preprocess")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def bootstrap_ci(bits: np.ndarray, denom: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of sum(bits)/sum(denom), resampling images with replacement."""
    n = len(bits)
    if n == 0:
        return float("nan"), float("nan")
    if n == 1:
        v = float(bits[0] / denom[0])
        return v, v
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples, dtype=np.float64)
    step = max(1, 2_000_000 // n)
    for s in range(0, resamples, step):
        e = min(resamples, s + step)
        idx = rng.integers(0, n, size=(e - s, n))
        stats[s:e] = bits[idx].sum(1) / denom[idx].sum(1)
    a = (1 - level) / 2
    lo, hi = np.quantile(stats, [a, 1 - a])
    return float(lo), float(hi)


def summarize(model_id: str, rows: list[dict], skipped: int, family: str = "", resolution: int | None = None,
              reference_bpp: float | None = None, dtype: str = "fp32", preprocess: str = "official") -> dict:
    bits = np.array([r["bits"] for r in rows], dtype=np.float64)
    pix = np.array([r["pixels"] for r in rows], dtype=np.float64)
    toks = np.array([r["tokens"] for r in rows], dtype=np.float64)
    s = float(bits.sum(dtype=np.float64)) if len(rows) else 0.0
    nan = None  # no images scored: no ratio (null in JSON, empty in CSV)
    lo, hi = bootstrap_ci(bits, 3.0 * pix) if len(rows) else (None, None)
    return {
        "model_id": model_id,
        "family": family,
        "resolution": resolution,
        "n_images": len(rows),
        "sum_bits": s,
        "bpp": s / (3.0 * pix.sum()) if len(rows) else nan,
        "bits_per_pixel": s / pix.sum() if len(rows) else nan,
        "bits_per_token": s / toks.sum() if len(rows) else nan,
        "bpp_ci_low": lo,
        "bpp_ci_high": hi,
        "images_skipped": skipped,
        "reference_bpp": reference_bpp,
        "dtype": dtype,
        "preprocess": preprocess,
    }


# --------------------------------------------------------------------------- metadata


def file_sha256(path: str, cache_dir: str | None = None) -> str:
    """sha256 of a file, memoised by (path, size, mtime) in the checksum database of the cache dir."""
    from .checkpoints import file_sha256 as memoised_sha256

    return memoised_sha256(path)


def git_hash() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict:
    import torch

    v = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
         "platform": platform.platform()}
    try:
        from importlib.metadata import version

        v["visbpp"] = version("visbpp")
    except Exception:  # noqa: BLE001
        v["visbpp"] = None
    try:
        import PIL

        v["pillow"] = PIL.__version__
    except ImportError:
        pass
    return v


# --------------------------------------------------------------------------- files


def _csv_text(fields: Iterable[str], rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in r.items()})  # full precision; np.float64 too
    return buf.getvalue()


class OutputError(ValueError):
    """An output or cache folder that cannot be used (a file, not writable): says which and why."""


def check_writable_dir(path: str, what: str) -> str:
    """Absolute ``path`` if it is (or can be created as) a writable folder, else :class:`OutputError`.

    Nothing is created: an existing folder is probed with a temporary file, a missing one is
    checked at its nearest existing parent.
    """
    import tempfile

    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"{what} {path}: exists and is not a folder; pass a folder path")
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OutputError(f"{what} {path}: {probe} is a file, so the folder cannot be created; pass another path")
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".visbpp-probe-")
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise OutputError(f"{what} {path}: {probe} is not writable ({e.strerror}); pass a writable folder") from None
    return path


def usable_dirs(out_dir: str | None, cache_dir: str | None = None) -> str:
    """The cache dir, after checking that it and ``out_dir`` are usable folders (else OutputError)."""
    try:
        cache = default_cache_dir(cache_dir)
    except OSError as e:
        raise OutputError(f"cache dir (VISBPP_HOME={os.environ.get('VISBPP_HOME', '')!r}): cannot create it "
                          f"({e.strerror or e}); set VISBPP_HOME to a writable folder") from None
    check_writable_dir(cache, "cache dir (VISBPP_HOME)")
    if out_dir:
        check_writable_dir(out_dir, "--out")
    return cache


def write_outputs(out_dir: str, document: dict, rows: list[dict]) -> None:
    """per_image.csv, summary.csv, skipped.csv, then results.json (complete marker last), each atomically."""
    os.makedirs(out_dir, exist_ok=True)
    stale = os.path.join(out_dir, "results.json")
    if os.path.exists(stale):
        os.remove(stale)  # never leave an older complete-looking results.json beside new rows
    atomic_write_text(os.path.join(out_dir, "per_image.csv"), _csv_text(ROW_FIELDS, rows))
    atomic_write_text(os.path.join(out_dir, "summary.csv"), _csv_text(SUMMARY_FIELDS, document["models"]))
    skipped = os.path.join(out_dir, "skipped.csv")
    if document.get("skipped"):
        atomic_write_text(skipped, _csv_text(("image", "reason"), document["skipped"]))
    elif os.path.exists(skipped):
        os.remove(skipped)  # from an earlier run into the same folder; this one skipped nothing
    atomic_write_text(os.path.join(out_dir, "results.json"), json.dumps(document, indent=1, allow_nan=False))


def store_dir(run_id: str, cache_dir: str | None = None) -> str:
    return os.path.join(default_cache_dir(cache_dir), "results", run_id)


def store(document: dict, rows: list[dict], cache_dir: str | None = None) -> str:
    """Write the run into the results store; returns its folder."""
    folder = store_dir(document["run_id"], cache_dir)
    write_outputs(folder, document, rows)
    return folder


def read_rows(folder: str) -> list[dict]:
    """per_image.csv of a results folder as rows (numbers parsed)."""
    with open(os.path.join(folder, "per_image.csv"), newline="") as f:
        out = []
        for r in csv.DictReader(f):
            out.append({"model_id": r["model_id"], "image": r["image"], "label": int(r["label"]),
                        "bits": float(r["bits"]), "tokens": int(r["tokens"]), "pixels": int(r["pixels"]),
                        "bpp": float(r["bpp"])})
        return out


def load_document(path: str) -> dict | None:
    """A complete results document, or None if missing, unreadable or incomplete.

    A document with a model that scored no image (written by an older version) is not complete.
    """
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError):
        return None
    if not (isinstance(d, dict) and d.get("complete") is True):
        return None
    return d if all(m.get("n_images") for m in d.get("models", [])) else None


def _preference(entry: dict) -> tuple:
    return (entry["dtype"] != "bf16", entry["n_images"], entry["finished_at"])


def measured_results(cache_dir: str | None = None, preprocess: str | None = None) -> list[dict]:
    """The measurement per model_id from the results store that the analysis uses.

    Only complete runs with at least one scored image count (and, with ``preprocess``, only runs
    of that preprocessing protocol; runs written before the protocol was recorded are "official"). Per model: fp32 over bf16, then
    the run with the most images (a full measurement beats a ``--limit`` run), then the latest.
    """
    folder = os.path.join(default_cache_dir(cache_dir), "results")
    if not os.path.isdir(folder):
        return []
    latest: dict[str, dict] = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "results.json")
        doc = load_document(path)
        if doc is None:
            continue
        meta = doc.get("metadata", {})
        for m in doc.get("models", []):
            if not isinstance(m, dict) or not m.get("n_images") or m.get("bpp") is None:
                continue
            try:
                entry = {
                    "model_id": m["model_id"], "family": m.get("family", ""), "resolution": m.get("resolution"),
                    "bpp": float(m["bpp"]), "bits_per_pixel": m.get("bits_per_pixel"),
                    "bits_per_token": m.get("bits_per_token"), "bpp_ci_low": m.get("bpp_ci_low"),
                    "bpp_ci_high": m.get("bpp_ci_high"), "n_images": int(m["n_images"]),
                    "subset": meta.get("subset", {}), "dtype": m.get("dtype", meta.get("dtype")),
                    "preprocess": m.get("preprocess", meta.get("preprocess", "official")),
                    "run_id": doc.get("run_id", name), "finished_at": doc.get("finished_at", ""), "path": path,
                }
            except (KeyError, TypeError, ValueError) as e:  # a damaged store entry must not hide the others
                warnings.warn(f"{path}: skipped a malformed model entry ({type(e).__name__}: {e})", stacklevel=2)
                continue
            if preprocess is not None and entry["preprocess"] != preprocess:
                continue
            prev = latest.get(entry["model_id"])
            if prev is None or _preference(entry) >= _preference(prev):
                latest[entry["model_id"]] = entry
    return [latest[k] for k in sorted(latest)]
