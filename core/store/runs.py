"""Runs in the results store: listing, removal, pins, and the one rule that chooses which
measurement of a model feeds the analysis.

A run lives in ``<cache>/results/<run_id>/`` (its finished results) and ``<cache>/runs/<run_id>/``
(its resumable state); its tokens live in the token cache, shared with other runs, which is
never touched here. Pins (``<cache>/pins.json``, written atomically) map a model id to the run
whose measurement the analysis uses for it.

Selection rule (:func:`select_measured`, used by ``analyze``, ``export``, ``inspect`` and the TUI):

1. a pinned run, when the pin names a complete run holding the model;
2. otherwise, within a fit domain (the micro zoo, everything else), the *basis* (preprocessing,
   image set, image count) that the most models were measured on, then the one with the most
   fp32 reference measurements, then the most images, then the default protocol
   (``official``), then the newest; each model's run on that basis: the fp32 reference (fp32
   with TF32 off) over fp32 with ``--tf32`` over bf16, then (models with an order axis) the
   scoring order averaged over the most orders (perm:4 over raster), then the newest;
3. a model without a run on that basis keeps its own best run (the reference numerics, most
   images, newest) and a note names it with its n: the analysis then refuses (or, with
   ``--allow-mixed``, warns about) a fit that mixes the bases.

Which run each model's measurement comes from is always said (:attr:`Selection.notes`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field

from visbpp.core.errors import ConfigError, OutputError, VisbppError
from visbpp.core.files import atomic_write_text, default_cache_dir
from visbpp.core.layout import parse_order
from visbpp.core.registry.catalog import MICRO_FAMILY
from visbpp.core.store.reading import read_document, read_measurements, run_config

PINS_FILE = "pins.json"
DEFAULT_PREPROCESSING = "official"   # the default protocol (each family's own transform), preferred on a tie


class RunError(VisbppError, KeyError):
    """A run id that names no run, a pin that cannot be made, or a run in progress."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- listing


IMAGENET_VAL_N = 50000
IMAGENET_VAL_ALL = f"ImageNet val, all {IMAGENET_VAL_N} images"


def image_set(subset: dict | None) -> str:
    """The images a measured BPP is an average over, as comparable text ("" when unknown).

    A run over a whole 1000-class folder of 50000 images (no --limit/--per-class) is the
    ImageNet validation set the published table used, wherever it lies on disk."""
    sub = subset or {}
    if not sub:
        return ""
    lim, per = sub.get("limit"), sub.get("per_class")
    if lim is None and per is None and sub.get("n_classes") == 1000 and sub.get("n_selected") == IMAGENET_VAL_N:
        return IMAGENET_VAL_ALL
    parts = [f"{sub.get('data', '?')} ({sub.get('layout', '?')})"]
    if per is not None:
        parts.append(f"first {per} per class")
    if lim is not None:
        parts.append(f"limit {lim}")
    return ", ".join(parts)


def _dirs(cache_dir: str | None) -> tuple[str, str, str]:
    cache = default_cache_dir(cache_dir)
    return cache, os.path.join(cache, "results"), os.path.join(cache, "runs")


OPTION_FLAGS = ("unconditional", "recon", "compile")   # settings that add to what a run measures or how


def _options(settings: dict) -> list[str]:
    """The optional settings a run was made with (``--unconditional``, ``--recon``, ``--compile``)."""
    return [k for k in OPTION_FLAGS if settings.get(k)]


def _subset_text(sub: dict) -> str:
    part = [f"first {sub['per_class']} per class"] if sub.get("per_class") is not None else []
    part += [f"limit {sub['limit']}"] if sub.get("limit") is not None else []
    return ", ".join(part) or "all"


def _summary(run_id: str, doc: dict | None, state_meta: dict | None, state_time: str = "") -> dict:

    if doc is not None:
        meta = run_config(doc)
        models = [m.get("model_id") for m in doc.get("models", []) if isinstance(m, dict)]
        ns = sorted({m.get("n_images") for m in doc.get("models", []) if isinstance(m, dict)} - {None})
        sub = meta.get("subset") if isinstance(meta.get("subset"), dict) else {}
        host = meta.get("host") if isinstance(meta.get("host"), dict) else {}
        settings = meta.get("settings") if isinstance(meta.get("settings"), dict) else {}
        return {"run_id": run_id, "models": models, "data": sub.get("data", ""), "subset": _subset_text(sub),
                "image_set": image_set(sub),
                "n_images": ns[0] if len(ns) == 1 else ns, "preprocess": meta.get("preprocess", DEFAULT_PREPROCESSING),
                "dtype": numerics({"dtype": meta.get("dtype", ""), "tf32": meta.get("tf32")}),
                "options": _options(settings),
                "device": host.get("gpu") or meta.get("device_name") or meta.get("device", ""),
                "date": doc.get("finished_at", ""), "complete": True}
    ident = (state_meta or {}).get("identity") or {}
    jobs = ident.get("jobs") if isinstance(ident.get("jobs"), list) else []
    models = [str(j[0]) for j in jobs if isinstance(j, list) and j]
    return {"run_id": run_id, "models": models, "data": ident.get("data", ""), "subset": _subset_text(ident),
            "n_images": ident.get("n_images"), "preprocess": ident.get("preprocess", ""),
            "dtype": numerics({"dtype": ident.get("dtype", ""), "tf32": ident.get("tf32")}),
            "options": _options(ident), "device": ident.get("device", ""), "date": state_time, "complete": False}


