"""Scoring results: per-image rows, per-model summaries, run metadata, files and the results store.

Per-image row: ``model_id, image, label, bits, tokens, pixels, bpp`` where ``pixels = H*W``
of the scored (preprocessed) image and ``bpp = bits / (3*pixels)``.

Per-model summary: ``n_images``, ``sum_bits`` (float64), ``bpp = sum_bits / sum(3*H*W)``,
``bits_per_hw = sum_bits / sum(H*W)``, ``bits_per_token = sum_bits / sum(tokens)``, a
bootstrap 95% CI of the BPP over images (:data:`CI_METHOD`; none below :data:`MIN_CI_IMAGES`
images, ``bpp_ci_note`` says why) and the number of images skipped.

``--out DIR`` gets ``per_image.csv``, ``summary.csv``, ``skipped.csv`` (when images were
skipped; a stale one from an earlier run is removed otherwise) and ``results.json`` (summaries, skipped images, metadata; no per-image rows); every
finished run is also stored the same way in ``<cache_dir>/results/<run_id>/``, which
:func:`measured_results` reads. Every file is written atomically, and results.json is written
last with ``"complete": true``, so a folder without it (or with an older one) is never taken
for a finished run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Iterable

import numpy as np

from visbpp.core.files import atomic_write_text, default_cache_dir

ROW_FIELDS = ("model_id", "image", "label", "bits", "tokens", "pixels", "bpp")
SUMMARY_FIELDS = ("model_id", "family", "resolution", "n_images", "sum_bits", "bpp", "bits_per_hw",
                  "bits_per_token", "bpp_ci_low", "bpp_ci_high", "bpp_ci_note", "images_skipped", "reference_bpp",
                  "dtype", "preprocess")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MIN_CI_IMAGES = 10  # below this many images no interval is given (a bootstrap of so few says nothing)
CI_METHOD = (f"95% percentile bootstrap over images, {BOOTSTRAP_RESAMPLES} resamples (seed {BOOTSTRAP_SEED}); "
             f"none for fewer than {MIN_CI_IMAGES} images")
UNITS = {"bpp": "bits / (3*H*W)", "bits_per_hw": "bits / (H*W)", "bits_per_token": "bits / token",
         "bits": "bits per image (sum of -log2 p over its tokens)"}


def ci_note(n: int) -> str:
    """Why no interval is given for ``n`` images ("" when one is)."""
    return "" if n >= MIN_CI_IMAGES else f"no CI: {n} image{'s' if n != 1 else ''} (< {MIN_CI_IMAGES})"


def bootstrap_ci(bits: np.ndarray, denom: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of sum(bits)/sum(denom), resampling images with replacement;
    (None, None) below :data:`MIN_CI_IMAGES` images."""
    n = len(bits)
    if n < MIN_CI_IMAGES:
        return None, None
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
    lo, hi = bootstrap_ci(bits, 3.0 * pix)
    return {
        "model_id": model_id,
        "family": family,
        "resolution": resolution,
        "n_images": len(rows),
        "sum_bits": s,
        "bpp": s / (3.0 * pix.sum()) if len(rows) else nan,
        "bits_per_hw": s / pix.sum() if len(rows) else nan,
        "bits_per_token": s / toks.sum() if len(rows) else nan,
        "bpp_ci_low": lo,
        "bpp_ci_high": hi,
        "bpp_ci_note": ci_note(len(rows)),
        "images_skipped": skipped,
        "reference_bpp": reference_bpp,
        "dtype": dtype,
        "preprocess": preprocess,
    }


# --------------------------------------------------------------------------- metadata


def file_sha256(path: str, cache_dir: str | None = None) -> str:
    """sha256 of a file, memoised by (path, size, mtime) in the checksum database of the cache dir."""
    from visbpp.core.registry.checkpoints import file_sha256 as memoised_sha256

    return memoised_sha256(path)


def git_hash() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def git_dirty() -> bool | None:
    """True when the source tree has uncommitted changes (None outside a git checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def host() -> dict:
    """The machine: CPU (model name where the OS tells it, core count) and GPUs (names, or None)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken driver must not stop writing results
        gpu = None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu}


