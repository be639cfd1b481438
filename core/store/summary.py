"""Statistics of a run's results: per-image rows, per-model summaries and their bootstrap CIs.

Per-image row (:data:`ROW_FIELDS`): ``model_id, image, label, bits, tokens, pixels, bpp`` where
``pixels = H*W`` of the scored (preprocessed) image and ``bpp = bits / (3*pixels)``.

Per-model summary (:data:`SUMMARY_FIELDS`): ``n_images``, ``sum_bits`` (float64),
``bpp = sum_bits / sum(3*H*W)``, ``bits_per_hw = sum_bits / sum(H*W)``,
``bits_per_token = sum_bits / sum(tokens)``, a bootstrap 95% CI of the BPP over images
(:data:`CI_METHOD`; none below :data:`MIN_CI_IMAGES` images, ``bpp_ci_note`` says why) and the
number of images skipped.

Bootstrap resamples are drawn in blocks (:func:`resample_blocks`): the index arrays of a block
hold at most :data:`BLOCK_ELEMENTS` entries, so memory does not grow with the number of images,
and the resamples are the same as one draw of all of them.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

ROW_FIELDS = ("model_id", "image", "label", "bits", "tokens", "pixels", "bpp")
SUMMARY_FIELDS = ("model_id", "family", "resolution", "n_images", "sum_bits", "bpp", "bits_per_hw",
                  "bits_per_token", "bpp_ci_low", "bpp_ci_high", "bpp_ci_note", "images_skipped", "reference_bpp",
                  "dtype", "preprocess")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
MIN_CI_IMAGES = 10  # below this many images no interval is given (a bootstrap of so few says nothing)
BLOCK_ELEMENTS = 2_000_000  # resample indices per block (16 MB of int64)
CI_METHOD = (f"95% percentile bootstrap over images, {BOOTSTRAP_RESAMPLES} resamples (seed {BOOTSTRAP_SEED}); "
             f"none for fewer than {MIN_CI_IMAGES} images")
UNITS = {"bpp": "bits / (3*H*W)", "bits_per_hw": "bits / (H*W)", "bits_per_token": "bits / token",
         "bits": "bits per image (sum of -log2 p over its tokens)"}


def ci_note(n: int) -> str:
    """Why no interval is given for ``n`` images ("" when one is)."""
    return "" if n >= MIN_CI_IMAGES else f"no CI: {n} image{'s' if n != 1 else ''} (< {MIN_CI_IMAGES})"


def resample_blocks(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                    ) -> Iterator[tuple[slice, np.ndarray]]:
    """The bootstrap resamples of ``n`` items (indices drawn with replacement) in blocks:
    ``(slice of the resamples, (block, n) int64 indices)``, each block at most :data:`BLOCK_ELEMENTS`
    indices; the same indices, in the same order, as one ``(resamples, n)`` draw with ``seed``."""
    rng = np.random.default_rng(seed)
    step = max(1, BLOCK_ELEMENTS // max(1, n))
    for s in range(0, resamples, step):
        e = min(resamples, s + step)
        yield slice(s, e), rng.integers(0, n, size=(e - s, n))


def percentile_ci(stats: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    a = (1 - level) / 2
    lo, hi = np.quantile(stats, [a, 1 - a])
    return float(lo), float(hi)


def bootstrap_ci(bits: np.ndarray, denom: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of sum(bits)/sum(denom), resampling images with replacement;
    (None, None) below :data:`MIN_CI_IMAGES` images."""
    n = len(bits)
    if n < MIN_CI_IMAGES:
        return None, None
    stats = np.empty(resamples, dtype=np.float64)
    for sl, idx in resample_blocks(n, resamples, seed):
        stats[sl] = bits[idx].sum(1) / denom[idx].sum(1)
    return percentile_ci(stats, level)


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
