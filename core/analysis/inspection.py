"""What ``visbpp inspect`` reports about finished runs: breakdowns, per-class BPP, paired comparisons.

A target is a result folder (``--out`` of a run or a results-store folder), a run id in the
results store, or a model id (its measurement in the results store, as ``analyze`` picks it).

:func:`model_report` gives, per model, the ``--json`` schema: ``model_id``, ``run_id``, ``n_images``, ``bpp``,
``bits_mean`` (mean bits per image), ``by_position`` (mean bits per token position, length L),
``spatial`` (mean bit map, h x w nested lists for grid layouts, else None), ``by_group`` (name ->
mean bits), ``per_class`` (``[{label, n, bpp}]``), ``class_info_bits`` (mean bits(null) -
bits(label) when scored with ``--unconditional``, else None), only for models scored in several
orders ``orders`` (the run's ``order``, ``bits`` per order, the ``averaged`` orders, their
``headline_bits`` mean and ``std_bits``, ``raster_bits``), and the token code's rates over the
run's images (``visbpp.core.analysis.baseline``): ``raw_rate_bpp``, ``unigram_bpp``, ``unigram_bpp_mm``,
``ar_share`` (None where the token cache no longer holds the run's tokens; ``baseline_note`` says why). :func:`per_class_table` adds
bootstrap CIs; :func:`paired` compares two models on their common images. Bootstrap resamples are
drawn in blocks (``visbpp.core.store.summary.resample_blocks``), so memory does not grow with the
number of images.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from visbpp.core.analysis import breakdown as BD
from visbpp.core.layout import layout_from_dict
from visbpp.core.store import results as R
from visbpp.core.store import token_store as TS
from visbpp.core.store.summary import percentile_ci, resample_blocks


class InspectError(ValueError):
    """A target that names no finished run or measured model."""


@dataclass(frozen=True)
class Source:
    folder: str        # result folder (per_image.csv, results.json, token_nll/)
    model_id: str
    summary: dict      # the model's entry of results.json
    run_id: str = ""   # the run it belongs to ("" for a folder without a run id)
    chosen_by: str = ""  # for a model target: how the selection rule chose the run ("pin", "rule", ...)


def _doc(folder: str) -> dict | None:
    return R.load_document(os.path.join(folder, "results.json"))


def resolve(target: str, cache_dir: str | None = None) -> list[Source]:
    """The models a target names (see the module docstring), or :class:`InspectError`."""
    folders = [target] if os.path.isdir(target) else []
    if not folders and os.sep not in target:
        store = R.store_dir(target, cache_dir)
        if os.path.isdir(store):
            folders = [store]
    if folders:
        doc = _doc(folders[0])
        if doc is None:
            raise InspectError(f"{target}: no complete results.json there (an unfinished run? rerun it to finish)")
        rid = str(doc.get("run_id", ""))
        return [Source(folders[0], m["model_id"], m, rid) for m in doc["models"]]
    if os.sep in target or (os.altsep and os.altsep in target) or target.startswith("."):
        raise InspectError(f"{target}: no such folder (pass a result folder written by `visbpp run --out`, "
                           f"a run id of `visbpp runs list` or a measured model id)")
    measured = {m["model_id"]: m for m in R.measured_results(cache_dir)}
    mid, known_model = target, False
    if mid not in measured:
        try:
            from visbpp.core.registry.catalog import get_card

            mid, known_model = get_card(target).id, True
        except (KeyError, ValueError):
            pass
    if mid not in measured:
        known = ", ".join(sorted(measured)) or "none yet"
        hint = f"; run `visbpp run --model {mid}` first" if known_model else " (`visbpp models` lists the model ids)"
        raise InspectError(f"{target}: neither a result folder, a run id nor a measured model "
                           f"(measured models: {known}){hint}")
    e = measured[mid]
    folder = os.path.dirname(e["path"])
    doc = _doc(folder)
    return [Source(folder, mid, next(m for m in doc["models"] if m["model_id"] == mid), e["run_id"],
                   e.get("selected_by", ""))]


def other_runs_with_class_info(src: Source, cache_dir: str | None = None) -> list[str]:
    """Run ids of other complete runs of the same model that measured the class information."""
    return sorted({e["run_id"] for e in R.read_measurements(cache_dir)
                   if e["model_id"] == src.model_id and e["run_id"] != src.run_id and e.get("class_info_bits") is not None})


def rows_of(src: Source) -> list[dict]:
    return [r for r in R.read_rows(src.folder) if r["model_id"] == src.model_id]


def per_class_table(rows: list[dict], ci: bool = True) -> list[dict]:
    """Per label: n, BPP (sum bits / sum 3HW) and, with ``ci``, its bootstrap 95% CI over the class's images."""
    by: dict[int, list[dict]] = {}
    for r in rows:
        by.setdefault(int(r["label"]), []).append(r)
    out = []
    for label in sorted(by):
        rs = by[label]
        bits = np.array([r["bits"] for r in rs], dtype=np.float64)
        den = np.array([3.0 * r["pixels"] for r in rs], dtype=np.float64)
        e = {"label": label, "n": len(rs), "bpp": float(bits.sum() / den.sum())}
        if ci:
            e["bpp_ci_low"], e["bpp_ci_high"] = R.bootstrap_ci(bits, den)
        out.append(e)
    return out