def harness_layout(document: dict) -> dict:
    """The results.json layout: top-level ``results`` (model id -> summary) and ``config`` (the
    run's configuration with the command line, git hash + dirty flag and host), plus ``models``
    (the summaries in run order), ``units`` and ``ci_method``. A document with ``metadata``
    (the engine's, or an earlier layout) is converted."""
    if "config" in document and "results" in document:
        return document
    doc = dict(document)
    config = dict(doc.pop("metadata", None) or {})
    config.setdefault("command_line", " ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:]))
    config.setdefault("git", {"hash": config.get("git_hash", git_hash()), "dirty": git_dirty()})
    config.setdefault("host", host())
    doc["results"] = {m["model_id"]: {k: v for k, v in m.items() if k != "model_id"} for m in doc.get("models", [])}
    doc["config"] = config
    doc.setdefault("units", UNITS)
    doc.setdefault("ci_method", CI_METHOD)
    return doc


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


from visbpp.core.errors import OutputError  # noqa: E402 - re-exported


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
    from visbpp.core.files import CacheDirError

    try:
        cache = default_cache_dir(cache_dir)
    except CacheDirError as e:
        raise OutputError(f"{e} (VISBPP_HOME={os.environ.get('VISBPP_HOME', '')!r})") from None
    except OSError as e:
        raise OutputError(f"cache dir (VISBPP_HOME={os.environ.get('VISBPP_HOME', '')!r}): cannot create it "
                          f"({e.strerror or e}); set VISBPP_HOME to a writable folder") from None
    check_writable_dir(cache, "cache dir (VISBPP_HOME)")
    if out_dir:
        check_writable_dir(out_dir, "--out")
    return cache


OUTPUT_FILES = ("per_image.csv", "summary.csv", "skipped.csv", "results.json")  # results.json: last
_STAGE, _COMMIT = ".visbpp-staging-", ".visbpp-commit-"
_STALE_TMP = re.compile(r"^\.(per_image\.csv|summary\.csv|skipped\.csv|results\.json)\..+\.tmp$")


def write_outputs(out_dir: str, document: dict, rows: list[dict]) -> None:
    """per_image.csv, summary.csv, skipped.csv and results.json (``"complete": true``, with the row
    count and sha256 of per_image.csv) written as a unit: all into a staging folder inside
    ``out_dir``, which is then committed by one rename and moved into place (results.json last).
    A kill before the commit leaves the previous files untouched; a kill after it is completed by
    the next write (or :func:`recover_outputs`); stale temporary files are removed."""
    from filelock import FileLock

    from visbpp.core.files import umask

    os.makedirs(out_dir, exist_ok=True)
    with FileLock(os.path.join(out_dir, ".visbpp-write.lock")):
        recover_outputs(out_dir)
        per_image = _csv_text(ROW_FIELDS, rows)
        document = {**harness_layout(document), "per_image_rows": len(rows),
                    "per_image_sha256": hashlib.sha256(per_image.encode("utf-8", "surrogateescape")).hexdigest()}
        stage = tempfile.mkdtemp(dir=out_dir, prefix=_STAGE)
        os.chmod(stage, 0o777 & ~umask())
        try:
            atomic_write_text(os.path.join(stage, "per_image.csv"), per_image)
            atomic_write_text(os.path.join(stage, "summary.csv"), _csv_text(SUMMARY_FIELDS, document["models"]))
            if document.get("skipped"):
                atomic_write_text(os.path.join(stage, "skipped.csv"), _csv_text(("image", "reason"), document["skipped"]))
            atomic_write_text(os.path.join(stage, "results.json"), json.dumps(document, indent=1, allow_nan=False))
            commit = os.path.join(out_dir, f"{_COMMIT}{time.time_ns():020d}")
            os.rename(stage, commit)  # the commit point
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _roll_forward(out_dir, commit)


def _roll_forward(out_dir: str, commit: str) -> None:
    if os.path.isfile(os.path.join(commit, "results.json")):
        stale = os.path.join(out_dir, "results.json")
        if os.path.exists(stale):
            os.remove(stale)  # never an older complete-looking results.json beside new rows
        for name in OUTPUT_FILES:
            src, dst = os.path.join(commit, name), os.path.join(out_dir, name)
            if os.path.exists(src):
                os.replace(src, dst)
            elif name == "skipped.csv" and os.path.exists(dst):
                os.remove(dst)  # from an earlier run into the same folder; this one skipped nothing
    shutil.rmtree(commit, ignore_errors=True)


def recover_outputs(out_dir: str) -> None:
    """Finish a write that was interrupted after its commit, drop uncommitted ones and stale temps."""
    try:
        names = sorted(os.listdir(out_dir))
    except OSError:
        return
    for name in names:
        path = os.path.join(out_dir, name)
        if name.startswith(_COMMIT) and os.path.isdir(path):
            _roll_forward(out_dir, path)
        elif name.startswith(_STAGE) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif _STALE_TMP.match(name):
            os.remove(path)


def store_dir(run_id: str, cache_dir: str | None = None) -> str:
    return os.path.join(default_cache_dir(cache_dir), "results", run_id)


def store(document: dict, rows: list[dict], cache_dir: str | None = None) -> str:
    """Write the run into the results store; returns its folder."""
    folder = store_dir(document["run_id"], cache_dir)
    write_outputs(folder, document, rows)
    return folder


def read_rows(folder: str) -> list[dict]:
    """per_image.csv of a results folder as rows (numbers parsed)."""
    with open(os.path.join(folder, "per_image.csv"), newline="", encoding="utf-8", errors="surrogateescape") as f:
        return _parse_rows(f)


def _parse_rows(lines) -> list[dict]:
    out = []
    for r in csv.DictReader(lines):
        out.append({"model_id": r["model_id"], "image": r["image"], "label": int(r["label"]),
                    "bits": float(r["bits"]), "tokens": int(r["tokens"]), "pixels": int(r["pixels"]),
                    "bpp": float(r["bpp"])})
    return out


def verified_rows(folder: str, doc: dict) -> tuple[list[dict] | None, str]:
    """(rows of per_image.csv, "") when it matches ``doc``: its sha256 and row count as recorded
    (documents of older versions: the models' image counts); else (None, what is wrong)."""
    path = os.path.join(folder, "per_image.csv")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, f"{path}: unreadable ({e.strerror})"
    want = doc.get("per_image_sha256")
    if want is not None and hashlib.sha256(data).hexdigest() != want:
        return None, f"{path}: sha256 differs from the one recorded in results.json"
    try:
        rows = _parse_rows(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""))
    except (KeyError, ValueError, TypeError, csv.Error) as e:
        return None, f"{path}: malformed ({type(e).__name__}: {e})"
    n = doc.get("per_image_rows", sum(int(m.get("n_images") or 0) for m in doc.get("models", [])))
    if len(rows) != n:
        return None, f"{path}: {len(rows)} rows, results.json says {n}"
    return rows, ""


