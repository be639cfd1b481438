"""Reading the results store: complete results documents, their per-image rows, and every usable
model measurement (both results.json layouts: ``results``/``config`` and the earlier
``models``/``metadata``; ``bits_per_pixel`` of earlier versions is ``bits_per_hw``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
import warnings

from visbpp.core.files import default_cache_dir
from visbpp.core.units import MAX_BPP


def read_rows(folder: str) -> list[dict]:
    """per_image.csv of a results folder as rows (numbers parsed)."""
    with open(os.path.join(folder, "per_image.csv"), newline="", encoding="utf-8", errors="surrogateescape") as f:
        return parse_rows(f)


def parse_rows(lines) -> list[dict]:
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
        rows = parse_rows(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""))
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
    return read_document(path)[0]


def read_document(path: str) -> tuple[dict | None, str]:
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


def model_problem(m: dict) -> str | None:
    """Why a stored model summary cannot be used, or None."""
    mid, bpp, n = m.get("model_id"), m.get("bpp"), m.get("n_images")
    if not isinstance(mid, str) or not mid:
        return f"model_id {mid!r} is not a name"
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        return f"{mid}: n_images {n!r} is not a positive count"
    if not isinstance(bpp, (int, float)) or isinstance(bpp, bool) or not (0 < bpp <= MAX_BPP):
        return f"{mid}: bpp {bpp!r} is not a positive finite BPP"
    return None


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
        doc, why = read_document(path)
        if doc is None:
            if why:
                warnings.warn(f"{path}: skipped a damaged results-store entry ({why})", stacklevel=2)
            continue
        meta = run_config(doc)
        for m in doc["models"]:
            problem = model_problem(m)
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
                    "tf32": bool(meta.get("tf32", False)), "class_info_bits": m.get("class_info_bits"),
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
