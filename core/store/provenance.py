"""Provenance of a run's results: versions, git state, the machine, and the results.json layout."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np

from visbpp.core.store.summary import CI_METHOD, UNITS


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
    import PIL

    v["pillow"] = PIL.__version__
    return v
