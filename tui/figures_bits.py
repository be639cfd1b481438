"""Figures of ``visbpp inspect --plot DIR`` (matplotlib, the optional plot extra).

Per model: the mean bit map (heatmap with a colour bar in bits) for grid layouts, bars of the
per-scale / per-depth / per-sub-token totals, bits vs token position; per-class BPP histogram.
"""

from __future__ import annotations

import re
from pathlib import Path

from .figures import _pyplot, _save


def _stem(kind: str, model_id: str) -> str:
    return f"{kind}_{re.sub(r'[^A-Za-z0-9._-]+', '_', model_id)}"


def write_inspect_figures(reports: list[dict], out: Path) -> list[Path]:
    plt = _pyplot()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for r in reports:
        mid = r["model_id"]
        if r["spatial"] is not None:
            fig, ax = plt.subplots(figsize=(4.2, 3.6))
            im = ax.imshow(r["spatial"], cmap="magma", interpolation="nearest")
            fig.colorbar(im, ax=ax, label="mean bits per token-grid cell")
            ax.set_title(f"{mid}: where the bits go")
            ax.set_xticks([])
            ax.set_yticks([])
            paths += _save(fig, out, _stem("bitmap", mid))
            plt.close(fig)
        if r["by_group"] and len(r["by_group"]) > 1:
            fig, ax = plt.subplots(figsize=(max(3.5, 0.5 * len(r["by_group"]) + 2), 3.2))
            names = list(r["by_group"])
            ax.bar(range(len(names)), [r["by_group"][k] for k in names], color="tab:blue")
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=45 if len(names) > 6 else 0)
            ax.set_ylabel("mean bits per image")
            ax.set_title(mid)
            paths += _save(fig, out, _stem("groups", mid))
            plt.close(fig)
        if r["by_position"]:
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.plot(range(len(r["by_position"])), r["by_position"], lw=0.8)
            ax.set_xlabel("token position")
            ax.set_ylabel("mean bits")
            ax.set_title(f"{mid}: bits vs position")
            paths += _save(fig, out, _stem("position", mid))
            plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for r in reports:
        vals = [c["bpp"] for c in r["per_class"]]
        if vals:
            ax.hist(vals, bins=min(30, max(5, len(vals) // 3)), alpha=0.6, label=r["model_id"])
    ax.set_xlabel("per-class BPP")
    ax.set_ylabel("classes")
    ax.legend(fontsize=7)
    paths += _save(fig, out, "per_class_bpp")
    plt.close(fig)
    return paths
