"""What the AR context buys: a model's BPP beside what its tokens cost without it.

For a measured model, over the images of the run its BPP comes from (the rows of its
``per_image.csv``), with the tokens of those images read from the token cache
(:class:`~visbpp.core.store.token_cache.TokenCache`, the folder the run recorded for its tokenizer):

* ``raw_rate_bpp`` = Σ tokens · log2 V / Σ 3·H·W: the index rate, every token a uniform choice among
  the V codes (V = the registry card's codebook size);
* ``unigram_bpp`` = the order-0 baseline: the bits of the same tokens under their empirical unigram
  distribution over the run's images (plug-in: N·Ĥ with Ĥ = −Σ (c_k/N) log2(c_k/N) over the codes'
  counts c_k, N tokens in all), per subpixel;
* ``unigram_bpp_mm``: the same with the Miller–Madow correction, Ĥ + (m − 1) / (2 N ln 2) bits per
  token (m = codes seen), the less biased estimate of the unigram entropy of the source;
* ``ar_share`` = 1 − bpp / unigram_bpp: the part of the order-0 cost the AR model's context removes.

A model with no measured run (a published row) gets ``raw_rate_bpp`` from its card (tokens per
image, codebook size, resolution) and no baseline. A run whose images are not all in the token cache
any more (cleared, or images changed since) gets none either, with a note: no estimate over a part
of the images is shown as the run's.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from visbpp.core.analysis.regression import json_float
from visbpp.core.units import LN2

COLUMNS = ("raw_rate_bpp", "unigram_bpp", "unigram_bpp_mm", "ar_share")


@dataclass(frozen=True)
class TokenBaseline:
    model_id: str
    bpp: float | None = None
    raw_rate_bpp: float | None = None
    unigram_bpp: float | None = None
    unigram_bpp_mm: float | None = None
    n_images: int | None = None
    n_tokens: int | None = None
    codes_seen: int | None = None
    vocab_size: int | None = None
    run_id: str | None = None
    source: str = ""                 # "token cache" | "registry card" | ""
    note: str = ""

    @property
    def ar_share(self) -> float | None:
        if self.bpp is None or not self.unigram_bpp:
            return None
        return 1.0 - self.bpp / self.unigram_bpp

    def values(self) -> dict:
        """The four columns (:data:`COLUMNS`)."""
        return {"raw_rate_bpp": json_float(self.raw_rate_bpp), "unigram_bpp": json_float(self.unigram_bpp),
                "unigram_bpp_mm": json_float(self.unigram_bpp_mm), "ar_share": json_float(self.ar_share)}

    def to_dict(self) -> dict:
        return {"model_id": self.model_id, "bpp": json_float(self.bpp), **self.values(), "n_images": self.n_images,
                "n_tokens": self.n_tokens, "codes_seen": self.codes_seen, "vocab_size": self.vocab_size,
                "run_id": self.run_id, "source": self.source, "note": self.note}


def unigram_bits(tokens: np.ndarray) -> tuple[float, float, int]:
    """(plug-in bits, Miller–Madow bits, codes seen) of all ``tokens`` under their own unigram distribution."""
    flat = np.asarray(tokens).reshape(-1).astype(np.int64)
    n = flat.size
    counts = np.bincount(flat - flat.min()) if n else np.zeros(0, dtype=np.int64)
    c = counts[counts > 0].astype(np.float64)
    h = float(-(c / n * np.log2(c / n)).sum()) if n else 0.0          # bits per token
    m = int(c.size)
    return n * h, n * (h + (m - 1) / (2.0 * n * LN2)) if n else 0.0, m


class BaselineUnavailable(Exception):
    """Why a run's tokens cannot give a baseline (the message is the note)."""


def _card(model_id: str):
    from visbpp.core.registry import catalog

    try:
        return catalog.get_card(model_id)
    except catalog.UnknownModelError:
        return None


def from_card(model_id: str, bpp: float | None = None) -> TokenBaseline:
    """The raw index rate of a registry model at its resolution (no tokens: no baseline)."""
    c = _card(model_id)
    if c is None:
        return TokenBaseline(model_id, bpp, note="not a registry model: vocabulary size unknown")
    raw = c.tokens_per_image * math.log2(c.codebook_size) / (3.0 * c.resolution ** 2)
    return TokenBaseline(model_id, bpp, raw_rate_bpp=raw, vocab_size=c.codebook_size, source="registry card",
                         note="no measured run: no token baseline")


def _run_tokens(folder: str, doc: dict, model_id: str, rows: list[dict], cache_dir: str | None) -> np.ndarray:
    """The cached tokens of the run's images for ``model_id``'s tokenizer, one row per image, in row order."""
    from visbpp.core.store.results import run_config
    from visbpp.core.store.token_cache import TokenCache, image_key

    cfg = run_config(doc)
    part = (lambda key: cfg.get(key) if isinstance(cfg.get(key), dict) else {})
    tok_key = part("tokenizer_keys").get(model_id)
    folder_key = part("token_cache").get(tok_key) if isinstance(tok_key, str) else None
    root = part("subset").get("data")
    if not isinstance(folder_key, str) or not isinstance(root, str) or not folder_key or not root:
        raise BaselineUnavailable(f"run {doc.get('run_id', folder)} records no token cache folder for {model_id}")
    cache = TokenCache.open_existing(cache_dir, folder_key)
    if cache is None:
        raise BaselineUnavailable(f"token cache folder {folder_key} is gone (cache cleared?); rerun the model "
                                  f"with --force to encode its images again")
    by_path: dict[str, list[str]] = {}
    for k in cache.tokens:
        by_path.setdefault(k.rsplit("|", 2)[0], []).append(k)
    out, missing = [], []
    for r in rows:
        path = os.path.abspath(os.path.join(root, r["image"]))
        key = image_key(path)
        if key not in cache.tokens:
            keys = by_path.get(path, [])
            key = keys[0] if len(keys) == 1 else None   # the file changed since: its one cached version
        if key is None:
            missing.append(r["image"])
        else:
            out.append(cache.tokens[key].reshape(-1).numpy())
    if missing:
        raise BaselineUnavailable(f"{len(missing)} of {len(rows)} images of the run are not in the token cache "
                                  f"(e.g. {missing[0]}): no baseline over part of the images; rerun with --force")
    if len({len(t) for t in out}) > 1:
        raise BaselineUnavailable("cached token counts differ between images")
    return np.stack(out) if out else np.zeros((0, 0), dtype=np.int64)


