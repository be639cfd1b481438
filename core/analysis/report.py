"""What the front-ends write: one export table and one analysis document.

``visbpp export`` and the TUI's ``e`` both write :func:`export_frame` (same columns, same rows
for the same results store, pins and model set); ``visbpp analyze --json`` and the TUI's ``j``
both write :func:`analysis_document` (the fits plus the fit set, FID sources, preprocessing,
versions, git hash and the run behind every measured value, and the analyses beyond the straight
line of :func:`beyond_sections`: ``forms``, ``scaling``, ``baseline``, ``pairs``, ``validity``).

Units everywhere: ``bpp`` = bits / (3*H*W) (the published table's), ``bits_per_hw`` = bits / (H*W),
``bits_per_token``, ``bits`` (per image). ``reference_bpp`` is the registry's reference value of a
model (the published table's BPP, or the micro zoo's shipped held-out BPP), shown as "ref BPP".
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from visbpp.core.store.provenance import git_dirty, git_hash, versions
from visbpp.core.store.summary import CI_METHOD, UNITS

# Columns added to the merged table (core/analysis/table.py TABLE_COLUMNS) in the export.
EXTRA_COLUMNS = ("measured_bits_per_hw", "measured_bits_per_token", "measured_dtype", "measured_selected_by")
REFERENCE_BPP_LEGEND = ("reference_bpp (\"ref BPP\"): the registry's reference value, the published table's BPP "
                        "for its 14 models, the shipped held-out BPP of the micro zoo (not a published value)")


def export_frame(measured: Sequence[dict] | None, model_set: str = "all", fid_source: str = "paper") -> pd.DataFrame:
    """The exported table: the merged table of ``model_set``, then the measured models it leaves
    out (the micro zoo's measured rows with their micro-FID, models outside the registry), with
    the measured units and the way each measurement was selected (the same for every front-end)."""
    from visbpp.core.analysis.table import BPP_MEASURED, TABLE_COLUMNS, merged_table
    from visbpp.core.registry import catalog

    ms = list(measured) if measured is not None else None
    df = merged_table(ms, model_set, fid_source)
    have = set(df["model_id"])
    extra = []
    if model_set != "micro":
        micro = merged_table(ms, "micro")
        extra.append(micro[micro["measured_bpp"].notna() & ~micro["model_id"].isin(have)])
    custom = []
    for m in ms or ():
        mid = str(m.get("model_id", ""))
        try:
            catalog.get_card(mid)
        except catalog.UnknownModelError:
            custom.append({"model_id": mid, "family": m.get("family", ""), "resolution": m.get("resolution"),
                           "fid_metric": "FID", "bpp": m.get("bpp"), "bpp_source": BPP_MEASURED,
                           "measured_bpp": m.get("bpp"), "measured_bpp_ci_low": m.get("bpp_ci_low"),
                           "measured_bpp_ci_high": m.get("bpp_ci_high"), "measured_n_images": m.get("n_images"),
                           "measured_run_id": m.get("run_id"), "in_published_table": False,
                           "measured_preprocess": m.get("preprocess", "official")})
    if custom:
        extra.append(pd.DataFrame(custom, columns=list(TABLE_COLUMNS)))
    extra = [e for e in extra if len(e)]
    if extra:
        df = pd.concat([df, *extra], ignore_index=True)
    by_id = {m.get("model_id"): m for m in measured or ()}
    for col, key in zip(EXTRA_COLUMNS, ("bits_per_hw", "bits_per_token", "dtype", "selected_by")):
        vals = []
        for mid, run in zip(df["model_id"], df["measured_run_id"]):
            m = by_id.get(mid)
            vals.append(m.get(key) if m and run is not None and not pd.isna(run) else None)
        df[col] = vals
    from visbpp.core.analysis.baseline import COLUMNS as BASELINE_COLUMNS
    from visbpp.core.analysis.baseline import baselines

    base = baselines(df, measured).by_model()
    for col in BASELINE_COLUMNS:
        df[col] = [base[mid].values()[col] if mid in base else None for mid in df["model_id"]]
    return df[list(TABLE_COLUMNS) + list(EXTRA_COLUMNS) + list(BASELINE_COLUMNS)]


def measured_runs(table: pd.DataFrame, measured: Sequence[dict] | None) -> dict:
    """model id -> the run behind its measured value (run id, n, dtype, preprocessing, how chosen)."""
    by_id = {m.get("model_id"): m for m in measured or ()}
    out = {}
    for mid in table.get("model_id", pd.Series(dtype=object)):
        m = by_id.get(mid)
        if m and m.get("run_id"):
            out[str(mid)] = {"run_id": m["run_id"], "n_images": m.get("n_images"), "dtype": m.get("dtype"),
                             "preprocess": m.get("preprocess"), "selected_by": m.get("selected_by", "")}
    return out


def beyond_sections(result, measured: Sequence[dict] | None = None, cache_dir: str | None = None) -> dict:
    """The analyses beyond the paper's straight line on ``result``'s table, as JSON-ready dicts:
    functional forms, size scaling, the token code's order-0 baseline, shared-tokenizer pairs and
    predictive validity (``visbpp.core.analysis.forms``, ``scaling``, ``baseline``, ``pairs``, ``validity``)."""
    from visbpp.core.analysis.baseline import baselines
    from visbpp.core.analysis.forms import forms
    from visbpp.core.analysis.pairs import shared_tokenizer_pairs
    from visbpp.core.analysis.scaling import scaling
    from visbpp.core.analysis.validity import validity

    t = result.table
    return {"forms": forms(t).to_dict(), "scaling": scaling(t).to_dict(),
            "baseline": baselines(t, [m for m in measured or () if m.get("model_id") in set(t.get("model_id", ()))],
                                  cache_dir).to_dict(),
            "pairs": shared_tokenizer_pairs(t).to_dict(), "validity": validity(t).to_dict()}


def analysis_document(result, *, source: str, model_set: str | None, preprocess: str | None,
                      measured: Sequence[dict] | None = None, sections: dict | None = None) -> dict:
    """``AnalysisResult.to_dict()`` with what a reader needs to trust it (see the module doc);
    ``sections``: :func:`beyond_sections` when the caller has them already."""
    out = result.to_dict()
    t = result.table
    col = (lambda c: list(t[c]) if c in t.columns else [None] * len(t))
    labels = col("label")
    out.update({
        "source": source,
        "fit_set": {"model_set": model_set, "models": [str(x) for x in labels],
                    "bpp_source": {str(lab): (s if isinstance(s, str) else "") for lab, s in zip(labels, col("bpp_source"))}},
        "fid_sources": {str(lab): (s if isinstance(s, str) else "") for lab, s in zip(labels, col("fid_source"))},
        "preprocessing": {"filter": preprocess,
                          "per_model": {str(lab): (p if isinstance(p, str) else "")
                                        for lab, p in zip(labels, col("bpp_preprocess"))}},
        "measured_runs": measured_runs(t, measured),
        "units": UNITS, "ci_method": CI_METHOD, "reference_bpp": REFERENCE_BPP_LEGEND,
        "versions": versions(), "git": {"hash": git_hash(), "dirty": git_dirty()},
    })
    out.update(sections if sections is not None else beyond_sections(result, measured))
    return out