def model_report(src: Source, rows: list[dict] | None = None, cache_dir: str | None = None) -> dict:
    """The ``--json`` entry of one model (see the module docstring)."""
    from visbpp.core.analysis.baseline import run_baseline

    rows = rows_of(src) if rows is None else rows
    bits = np.array([r["bits"] for r in rows], dtype=np.float64)
    stored = TS.load(src.folder, src.model_id)
    by_position = spatial = by_group = orders = None
    if stored is not None:
        arr, entry = stored
        layout = layout_from_dict(entry.get("layout"), int(entry["shape"][1]))
        m = BD.mean_breakdown(arr, layout)
        by_position, spatial, by_group = m["by_position"], m["spatial"], m["by_group"]
        if layout.mean_parts:
            orders = order_report({k: by_group[k] for k in layout.part_names},
                                  layout.part_names[:layout.mean_parts], src.summary.get("order"))
    base = run_baseline(src.folder, src.model_id, cache_dir, rows=rows)
    return {"model_id": src.model_id, "run_id": src.run_id, "n_images": len(rows), "bpp": src.summary.get("bpp"),
            "bits_mean": float(bits.mean()) if len(bits) else None, "by_position": by_position,
            "spatial": spatial, "by_group": by_group, "per_class": per_class_table(rows, ci=False),
            "class_info_bits": src.summary.get("class_info_bits"), **({"orders": orders} if orders else {}),
            **base.values(), "baseline_note": base.note}


def order_report(bits: dict[str, float], averaged: tuple[str, ...], order: str | None) -> dict:
    """Mean bits per image per scoring order -> the headline (mean over ``averaged``), its spread, raster beside."""
    head = np.array([bits[k] for k in averaged], dtype=np.float64)
    return {"order": order, "bits": dict(bits), "averaged": list(averaged), "headline_bits": float(head.mean()),
            "std_bits": float(head.std(ddof=1)) if len(head) > 1 else None, "raster_bits": bits.get("raster")}


def sign_test(d: np.ndarray) -> float:
    """Two-sided exact sign test p-value of the differences ``d`` (zeros dropped; 1.0 when none remain)."""
    pos, neg = int((d > 0).sum()), int((d < 0).sum())
    n = pos + neg
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * float(binom.cdf(min(pos, neg), n, 0.5)))   # exact binomial tail, any n


def paired_bpp_cis(bits: np.ndarray, den: np.ndarray, resamples: int = R.BOOTSTRAP_RESAMPLES,
                   seed: int = R.BOOTSTRAP_SEED, level: float = 0.95) -> list[tuple[float | None, float | None]]:
    """Per model (rows of ``bits``, shape (M, n) on the same n images) the percentile bootstrap CI
    of sum(bits)/sum(den), every model resampled with the *same* image indices (paired);
    (None, None) each below ``R.MIN_CI_IMAGES`` images."""
    m, n = bits.shape
    if n < R.MIN_CI_IMAGES:
        return [(None, None)] * m
    stats = np.empty((m, resamples), dtype=np.float64)
    for sl, idx in resample_blocks(n, resamples, seed):   # idx: (block, n), the same draws for every model
        stats[:, sl] = bits[:, idx].sum(-1) / den[idx].sum(-1)
    return [percentile_ci(s, level) for s in stats]


def paired(a: Source, b: Source, resamples: int = R.BOOTSTRAP_RESAMPLES, seed: int = R.BOOTSTRAP_SEED) -> dict:
    """Bits of ``a`` minus bits of ``b`` on their common images: mean, paired bootstrap 95% CI, sign test;
    and each model's BPP on those images with its paired bootstrap CI (the same resamples for both)."""
    ra = {r["image"]: r for r in rows_of(a)}
    rb = {r["image"]: r for r in rows_of(b)}
    common = [im for im in ra if im in rb]
    ba = np.array([ra[im]["bits"] for im in common], dtype=np.float64)
    bb = np.array([rb[im]["bits"] for im in common], dtype=np.float64)
    d = ba - bb
    out = {"a": a.model_id, "b": b.model_id, "n_common": len(common), "mean_bits_diff": None,
           "ci_low": None, "ci_high": None, "a_fewer_bits": int((d < 0).sum()), "b_fewer_bits": int((d > 0).sum()),
           "sign_test_p": sign_test(d), "ci_method": "paired " + R.CI_METHOD, "ci_note": R.ci_note(len(common)),
           "bpp_common": None}
    if len(common):
        lo, hi = R.bootstrap_ci(d, np.ones_like(d), resamples, seed)
        out.update(mean_bits_diff=float(d.mean()), ci_low=lo, ci_high=hi)
        den = np.array([3.0 * ra[im]["pixels"] for im in common], dtype=np.float64)
        cis = paired_bpp_cis(np.stack([ba, bb]), den, resamples, seed)
        out["bpp_common"] = {mid: {"bpp": float(x.sum() / den.sum()), "ci_low": c[0], "ci_high": c[1]}
                             for mid, x, c in ((a.model_id, ba, cis[0]), (b.model_id, bb, cis[1]))}
    return out


def dumps(models: list[dict], pairs: list[dict] | None = None) -> str:
    doc: dict = {"models": models}
    if pairs:
        doc["paired"] = pairs
    return json.dumps(doc, indent=1, allow_nan=False)
