"""Output files of a run: ``per_image.csv``, ``summary.csv``, ``skipped.csv`` and ``results.json``
in ``--out`` and in the results store (``<cache_dir>/results/<run_id>/``).

``--out DIR`` gets ``per_image.csv``, ``summary.csv``, ``skipped.csv`` (when images were
skipped; a stale one from an earlier run is removed otherwise) and ``results.json`` (summaries,
skipped images, metadata; no per-image rows); every finished run is also stored the same way in
the results store. Every file is written atomically, and results.json is written last with
``"complete": true``, so a folder without it (or with an older one) is never taken for a
finished run.

This module is also the public face of a run's results: the names of
:mod:`~visbpp.core.store.summary` (statistics), :mod:`~visbpp.core.store.provenance`,
:mod:`~visbpp.core.store.reading` (reading the store) and the selection rule's
:func:`~visbpp.core.store.runs.measured_results` are importable from here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from typing import Iterable

from visbpp.core.errors import OutputError
from visbpp.core.files import atomic_write_text, default_cache_dir
from visbpp.core.store.provenance import git_dirty, git_hash, harness_layout, host, versions
from visbpp.core.store.reading import (
    finished_run,
    load_document,
    parse_rows,
    read_document,
    read_measurements,
    read_rows,
    run_config,
    verified_rows,
)
from visbpp.core.store.runs import measured_results
from visbpp.core.store.summary import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CI_METHOD,
    MIN_CI_IMAGES,
    ROW_FIELDS,
    SUMMARY_FIELDS,
    UNITS,
    bootstrap_ci,
    ci_note,
    summarize,
)

__all__ = [  # the public names of the run results (this module's own, then the re-exported ones)
    "OUTPUT_FILES", "OutputError", "check_writable_dir", "csv_text", "recover_outputs", "store", "store_dir",
    "usable_dirs", "write_outputs",
    "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CI_METHOD", "MIN_CI_IMAGES", "ROW_FIELDS", "SUMMARY_FIELDS", "UNITS",
    "bootstrap_ci", "ci_note", "summarize",
    "git_dirty", "git_hash", "harness_layout", "host", "versions",
    "finished_run", "load_document", "parse_rows", "read_document", "read_measurements", "read_rows", "run_config",
    "verified_rows", "measured_results",
]


def csv_text(fields: Iterable[str], rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in r.items()})  # full precision; np.float64 too
    return buf.getvalue()


def check_writable_dir(path: str, what: str) -> str:
    """Absolute ``path`` if it is (or can be created as) a writable folder, else :class:`OutputError`.

    Nothing is created: an existing folder is probed with a temporary file, a missing one is
    checked at its nearest existing parent.
    """
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
        per_image = csv_text(ROW_FIELDS, rows)
        document = {**harness_layout(document), "per_image_rows": len(rows),
                    "per_image_sha256": hashlib.sha256(per_image.encode("utf-8", "surrogateescape")).hexdigest()}
        stage = tempfile.mkdtemp(dir=out_dir, prefix=_STAGE)
        os.chmod(stage, 0o777 & ~umask())
        try:
            atomic_write_text(os.path.join(stage, "per_image.csv"), per_image)
            atomic_write_text(os.path.join(stage, "summary.csv"), csv_text(SUMMARY_FIELDS, document["models"]))
            if document.get("skipped"):
                atomic_write_text(os.path.join(stage, "skipped.csv"), csv_text(("image", "reason"), document["skipped"]))
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