def run_baseline(folder: str, model_id: str, cache_dir: str | None = None, doc: dict | None = None,
                 rows: list[dict] | None = None) -> TokenBaseline:
    """The baseline of ``model_id`` in the finished run in ``folder`` (a results-store folder or ``--out``)."""
    from visbpp.core.store import results as R

    doc = doc if doc is not None else R.load_document(os.path.join(folder, "results.json"))
    if doc is None:
        return TokenBaseline(model_id, note=f"{folder}: no complete results.json")
    summary = next((m for m in doc.get("models", []) if m.get("model_id") == model_id), {})
    bpp = json_float(summary.get("bpp"))
    card = from_card(model_id, bpp)
    base = replace(card, run_id=doc.get("run_id"), source="", note="")
    if rows is None:
        every, why = R.verified_rows(folder, doc)
        if every is None:
            return replace(base, note=why)
        rows = [r for r in every if r["model_id"] == model_id]
    try:
        toks = _run_tokens(folder, doc, model_id, rows, cache_dir)
    except BaselineUnavailable as e:
        return replace(base, note=str(e))
    subpixels = 3.0 * float(sum(r["pixels"] for r in rows))
    plug, mm, m = unigram_bits(toks)
    raw = base.raw_rate_bpp
    if base.vocab_size is not None:
        if toks.size and int(toks.max()) >= base.vocab_size:
            return replace(base, note=f"cached tokens exceed the card's codebook ({base.vocab_size} codes)")
        raw = toks.size * math.log2(base.vocab_size) / subpixels
    return replace(base, raw_rate_bpp=raw, unigram_bpp=plug / subpixels, unigram_bpp_mm=mm / subpixels,
                   n_images=len(rows), n_tokens=int(toks.size), codes_seen=m, source="token cache",
                   note="" if base.vocab_size is not None else card.note)


_MEMO: dict[tuple, TokenBaseline] = {}


def measured_baseline(entry: dict, cache_dir: str | None = None) -> TokenBaseline:
    """:func:`run_baseline` for a measured entry (``visbpp.core.store.results.measured_results``),
    remembered per run folder, results.json mtime and token-cache listing."""
    mid = str(entry.get("model_id", ""))
    path = entry.get("path")
    if not path:
        return replace(from_card(mid, json_float(entry.get("bpp"))), source="", note="the measurement names no run folder")
    folder = os.path.dirname(str(path))
    try:
        key = (folder, mid, os.stat(path).st_mtime_ns, cache_dir, _token_listing(cache_dir))
    except OSError:
        return TokenBaseline(mid, json_float(entry.get("bpp")), note=f"{path}: unreadable")
    if key not in _MEMO:
        _MEMO[key] = run_baseline(folder, mid, cache_dir)
    return _MEMO[key]


def _token_listing(cache_dir: str | None) -> tuple:
    from visbpp.core.files import default_cache_dir

    root = os.path.join(default_cache_dir(cache_dir), "tokens")
    try:
        return tuple(sorted((d, os.stat(os.path.join(root, d)).st_mtime_ns) for d in os.listdir(root)))
    except OSError:
        return ()


@dataclass(frozen=True)
class BaselineResult:
    models: tuple[TokenBaseline, ...]

    def by_model(self) -> dict[str, TokenBaseline]:
        return {b.model_id: b for b in self.models}

    def to_dict(self) -> dict:
        return {"columns": list(COLUMNS), "ar_share": "1 - bpp / unigram_bpp (plug-in order-0 baseline)",
                "models": [b.to_dict() for b in self.models]}


def baselines(table: pd.DataFrame | None, measured: Sequence[dict] | None, cache_dir: str | None = None) -> BaselineResult:
    """One entry per row of ``table`` (by ``model_id``, else its label) and per measured model not in it:
    from the measured run where there is one, else from the registry card."""
    meas = {str(m.get("model_id")): m for m in measured or ()}
    out: list[TokenBaseline] = []
    seen: set[str] = set()
    if table is not None and len(table):
        ids = table["model_id"] if "model_id" in table.columns else table.get("label", pd.Series(dtype=object))
        bpps = table["bpp"] if "bpp" in table.columns else pd.Series([None] * len(table))
        for mid, bpp in zip(ids, bpps):
            if not isinstance(mid, str) or not mid or mid in seen:
                continue
            seen.add(mid)
            m = meas.get(mid)
            if m is not None and json_float(m.get("bpp")) is not None:
                out.append(measured_baseline(m, cache_dir))
            else:
                out.append(from_card(mid, json_float(bpp)))
    for mid, m in meas.items():
        if mid not in seen and mid:
            out.append(measured_baseline(m, cache_dir))
    return BaselineResult(tuple(out))