def finished_run(folder: str, set_aside: bool = True) -> tuple[dict, list[dict]] | None:
    """(document, rows) of a complete, intact run in the results store, else None. A complete
    document whose per_image.csv does not match it is moved out of the store (to
    ``results-damaged/``) with a warning, so the run is finished again from its run state."""
    doc = load_document(os.path.join(folder, "results.json"))
    if doc is None:
        return None
    rows, why = verified_rows(folder, doc)
    if rows is not None:
        return doc, rows
    if set_aside:
        aside = os.path.join(os.path.dirname(os.path.dirname(folder)), "results-damaged")
        os.makedirs(aside, exist_ok=True)
        dest = os.path.join(aside, f"{os.path.basename(folder)}-{time.time_ns()}")
        try:
            os.replace(folder, dest)
        except OSError:
            dest = folder
        warnings.warn(f"{why}; moved the store entry to {dest} and finishing the run again", stacklevel=2)
    return None


def load_document(path: str) -> dict | None:
    """A complete results document, or None if missing, unreadable or incomplete.

    A document with a model that scored no image (written by an older version) is not complete.
    """
    return _read_document(path)[0]


def _read_document(path: str) -> tuple[dict | None, str]:
    """(complete document, "") or (None, why not; "" when there is simply no file)."""
    try:
        with open(path) as f:
            d = json.load(f)
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as e:
        return None, f"unreadable or not JSON ({type(e).__name__})"
    if not isinstance(d, dict):
        return None, f"not a results document ({type(d).__name__})"
    if d.get("complete") is not True:
        return None, ""
    models = d.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        return None, f"'models' is not a list of model summaries ({type(models).__name__})"
    for m in models:  # earlier versions' name of bits / (H*W)
        if "bits_per_pixel" in m and "bits_per_hw" not in m:
            m["bits_per_hw"] = m.pop("bits_per_pixel")
    return (d, "") if all(m.get("n_images") for m in models) else (None, "")