def list_runs(cache_dir: str | None = None) -> list[dict]:
    """Every run of the store (complete ones from their results, unfinished ones from their run
    state), newest first; damaged entries are skipped with a warning naming the file."""

    _, res, st = _dirs(cache_dir)
    ids = set()
    for d in (res, st):
        if os.path.isdir(d):
            ids |= {n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n))}
    out = []
    for rid in sorted(ids):
        path = os.path.join(res, rid, "results.json")
        doc, why = read_document(path)
        if why:
            warnings.warn(f"{path}: skipped a damaged results-store entry ({why})", stacklevel=2)
        state, when = None, ""
        if doc is None:
            meta_path = os.path.join(st, rid, "meta.json")
            try:
                with open(meta_path) as f:
                    state = json.load(f)
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(meta_path)))
            except (OSError, ValueError):
                state = {}
        out.append(_summary(rid, doc, state, when))
    return sorted(out, key=lambda r: (r["complete"], r["date"], r["run_id"]), reverse=True)


def resolve_id(run_id: str, cache_dir: str | None = None) -> str:
    """The full id of the run that ``run_id`` names: itself, or the one run whose id starts with
    it (as git takes a commit prefix); RunError when it names none or several."""
    _check_id(run_id)
    _, res, st = _dirs(cache_dir)
    if os.path.isdir(os.path.join(res, run_id)) or os.path.isdir(os.path.join(st, run_id)):
        return run_id
    ids = sorted({n for d in (res, st) if os.path.isdir(d) for n in os.listdir(d)
                  if n.startswith(run_id) and os.path.isdir(os.path.join(d, n))})
    if len(ids) > 1:
        raise RunError(f"run id prefix {run_id!r} is ambiguous: {', '.join(ids)}; give more characters")
    if not ids:
        raise RunError(_unknown(run_id, cache_dir))
    return ids[0]


def show_run(run_id: str, cache_dir: str | None = None) -> dict:
    """The run's summary plus its results document (None while unfinished); RunError if unknown."""

    _, res, st = _dirs(cache_dir)
    run_id = resolve_id(run_id, cache_dir)
    doc, _why = read_document(os.path.join(res, run_id, "results.json"))
    info = next(r for r in list_runs(cache_dir) if r["run_id"] == run_id)
    return {**info, "document": doc, "pinned_for": sorted(m for m, r in read_pins(cache_dir).items() if r == run_id)}


def _check_id(run_id: str) -> None:
    if not run_id or os.sep in run_id or run_id in (".", "..") or (os.altsep and os.altsep in run_id):
        raise RunError(f"{run_id!r} is not a run id (see `visbpp runs list`)")


def _unknown(run_id: str, cache_dir: str | None) -> str:
    return f"no run {run_id!r} in the results store {default_cache_dir(cache_dir)} (see `visbpp runs list`)"


def remove_runs(run_ids: list[str], cache_dir: str | None = None) -> list[str]:
    """Remove each run's results-store entry and run state (never its token cache) and its pins.

    Every id is checked first: an unknown id or a run in progress raises RunError and nothing is
    removed. Returns the folders removed."""
    from visbpp.core.store.runstate import RunInProgressError, run_lock

    cache, res, st = _dirs(cache_dir)
    try:
        run_ids = [resolve_id(rid, cache_dir) for rid in run_ids]
    except RunError as e:
        raise RunError(f"{e}; nothing removed") from None
    locks = []
    try:
        for rid in run_ids:
            try:
                locks.append(run_lock(cache, rid, 0))
            except RunInProgressError:
                raise RunError(f"run {rid} is in progress in another process; nothing removed "
                               f"(stop it or wait for it to finish first)") from None
        removed = []
        for rid in run_ids:
            for d in (os.path.join(res, rid), os.path.join(st, rid)):
                if os.path.isdir(d):
                    shutil.rmtree(d)
                    removed.append(d)
        pins = read_pins(cache_dir)
        kept = {m: r for m, r in pins.items() if r not in run_ids}
        if kept != pins:
            _write_pins(kept, cache_dir)
        return removed
    finally:
        for lk in locks:
            lk.release()


