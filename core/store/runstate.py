"""Resumable run state: what a run has already scored, kept under ``<cache_dir>/runs/<run_id>/``.

Each rank appends one JSON line per finished batch to ``<model>/rank<r>.jsonl`` (the lines of
a flush, ``visbpp.core.engine.persist``, then one fsync);
a line is the unit of progress. A line holds the rows and each image's identity (path, size,
mtime, as in the token cache): a row whose image has since changed, a row without finite bits
and a malformed line are not taken as done (the image is scored again). After a kill the last line may be cut short: it is dropped
when the file is read and truncated away before the rank appends again. ``meta.json`` keeps
the run identity and the batch size chosen per model (so ``--batch-size auto`` resumes with
the same batches, hence the same per-image bits).

:func:`run_lock` holds a filelock ``<cache_dir>/locks/run-<run_id>.rank<r>.lock`` for the
whole run, so that a second process with the same run (and rank) fails fast instead of
appending to (or truncating) the same files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from typing import Mapping

from visbpp.core.errors import OutputError  # noqa: E402
from visbpp.core.files import atomic_write_text, with_path


class RunInProgressError(OutputError):
    """The same run (same run id and rank) is being scored by another process."""


def run_lock(cache_dir: str, run_id: str, rank: int = 0):
    """An acquired filelock of this run and rank (release it when the run ends), or RunInProgressError."""
    from filelock import FileLock, Timeout

    os.makedirs(os.path.join(cache_dir, "locks"), exist_ok=True)
    lock = FileLock(os.path.join(cache_dir, "locks", f"run-{run_id}.rank{rank}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunInProgressError(f"run {run_id} is already in progress in another process "
                                 f"(wait for it to finish or stop it; rerunning then resumes)") from None
    return lock


def model_slug(model_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:60]
    return f"{safe}-{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"


def read_lines(path: str) -> tuple[list[dict], int]:
    """Complete JSON lines of ``path`` and the byte length of that complete prefix."""
    rows: list[dict] = []
    good = 0
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return rows, 0
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        try:
            rows.append(json.loads(data[pos:nl]))
        except ValueError:
            break
        pos = good = nl + 1
    return rows, good


class RunState:
    def __init__(self, folder: str, identity: dict, rank: int = 0):
        self.folder = folder
        self.rank = rank  # the folder is created on the first write, so a failed start leaves nothing
        self.meta_path = os.path.join(folder, "meta.json")
        self.meta = self._read_meta() or {"identity": identity, "batch_size": {}}

    def _read_meta(self) -> dict | None:
        try:
            with open(self.meta_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def save_meta(self) -> None:
        if self.rank == 0:
            os.makedirs(self.folder, exist_ok=True)
            atomic_write_text(self.meta_path, json.dumps(self.meta, indent=1))

    def batch_size(self, model_id: str) -> int | None:
        return self.meta["batch_size"].get(model_id)

    def set_batch_size(self, model_id: str, bs: int) -> None:
        self.meta["batch_size"][model_id] = int(bs)
        self.save_meta()

    def done_rows(self, model_id: str, keys: Mapping[str, str | None] | None = None) -> dict[str, dict]:
        """image -> row, from every rank's file of this model; with ``keys`` (image -> identity) only
        rows scored from the image as it is now."""
        d = os.path.join(self.folder, model_slug(model_id))
        out: dict[str, dict] = {}
        if not os.path.isdir(d):
            return out
        for name in sorted(os.listdir(d)):
            if name.endswith(".jsonl"):
                for line in read_lines(os.path.join(d, name))[0]:
                    rows = line.get("rows") if isinstance(line, dict) else None
                    if not isinstance(rows, list):
                        continue
                    ids = line.get("keys")
                    ids = ids if isinstance(ids, list) and len(ids) == len(rows) else [None] * len(rows)
                    for r, k in zip(rows, ids):
                        if _good_row(r) and (keys is None or (k is not None and keys.get(r["image"]) == k)):
                            out[r["image"]] = r
        return out

    def appender(self, model_id: str) -> "RowAppender":
        return RowAppender(os.path.join(self.folder, model_slug(model_id), f"rank{self.rank}.jsonl"))


def _good_row(r) -> bool:
    return (isinstance(r, dict) and isinstance(r.get("image"), str) and isinstance(r.get("bits"), (int, float))
            and math.isfinite(r["bits"]) and all(isinstance(r.get(k), int) for k in ("tokens", "pixels")))


class RowAppender:
    def __init__(self, path: str):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _, good = read_lines(path)
        if os.path.exists(path) and os.path.getsize(path) != good:
            with open(path, "r+b") as f:
                f.truncate(good)
        self.f = open(path, "ab")

    def append(self, rows: list[dict], keys: list[str] | None = None) -> None:
        self.append_many([(rows, keys)])

    def append_many(self, batches: list[tuple[list[dict], list[str] | None]]) -> None:
        """One line per batch, then one fsync for all of them."""
        try:
            self.f.write(b"".join((json.dumps({"rows": rows, "keys": keys}, allow_nan=False) + "\n").encode()
                                  for rows, keys in batches))
            self.f.flush()
            os.fsync(self.f.fileno())
        except OSError as e:
            raise with_path(e, self.f.name) from None

    def close(self) -> None:
        self.f.close()
