"""The merged table the analysis and ``visbpp export`` work on.

Rows come from the registry (published FID/rFID/BPP with their sources), optionally merged
with measured results (``visbpp.core.store.results.measured_results()``). Model sets:

* ``published``: the 14 rows of the published table, with the table's BPP (reproduces the paper);
  measured BPPs, when given, are carried in ``measured_bpp`` but not fitted.
* ``all``: every registry model with a measured BPP, plus the published rows; ``bpp`` is the
  measured value where there is one, else the table's (``bpp_source`` says which). The micro
  zoo is never part of it: its quality figure is micro-FID, not FID.
* ``micro``: the micro zoo alone (micro-FID against BPP; the registry's held-out BPP, or the
  measured one where there is one).

Groups (the fixed tokenizer setting a per-group fit is made over): an explicit ``group`` wins,
else family + resolution when the family has several resolutions in the data, else the family.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from visbpp.core.files import atomic_write_text
from visbpp.core.registry import catalog
from visbpp.core.registry.cards import PUBLISHED_TABLE
from visbpp.core.registry.catalog import MICRO_FAMILY, ModelCard, Published

MODEL_SETS = ("published", "all", "micro")
REQUIRED_COLUMNS = ("family", "size", "resolution", "fid", "rfid", "bpp")
NUMERIC_COLUMNS = ("resolution", "fid", "rfid", "bpp")

# Column order of the merged table (and of the exported CSV).
TABLE_COLUMNS = (
    "model_id", "family", "size", "resolution", "group", "fid", "rfid", "fid_metric", "bpp", "bpp_source",
    "reference_bpp", "measured_bpp", "measured_bpp_ci_low", "measured_bpp_ci_high", "measured_n_images",
    "measured_run_id", "params", "tokens_per_image", "tokenizer_id", "fid_source", "fid_protocol",
    "fid_provenance", "fid_eval_resolution", "rfid_source", "in_published_table",
    "bpp_preprocess", "bpp_image_set", "bpp_n_images", "measured_preprocess", "compare", "fid_choice",
    "fid_guidance", "bpp_provenance", "base_model",
)

# Which published FID a row carries (``analyze --fid``): the card's primary FID (the published table's
# for its rows: today's behaviour), the released checkpoint's own README/docs FID, or a FID without guidance.
FID_SOURCES = ("paper", "readme", "noguidance")

BPP_PUBLISHED = "published table"
BPP_REFERENCE = "registry reference"  # a card's own reference BPP (e.g. the micro zoo's held-out BPP)
BPP_MEASURED = "measured"
# What the published table's BPPs were measured on (the paper's own pipeline, core/engine/preprocessing.py "paper").
PUBLISHED_PREPROCESS = "paper"
from visbpp.core.errors import DataError  # noqa: E402
from visbpp.core.store.runs import (  # noqa: E402
    IMAGENET_VAL_ALL,
    IMAGENET_VAL_N,
    measured_results,  # noqa: E402
)
from visbpp.core.store.runs import basis as measurement_basis  # noqa: E402
from visbpp.core.units import MAX_BPP  # noqa: E402


class TableError(DataError):
    """Bad input table; the message names the problem and the column/row (one line)."""


# ---------------------------------------------------------------------------------------------
# measured results

def load_measured(cache_dir: str | None = None, preprocess: str | None = None,
                  notes: list[str] | None = None) -> list[dict]:
    """Measured results from the results store as the one selection rule picks them (only runs of
    protocol ``preprocess`` when given; the rule's notes join ``notes``)."""
    return list(measured_results(cache_dir, preprocess=preprocess, notes=notes))


# ---------------------------------------------------------------------------------------------
# provenance

def eval_resolution(pub: Published | None) -> int | None:
    """Resolution an FID was evaluated at, as its card states it (``Published.eval_resolution``), else None."""
    return None if pub is None else pub.eval_resolution


def fid_provenance(pub: Published | None) -> str:
    """The FID protocol compared across the rows of a fit.

    Rows of the published table share its provenance (the table is the paper's protocol);
    other FIDs are identified by their protocol (guidance, sampling, evaluation), or by their
    source when no protocol is recorded."""
    if pub is None:
        return ""
    if pub.source == PUBLISHED_TABLE:
        return PUBLISHED_TABLE
    return pub.protocol or pub.source


def choose_fid(card: ModelCard, fid_source: str = "paper") -> Published | None:
    """The card's FID of ``fid_source`` (see :data:`FID_SOURCES`), None when it publishes none.

    ``readme``: the first of the card's FIDs whose ``origin`` is "readme"; ``noguidance``: the first
    (metric FID) whose ``guidance`` is "none"."""
    if fid_source not in FID_SOURCES:
        raise TableError(f"unknown FID source {fid_source!r}; choose one of: {', '.join(FID_SOURCES)}")
    if fid_source == "paper":
        return card.fid
    pubs = [p for p in (card.fid, *card.alt_fid) if p is not None]
    if fid_source == "readme":
        return next((p for p in pubs if p.origin == "readme"), None)
    return next((p for p in pubs if p.guidance == "none" and p.metric == "FID"), None)


def _rfid_of(card: ModelCard) -> Published | None:
    if card.rfid is not None:
        return card.rfid
    try:
        tok = catalog.get_tokenizer_card(card.tokenizer_id)
    except catalog.UnknownModelError:
        return None
    for res, pub in tok.rfid:
        if res == card.resolution:
            return pub
    return None


# ---------------------------------------------------------------------------------------------
# the merged table

def _finite(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _index_measured(measured: Iterable[dict] | None) -> tuple[dict[str, dict], list[str]]:
    """Measured dicts by registry card id; ids that name no card are returned separately."""
    by_id: dict[str, dict] = {}
    unknown: list[str] = []
    for m in measured or ():
        mid = str(m.get("model_id", ""))
        try:
            card = catalog.get_card(mid)
        except catalog.UnknownModelError:
            unknown.append(mid)
            continue
        if _finite(m.get("bpp")) is None:
            continue
        by_id[card.id] = m
    return by_id, unknown


def merged_table(measured: list[dict] | None = None, model_set: str = "published",
                 fid_source: str = "paper") -> pd.DataFrame:
    """The registry's rows for ``model_set`` merged with ``measured`` results (see module doc); the
    ``fid`` column holds each card's FID of ``fid_source`` (:func:`choose_fid`; empty where none)."""
    if model_set not in MODEL_SETS:
        raise TableError(f"unknown model set {model_set!r}; choose one of: {', '.join(MODEL_SETS)}")
    meas, _unknown = _index_measured(measured)
    if model_set == MICRO_FAMILY:
        cards = list(catalog.model_cards(MICRO_FAMILY))
    else:
        cards = [c for c in catalog.model_cards()
                 if c.in_published_table or (model_set == "all" and c.id in meas and c.family != MICRO_FAMILY)]
    rows = []
    for c in cards:
        m = meas.get(c.id)
        measured_bpp = _finite(m.get("bpp")) if m else None
        if model_set != "published" and measured_bpp is not None:
            bpp, bpp_source = measured_bpp, BPP_MEASURED
            basis = measurement_basis(m)
        else:
            bpp = c.reference_bpp
            bpp_source = "" if bpp is None else (BPP_PUBLISHED if c.in_published_table else BPP_REFERENCE)
            basis = ((PUBLISHED_PREPROCESS, IMAGENET_VAL_ALL, IMAGENET_VAL_N) if bpp_source == BPP_PUBLISHED
                     else ("", "", None))
        rfid = _rfid_of(c)
        fid = c.fid if model_set == MICRO_FAMILY else choose_fid(c, fid_source)
        prov = c.reference_bpp_provenance if bpp_source == BPP_PUBLISHED else None
        rows.append({
            "model_id": c.id,
            "family": c.family_label,
            "size": c.size,
            "resolution": c.resolution,
            "group": catalog.fit_group(c, cards),
            "fid": fid.value if fid else None,
            "rfid": rfid.value if rfid else None,
            "fid_metric": fid.metric if fid else "FID",
            "bpp": bpp,
            "bpp_source": bpp_source,
            "reference_bpp": c.reference_bpp,
            "measured_bpp": measured_bpp,
            "measured_bpp_ci_low": _finite(m.get("bpp_ci_low")) if m else None,
            "measured_bpp_ci_high": _finite(m.get("bpp_ci_high")) if m else None,
            "measured_n_images": m.get("n_images") if m else None,
            "measured_run_id": m.get("run_id") if m else None,
            "params": c.params,
            "tokens_per_image": c.tokens_per_image,
            "tokenizer_id": c.tokenizer_id,
            "fid_source": fid.source if fid else "",
            "fid_protocol": fid.protocol if fid else "",
            "fid_provenance": fid_provenance(fid),
            "fid_eval_resolution": eval_resolution(fid),
            "rfid_source": rfid.source if rfid else "",
            "in_published_table": c.in_published_table,
            "bpp_preprocess": basis[0], "bpp_image_set": basis[1], "bpp_n_images": basis[2],
            "measured_preprocess": (m.get("preprocess") or "official") if m else "",
            "compare": "; ".join(c.compare),
            "fid_choice": "paper" if model_set == MICRO_FAMILY else fid_source,
            "fid_guidance": fid.guidance if fid else "",
            "bpp_provenance": prov.note if prov else "",
            "base_model": c.base_model or "",
        })
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    for col in ("fid", "rfid", "bpp", "reference_bpp", "measured_bpp", "measured_bpp_ci_low",
                "measured_bpp_ci_high"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["fid_eval_resolution"] = df["fid_eval_resolution"].astype("Int64")
    df["measured_n_images"] = df["measured_n_images"].astype("Int64")
    df["bpp_n_images"] = pd.to_numeric(df["bpp_n_images"], errors="coerce").astype("Int64")
    return df


def one_metric(df: pd.DataFrame, metric: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The rows of one quality metric (``fid_metric``: FID or micro-FID; no column or an empty cell:
    FID), never two in one fit: ``metric``, else FID when present, else the one the table has.
    Returns the rows and a note naming the rows of the other metrics left out."""
    if metric is not None and metric not in catalog.METRICS:
        raise TableError(f"--metric {metric!r}: expected one of {', '.join(catalog.METRICS)}")
    if "fid_metric" not in df.columns:
        if metric not in (None, "FID"):
            raise TableError(f"--metric {metric}: the table has no fid_metric column (all its rows are FID)")
        return df, []
    vals = [("FID" if v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip() else str(v).strip())
            for v in df["fid_metric"]]
    bad = sorted(set(vals) - set(catalog.METRICS))
    if bad:
        raise TableError(f"column 'fid_metric': {bad[0]!r} is not a metric (expected {', '.join(catalog.METRICS)})")
    present = list(dict.fromkeys(vals))
    chosen = metric or ("FID" if "FID" in present else present[0])
    if chosen not in present:
        raise TableError(f"--metric {chosen}: no row of the table has fid_metric {chosen} (it has: {', '.join(present)})")
    keep = pd.Series([v == chosen for v in vals], index=df.index)
    notes = []
    for other in present:
        if other != chosen:
            names = [_label_of(r) or f"row {i + 1}" for i, (_, r) in enumerate(df.iterrows()) if vals[i] == other]
            notes.append(f"left out of the fits: {len(names)} {other} row(s) ({', '.join(names)}): {other} is another "
                         f"quality metric than {chosen} and never fitted with it (--metric {other} fits them)")
    out = df[keep].reset_index(drop=True).copy()
    out["fid_metric"] = chosen
    return out, notes


def bpp_basis(df: pd.DataFrame) -> pd.Series | None:
    """Per row, what its BPP was measured on: "<preprocessing> preprocessing, <images>, <n> images"
    ("" when unknown: a registry reference or a table without the columns); None without the columns."""
    if "bpp_preprocess" not in df.columns:
        return None
    out = []
    for pp, imgs, n in zip(df["bpp_preprocess"], df.get("bpp_image_set", [None] * len(df)),
                           df.get("bpp_n_images", [None] * len(df))):
        pp = "" if pd.isna(pp) else str(pp).strip()
        imgs = "" if imgs is None or pd.isna(imgs) else str(imgs).strip()
        n = None if n is None or pd.isna(n) or str(n).strip() == "" else int(float(n))
        out.append(f"{pp} preprocessing on {imgs or 'unstated images'} ({n if n is not None else '?'} scored)" if pp else "")
    return pd.Series(out, index=df.index)


def fit_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows of a merged table that can enter the fits (FID, rFID and BPP all present).

    Returns the rows and one note per model left out (registry models lacking a value)."""
    ok = df[["fid", "rfid", "bpp"]].notna().all(axis=1)
    notes = []
    choice = df["fid_choice"].iloc[0] if "fid_choice" in df.columns and len(df) else "paper"
    no_fid = []
    for _, r in df[~ok].iterrows():
        missing = [c for c in ("fid", "rfid", "bpp") if pd.isna(r[c])]
        name = r.get("model_id", r["family"])
        if choice != "paper" and missing == ["fid"]:
            no_fid.append(str(name))
            continue
        notes.append(f"{name}: left out of the fits (no {', '.join(missing)})")
    if no_fid:
        notes.append(f"left out of the fits, no FID of source {choice!r} published: {', '.join(no_fid)}")
    return df[ok].reset_index(drop=True), notes


# ---------------------------------------------------------------------------------------------
# user tables: loading, validation, groups

def _row_name(df: pd.DataFrame, i: int, line_offset: int | None) -> str:
    where = f"row {i + 1}"
    if line_offset is not None:
        where += f" (line {i + line_offset} of the file)"
    label = _label_of(df.iloc[i])
    return f"{where}, {label}" if label else where


def _label_of(row: pd.Series) -> str:
    mid = row.get("model_id")
    if isinstance(mid, str) and mid.strip():
        return mid.strip()
    fam, size = row.get("family"), row.get("size")
    parts = [str(x).strip() for x in (fam, size) if isinstance(x, str) and x.strip()]
    return " ".join(parts)


def validate(df: pd.DataFrame, *, line_offset: int | None = None) -> pd.DataFrame:
    """Check a table for the analysis and return a clean copy (numeric columns as float64,
    resolution as int, a ``label`` column, and a ``group`` column filled by :func:`assign_groups`).

    ``line_offset`` maps data row i (0-based) to a file line (i + line_offset) in messages.
    """
    if df is None or len(df.columns) == 0:
        raise TableError("the table is empty: no header and no rows")
    cols = {str(c).strip(): c for c in df.columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in cols]
    if missing:
        raise TableError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)}; "
            f"the table needs columns {', '.join(REQUIRED_COLUMNS)} (optional: group, model_id)"
        )
    df = df.rename(columns={v: k for k, v in cols.items()}).reset_index(drop=True).copy()
    if len(df) == 0:
        raise TableError("the table has a header but no rows")
    for col in ("family", "size"):
        for i, v in enumerate(df[col]):
            if v is None or (isinstance(v, float) and math.isnan(v)) or not str(v).strip():
                raise TableError(f"column {col!r}, {_row_name(df, i, line_offset)}: missing value")
        df[col] = df[col].astype(str).str.strip()
    for col in NUMERIC_COLUMNS:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce")
        for i, (r, v) in enumerate(zip(raw, num)):
            if pd.isna(v):
                if r is None or (isinstance(r, float) and math.isnan(r)) or (isinstance(r, str) and not r.strip()):
                    raise TableError(f"column {col!r}, {_row_name(df, i, line_offset)}: missing value (NaN)")
                if isinstance(r, str) and r.strip().lower() in ("nan", "na", "n/a", "none", "null"):
                    raise TableError(f"column {col!r}, {_row_name(df, i, line_offset)}: missing value ({r.strip()!r})")
                raise TableError(f"column {col!r}, {_row_name(df, i, line_offset)}: {r!r} is not a number")
            if not math.isfinite(float(v)):
                raise TableError(f"column {col!r}, {_row_name(df, i, line_offset)}: {r!r} is not a finite number")
        df[col] = num.astype("float64")
    for i, v in enumerate(df["resolution"]):
        if v <= 0 or v != int(v):
            raise TableError(f"column 'resolution', {_row_name(df, i, line_offset)}: {v:g} is not a positive whole number of pixels")
    df["resolution"] = df["resolution"].astype(int)
    for i, v in enumerate(df["bpp"]):
        if v <= 0:
            raise TableError(f"column 'bpp', {_row_name(df, i, line_offset)}: {v:g} is not positive")
        if v > MAX_BPP:
            raise TableError(f"column 'bpp', {_row_name(df, i, line_offset)}: {v:g} is not a plausible BPP "
                             f"(bits per subpixel; raw 8-bit RGB is 8): wrong column or unit?")
    for col in ("fid", "rfid"):
        for i, v in enumerate(df[col]):
            if v < 0:
                raise TableError(f"column {col!r}, {_row_name(df, i, line_offset)}: {v:g} is negative "
                                 f"(a Frechet distance is >= 0)")
    if len(df) < 3:
        raise TableError(
            f"only {len(df)} row{'s' if len(df) > 1 else ''} ({', '.join(_label_of(df.iloc[i]) for i in range(len(df)))}): "
            "a fit needs at least 3 models (4 for FID ~ bpp + rfid)"
        )
    df["label"] = _unique_labels(df)
    df["group"] = assign_groups(df)
    return df


def _unique_labels(df: pd.DataFrame) -> list[str]:
    """A label per row (model_id, else family + size), made unique with the resolution, then
    the row number."""
    labels = [_label_of(df.iloc[i]) or f"row {i + 1}" for i in range(len(df))]
    counts = pd.Series(labels).value_counts()
    labels = [f"{lab} @{int(r)}" if counts[lab] > 1 else lab for lab, r in zip(labels, df["resolution"])]
    counts = pd.Series(labels).value_counts()
    return [f"{lab} (row {i + 1})" if counts[lab] > 1 else lab for i, lab in enumerate(labels)]


def assign_groups(df: pd.DataFrame) -> list[str]:
    """Group per row: an explicit non-empty ``group`` wins, else family + resolution when the
    family has several resolutions among the rows without explicit group, else the family."""
    explicit = [None] * len(df)
    if "group" in df.columns:
        explicit = [str(g).strip() if isinstance(g, str) and str(g).strip() else None for g in df["group"]]
    res_by_family: dict[str, set[int]] = {}
    for e, fam, res in zip(explicit, df["family"], df["resolution"]):
        if e is None:
            res_by_family.setdefault(fam, set()).add(int(res))
    out = []
    for e, fam, res in zip(explicit, df["family"], df["resolution"]):
        if e is not None:
            out.append(e)
        elif len(res_by_family[fam]) > 1:
            out.append(f"{fam}-{int(res)}")
        else:
            out.append(fam)
    return out


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a user CSV (:class:`TableError` naming the problem)."""
    p = Path(path)
    if not p.exists():
        raise TableError(f"{p}: no such file")
    if p.is_dir():
        raise TableError(f"{p}: is a directory, not a CSV file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise TableError(f"{p}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise TableError(f"{p}: cannot read ({e.strerror})") from None
    if not text.strip():
        raise TableError(f"{p}: the file is empty")
    rows = list(csv.reader(io.StringIO(text)))
    width = len(rows[0])
    for sep, name in ((";", "semicolon"), ("\t", "tab")):
        if width == 1 and sep in rows[0][0]:
            raise TableError(f"{p}: the header {rows[0][0]!r} is one column: the file looks {name}-separated; "
                             f"visbpp reads comma-separated files (family,size,resolution,fid,rfid,bpp)")
    for i, row in enumerate(rows[1:], start=2):
        if row and len(row) != width:  # pandas would shift the columns of such a row silently
            raise TableError(f"{p}: line {i} has {len(row)} fields, the header has {width}")
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False)
    except (pd.errors.ParserError, csv.Error) as e:
        msg = " ".join(str(e).split())
        raise TableError(f"{p}: not a valid CSV ({msg})") from None
    df = df.replace({"": None})
    try:
        return validate(df, line_offset=2)
    except TableError as e:
        raise TableError(f"{p}: {e}") from None


# ---------------------------------------------------------------------------------------------
# export

def write_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` as CSV atomically (temp file in the same folder, then rename), with the
    permissions the umask gives a new file."""
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise TableError(f"{p}: folder {folder} does not exist")
    buf = io.StringIO(newline="")
    df.to_csv(buf, index=False)  # floats at full precision (repr)
    atomic_write_text(p, buf.getvalue())
    return p