def clear_run(cache_dir: str, run_id: str) -> None:
    """Forget a run's results and run state so it is computed again (``visbpp run --force``);
    the caller holds the run's lock. The token cache stays."""
    _, res, st = _dirs(cache_dir)
    for d in (os.path.join(res, run_id), os.path.join(st, run_id)):
        if os.path.isdir(d):
            shutil.rmtree(d)


# --------------------------------------------------------------------------- pins


def pins_path(cache_dir: str | None = None) -> str:
    return os.path.join(default_cache_dir(cache_dir), PINS_FILE)


def read_pins(cache_dir: str | None = None) -> dict[str, str]:
    """model id -> pinned run id ({} without pins; a damaged file is ignored with a warning)."""
    path = pins_path(cache_dir)
    try:
        with open(path) as f:
            pins = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        warnings.warn(f"{path}: ignored unreadable pins ({type(e).__name__}); `visbpp runs pin` rewrites it", stacklevel=2)
        return {}
    if not isinstance(pins, dict):
        return {}
    return {str(k): str(v) for k, v in pins.items() if isinstance(v, str)}


def _write_pins(pins: dict[str, str], cache_dir: str | None) -> None:
    try:
        atomic_write_text(pins_path(cache_dir), json.dumps(dict(sorted(pins.items())), indent=1))
    except OSError as e:
        raise OutputError(f"{pins_path(cache_dir)}: cannot write the pins ({e.strerror or e})") from None


def pin(model_id: str, run_id: str, cache_dir: str | None = None) -> dict:
    """Pin ``model_id`` to the complete run ``run_id`` (or an id prefix; it must hold the model); its entry."""
    try:
        run_id = resolve_id(run_id, cache_dir)
    except RunError as e:
        raise RunError(f"{e}; nothing pinned") from None
    entries = [e for e in stored_measurements(cache_dir) if e["run_id"] == run_id]
    if not entries:
        raise RunError(_unknown(run_id, cache_dir) + " or it is not complete; nothing pinned")
    hit = [e for e in entries if e["model_id"] == model_id]
    if not hit:
        have = ", ".join(sorted(e["model_id"] for e in entries))
        raise RunError(f"run {run_id} has no measurement of {model_id!r} (it holds: {have}); nothing pinned")
    _write_pins({**read_pins(cache_dir), model_id: run_id}, cache_dir)
    return hit[0]


def unpin(model_id: str, cache_dir: str | None = None) -> bool:
    """Remove the pin of ``model_id``; False when there was none."""
    pins = read_pins(cache_dir)
    if model_id not in pins:
        return False
    del pins[model_id]
    _write_pins(pins, cache_dir)
    return True


# --------------------------------------------------------------------------- selection


def stored_measurements(cache_dir: str | None = None, preprocess: str | None = None) -> list[dict]:
    """Every usable measurement (one per model and complete run) of the store."""

    return [e for e in read_measurements(cache_dir) if preprocess is None or e["preprocess"] == preprocess]


def basis(entry: dict) -> tuple:
    """What a measurement is an average over: (preprocessing, image set, image count)."""

    return (entry.get("preprocess") or DEFAULT_PREPROCESSING, image_set(entry.get("subset")), entry.get("n_images"))


def numerics(entry: dict) -> str:
    """How a measurement was computed: ``fp32`` (the reference: TF32 off), ``fp32+tf32`` or ``bf16``."""
    dtype = str(entry.get("dtype") or "fp32")
    return f"{dtype}+tf32" if dtype == "fp32" and entry.get("tf32") else dtype


def _reference_rank(entry: dict) -> int:
    """2 for the fp32 reference (TF32 off), 1 for fp32 with TF32, 0 for bf16."""
    return {"fp32": 2, "fp32+tf32": 1}.get(numerics(entry), 0)


def _domain(entry: dict) -> str:
    return MICRO_FAMILY if entry.get("family") == MICRO_FAMILY or str(entry.get("model_id", "")).startswith("micro-") \
        else "other"


def _averaged_orders(entry: dict) -> int:
    """How many scoring orders a measurement's BPP averages (0: a model without an order axis)."""
    try:
        return max(1, parse_order(entry["order"]).permutations) if entry.get("order") else 0
    except ConfigError:
        return 0