MAX_BPP = 64.0  # as the analysis: above this a value is a unit mistake


def _model_problem(m: dict) -> str | None:
    """Why a stored model summary cannot be used, or None."""
    mid, bpp, n = m.get("model_id"), m.get("bpp"), m.get("n_images")
    if not isinstance(mid, str) or not mid:
        return f"model_id {mid!r} is not a name"
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"{mid}: n_images {n!r} is not a positive count"
    if not isinstance(bpp, (int, float)) or isinstance(bpp, bool) or not (0 < bpp <= MAX_BPP):
        return f"{mid}: bpp {bpp!r} is not a positive finite BPP"
    return None


def measured_results(cache_dir: str | None = None, preprocess: str | None = None,
                     notes: list[str] | None = None) -> list[dict]:
    """The measurement per model_id from the results store that the analysis uses: the one
    selection rule of :func:`visbpp.core.store.runs.select_measured` (pins, then the largest common
    image set, fp32 over bf16, newest last). Its notes are appended to ``notes`` when given."""
    from visbpp.core.store.runs import select_measured

    sel = select_measured(cache_dir, preprocess)
    if notes is not None:
        notes.extend(sel.notes)
    return sel.entries


def read_measurements(cache_dir: str | None = None) -> list[dict]:
    """Every usable model measurement of every complete run in the results store.

    Only complete runs with at least one scored image count; runs written before the protocol
    was recorded are "official". A damaged entry is skipped with one warning naming its file;
    the others are unaffected. Both results.json layouts are read (``results``/``config`` and the
    earlier ``models``/``metadata``; ``bits_per_pixel`` of earlier versions is ``bits_per_hw``).
    """
    folder = os.path.join(default_cache_dir(cache_dir), "results")
    if not os.path.isdir(folder):
        return []
    out: list[dict] = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "results.json")
        doc, why = _read_document(path)
        if doc is None:
            if why:
                warnings.warn(f"{path}: skipped a damaged results-store entry ({why})", stacklevel=2)
            continue
        meta = run_config(doc)
        for m in doc["models"]:
            problem = _model_problem(m)
            if problem is not None:
                warnings.warn(f"{path}: skipped a malformed model entry ({problem})", stacklevel=2)
                continue
            try:
                entry = {
                    "model_id": m["model_id"], "family": m.get("family", ""), "resolution": m.get("resolution"),
                    "bpp": float(m["bpp"]), "bits_per_hw": m.get("bits_per_hw"),
                    "bits_per_token": m.get("bits_per_token"), "bpp_ci_low": m.get("bpp_ci_low"),
                    "bpp_ci_high": m.get("bpp_ci_high"), "n_images": int(m["n_images"]),
                    "subset": meta.get("subset", {}), "dtype": str(m.get("dtype", meta.get("dtype"))),
                    "preprocess": str(m.get("preprocess", meta.get("preprocess", "official"))),
                    "run_id": str(doc.get("run_id", name)), "finished_at": str(doc.get("finished_at", "")),
                    "path": path, "order": m.get("order"),
                }
            except (KeyError, TypeError, ValueError) as e:  # a damaged store entry must not hide the others
                warnings.warn(f"{path}: skipped a malformed model entry ({type(e).__name__}: {e})", stacklevel=2)
                continue
            out.append(entry)
    return out


def run_config(doc: dict) -> dict:
    """A results document's run configuration: ``config`` (current layout) or ``metadata`` (earlier)."""
    for key in ("config", "metadata"):
        if isinstance(doc.get(key), dict):
            return doc[key]
    return {}