def _best(entries: list[dict]) -> dict:
    return max(entries, key=lambda e: (_reference_rank(e), _averaged_orders(e), e["n_images"], e["finished_at"],
                                       e["run_id"]))


def _used(e: dict) -> str:
    order = f", order {e['order']}" if e.get("order") else ""
    return (f"run {e['run_id']} (n={e['n_images']}, {numerics(e)}, {e['preprocess']}{order}, "
            f"{e['finished_at'] or 'no date'})")


@dataclass
class Selection:
    entries: list[dict] = field(default_factory=list)   # one per model, sorted by model id
    notes: list[str] = field(default_factory=list)      # all notes (warnings included)
    warnings: list[str] = field(default_factory=list)   # a mix of image sets, a pin that cannot be used


def select_measured(cache_dir: str | None = None, preprocess: str | None = None) -> Selection:
    """The measurement of each model that the analysis uses (the rule of the module doc)."""
    alls = stored_measurements(cache_dir, preprocess)
    pins = read_pins(cache_dir) if alls else {}
    by_model: dict[str, list[dict]] = {}
    for e in alls:
        by_model.setdefault(e["model_id"], []).append(e)
    sel = Selection()
    chosen: dict[str, dict] = {}
    for mid, pid in pins.items():
        hit = [e for e in by_model.get(mid, []) if e["run_id"] == pid]
        if hit:
            chosen[mid] = {**hit[0], "selected_by": "pin"}
        elif mid in by_model:
            sel.warnings.append(f"{mid}: pinned run {pid} is not in the store (or not of this preprocessing); "
                                f"using the default rule (`visbpp runs unpin {mid}`)")
    domains: dict[str, list[str]] = {}
    for mid, es in by_model.items():
        if mid not in chosen:
            domains.setdefault(_domain(es[0]), []).append(mid)
    for _dom, mids in sorted(domains.items()):
        score: dict[tuple, list] = {}
        for mid in mids:
            for b in {basis(e) for e in by_model[mid]}:
                on = [e for e in by_model[mid] if basis(e) == b]
                s = score.setdefault(b, [0, 0, ""])
                s[0] += 1
                s[1] += any(_reference_rank(e) == 2 for e in on)
                s[2] = max(s[2], *(e["finished_at"] for e in on))
        # most models, most fp32 references, most images, the default protocol, the newest
        common = max(score, key=lambda b: (score[b][0], score[b][1], b[2] or 0, b[0] == DEFAULT_PREPROCESSING,
                                           score[b][2], str(b)))
        for mid in sorted(mids):
            on = [e for e in by_model[mid] if basis(e) == common]
            if on:
                chosen[mid] = {**_best(on), "selected_by": "rule"}
            else:
                chosen[mid] = {**_best(by_model[mid]), "selected_by": "rule (own best run)"}
        odd = [m for m in sorted(mids) if basis(chosen[m]) != common]
        if odd:
            sel.warnings.append(
                f"not measured on the common image set ({common[0]} preprocessing, {common[1] or 'unstated images'}, "
                f"n={common[2]}): " + ", ".join(f"{m} (n={chosen[m]['n_images']}, {basis(chosen[m])[1] or '?'})"
                                                   for m in odd)
                + "; measure them on the same images or pin runs (`visbpp runs pin MODEL RUN`)")
    single: dict[str, list[str]] = {}   # run id -> models with only that run
    for mid in sorted(chosen):
        n_runs, c = len(by_model.get(mid, [])), chosen[mid]
        if n_runs > 1:
            sel.notes.append(f"{mid}: {n_runs} runs in the store; using {_used(c)}, by {c['selected_by']}")
        else:
            single.setdefault(c["run_id"], []).append(mid)
    for mids in single.values():
        sel.notes.append(f"{', '.join(mids)}: using {_used(chosen[mids[0]])}, the only run of "
                         f"{'this model' if len(mids) == 1 else 'these models'}")
    sel.entries = [chosen[m] for m in sorted(chosen)]
    sel.notes = sel.warnings + sel.notes
    return sel


def measured_results(cache_dir: str | None = None, preprocess: str | None = None,
                     notes: list[str] | None = None) -> list[dict]:
    """The measurement per model_id from the results store that the analysis uses: the one
    selection rule of :func:`select_measured` (pins, then the largest common image set, fp32 over
    bf16, newest last). Its notes are appended to ``notes`` when given."""
    sel = select_measured(cache_dir, preprocess)
    if notes is not None:
        notes.extend(sel.notes)
    return sel.entries
