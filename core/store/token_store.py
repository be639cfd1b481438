"""Per-token NLL of every scored image, kept next to the run.

While scoring, each finished batch's per-token NLL (float32 nats, ``(B, L)`` or ``(B, L, K)`` for
layouts with K sub-tokens; with ``--unconditional`` also the NLL under the null class) is written
as one chunk ``<run state>/<model>/nll/<hash of its images>.npz`` (atomic: temporary file, fsync,
rename) *before* the batch's rows enter the run state, so every row the run state knows has its
chunk; a chunk without rows (a kill in between) is rewritten identically when the batch is
rescored. ``meta.json`` beside the chunks keeps the model's token layout and null class.

When the run finishes, :func:`finalize` writes ``token_nll/`` into each result folder (before
``results.json``):

- ``<model slug>.npy``: float32 ``(N, L[, K])``, row i = the i-th ``per_image.csv`` row of that
  model; ``<model slug>.null.npy`` the same under the null class (``--unconditional``);
- ``index.json``: model id -> file names, shape, layout, null class;
- for models scored in several orders (a layout with ``mean_parts``; ``K`` = the orders, raster
  cells along L), the model's summary (which names its ``order``) gets, per order, the mean bits per image and
  BPP (``order_bits``, ``order_bpp``), their standard deviation over the averaged orders and the
  headline's description (:func:`_order_info`);
- ``class_info.csv`` (``--unconditional``): per image bits, bits under the null class, their
  difference and, for VAR, ``paper_expected_bpp = 0.9 bpp(label) + 0.1 bpp(null)`` (the expectation
  of a forward with 10% label dropout).

The final array is filled through a memory map, one chunk at a time, so assembling never holds
more than one chunk in RAM beyond the array. Per-image bits are not computed here (the engine
keeps them: float64 sums of the same fp32 values); each assembled row is checked against them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil

import numpy as np

from visbpp.core.files import atomic_write_text
from visbpp.core.layout import layout_from_dict, layout_to_dict, order_headline, position_nll
from visbpp.core.store.runstate import model_slug
from visbpp.core.store.summary import bootstrap_ci, ci_note
from visbpp.core.units import LN2

NLL_DIR = "token_nll"
PAPER_DROP_RATE = 0.1   # label dropout of the VAR training/evaluation code (cond_drop_rate)


def score_batch(model, tokens, labels, unconditional: bool = False):
    """One batch -> (nll (B, L), parts to store, null parts or None), tensors on the model's device.

    For layouts with sub-tokens the model's ``subtoken_nll`` is used and ``nll`` is its fp32 sum
    over sub-tokens, i.e. exactly the model's ``token_nll``; for layouts of scoring orders its
    ``order_nll`` (B, L, orders) and ``nll`` is the float64 headline (``core/layout.order_headline``).
    """
    import torch

    layout = getattr(model, "token_layout", None)

    def one(lab):
        if layout is not None and layout.mean_parts:
            p = model.order_nll(tokens, lab).float()
            return order_headline(p, layout.mean_parts), p
        if layout is not None and layout.parts > 1:
            p = model.subtoken_nll(tokens, lab).float()
            return p.sum(-1), p
        n = model.token_nll(tokens, lab).float()
        return n, n

    nll, parts = one(labels)
    null = None
    nc = getattr(model, "null_class", None)
    if unconditional and nc is not None:
        from visbpp.core.labels import scoring_null_class

        with scoring_null_class():  # the one place a null label is scored, on request
            null = one(torch.full_like(labels, int(nc)))[1]
    return nll, parts, null


def paper_expected_bpp(bpp, bpp_null):
    """Expected BPP of a forward that replaces each label by the null class with probability 0.1."""
    return (1 - PAPER_DROP_RATE) * bpp + PAPER_DROP_RATE * bpp_null


def _atomic_save(path: str, write) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ChunkWriter:
    """Writes one chunk per scored batch of one model into the run state."""

    def __init__(self, state_folder: str, model_id: str, model, unconditional: bool):
        self.dir = os.path.join(state_folder, model_slug(model_id), "nll")
        os.makedirs(self.dir, exist_ok=True)
        layout = getattr(model, "token_layout", None)
        meta = {"layout": layout_to_dict(layout) if layout is not None else None,
                "null_class": getattr(model, "null_class", None), "unconditional": bool(unconditional)}
        atomic_write_text(os.path.join(self.dir, "meta.json"), json.dumps(meta))

    def put(self, images: list[str], nll: np.ndarray, null: np.ndarray | None = None) -> None:
        name = hashlib.sha256("\n".join(images).encode("utf-8", "surrogateescape")).hexdigest()[:24] + ".npz"
        arrays = {"images": np.array(images), "nll": np.ascontiguousarray(nll, dtype=np.float32)}
        if null is not None:
            arrays["null"] = np.ascontiguousarray(null, dtype=np.float32)
        _atomic_save(os.path.join(self.dir, name), lambda f: np.savez(f, **arrays))


def _chunk_index(folder: str) -> dict[str, tuple[str, int]]:
    """image -> (chunk path, row) over the complete chunks of ``folder``."""
    out: dict[str, tuple[str, int]] = {}
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        if name.endswith(".npz"):
            p = os.path.join(folder, name)
            try:
                with np.load(p) as z:
                    imgs = z["images"].tolist()
            except (OSError, ValueError, KeyError):
                continue
            for i, im in enumerate(imgs):
                out[im] = (p, i)
    return out


def _write_model(src: str, rows: list[dict], dest: str, slug: str, layout) -> dict | None:
    """Assemble one model's arrays (``layout``: their TokenLayout) into ``dest``; per-image null bits or
    None (no null), False if incomplete."""
    index = _chunk_index(src)
    if any(r["image"] not in index for r in rows):
        return False
    by_chunk: dict[str, list[tuple[int, int]]] = {}
    for k, r in enumerate(rows):
        p, i = index[r["image"]]
        by_chunk.setdefault(p, []).append((k, i))
    with np.load(next(iter(by_chunk))) as z:
        shape, has_null = z["nll"].shape[1:], "null" in z.files
    names = [("nll", f"{slug}.npy")] + ([("null", f"{slug}.null.npy")] if has_null else [])
    maps = {key: np.lib.format.open_memmap(os.path.join(dest, fn + ".tmp"), mode="w+", dtype=np.float32,
                                           shape=(len(rows), *shape)) for key, fn in names}
    bits_null = np.zeros(len(rows)) if has_null else None
    for p, pairs in by_chunk.items():
        with np.load(p) as z:
            chunk = {key: z[key] for key, _ in names}
        for k, i in pairs:
            want = rows[k]["bits"]
            got = float(position_nll(chunk["nll"][i:i + 1], layout).astype(np.float64).sum() / LN2)
            if abs(got - want) > 1e-9 * max(1.0, abs(want)):
                raise RuntimeError(f"per-token NLL of {rows[k]['image']} ({p}) sums to {got} bits, the run state "
                                   f"has {want}: the run state folder is inconsistent; delete it and rerun")
            for key, _ in names:
                maps[key][k] = chunk[key][i]
            if has_null:
                bits_null[k] = float(position_nll(chunk["null"][i:i + 1], layout).astype(np.float64).sum() / LN2)
        del chunk
    for key, fn in names:
        maps[key].flush()
        del maps[key]
        with open(os.path.join(dest, fn + ".tmp"), "rb+") as f:
            os.fsync(f.fileno())
        os.replace(os.path.join(dest, fn + ".tmp"), os.path.join(dest, fn))
    return {"shape": [len(rows), *shape], "file": names[0][1], "null_file": names[1][1] if has_null else None,
            "bits_null": bits_null}


def finalize(state_folder: str, jobs, rows: list[dict], summaries: list[dict], dests: list[str]) -> None:
    """Write ``token_nll/`` into every folder of ``dests`` and add class-information fields to ``summaries``."""
    dests = [d for d in dict.fromkeys(dests) if d]
    if not dests:
        return
    first = os.path.join(dests[0], NLL_DIR)
    for d in dests:
        stale = os.path.join(d, "results.json")
        if os.path.exists(stale):
            os.remove(stale)  # never leave an older complete-looking results.json beside new files
    os.makedirs(first, exist_ok=True)
    index: dict[str, dict] = {}
    info_rows: list[dict] = []
    by_model = {s["model_id"]: s for s in summaries}
    for j in jobs:
        mrows = [r for r in rows if r["model_id"] == j.model_id]
        slug = model_slug(j.model_id)
        src = os.path.join(state_folder, slug, "nll")
        try:
            with open(os.path.join(src, "meta.json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = None
        layout = layout_from_dict(meta["layout"]) if meta is not None and meta["layout"] is not None else None
        out = _write_model(src, mrows, first, slug, layout) if meta is not None and mrows else False
        if out is False:
            index[j.model_id] = {"file": None, "reason": "per-token NLL not recorded for every image "
                                 "(scored by an older version?)"}
            continue
        index[j.model_id] = {"file": out["file"], "null_file": out["null_file"], "shape": out["shape"],
                             "dtype": "float32", "unit": "nats", "layout": meta["layout"],
                             "null_class": meta["null_class"], "family": j.family}
        s = by_model[j.model_id]
        if layout is not None and layout.mean_parts:
            _order_info(s, layout, os.path.join(first, out["file"]), mrows)
        if meta["unconditional"]:
            _class_info(s, j, mrows, out["bits_null"], info_rows)
    atomic_write_text(os.path.join(first, "index.json"), json.dumps(index, indent=1))
    if info_rows:
        atomic_write_text(os.path.join(first, "class_info.csv"), _csv(info_rows))
    for d in dests[1:]:
        copy_outputs(dests[0], d)


def _class_info(s: dict, j, mrows: list[dict], bits_null, info_rows: list[dict]) -> None:
    if bits_null is None:
        s["class_info_bits"] = None
        s["class_info"] = f"not available: {j.family} models have no null (CFG) class"
        return
    bits = np.array([r["bits"] for r in mrows], dtype=np.float64)
    denom = np.array([3.0 * r["pixels"] for r in mrows], dtype=np.float64)
    diff = bits_null - bits
    lo, hi = bootstrap_ci(diff, np.ones_like(diff)) if len(diff) else (None, None)
    s.update(class_info="bits(null) - bits(label), mean over images", class_info_bits=float(diff.mean()),
             class_info_ci_low=lo, class_info_ci_high=hi, class_info_ci_note=ci_note(len(diff)), bpp_null=float(bits_null.sum() / denom.sum()))
    var = j.family == "var"
    if var:
        s["paper_expected_bpp"] = paper_expected_bpp(s["bpp"], s["bpp_null"])
    for r, bn in zip(mrows, bits_null):
        bpp_null = bn / (3.0 * r["pixels"])
        info_rows.append({"model_id": r["model_id"], "image": r["image"], "label": r["label"], "bits": r["bits"],
                          "bits_null": float(bn), "class_info_bits": float(bn - r["bits"]), "bpp": r["bpp"],
                          "bpp_null": bpp_null, "paper_expected_bpp":
                          paper_expected_bpp(r["bpp"], bpp_null) if var else ""})


def _order_info(s: dict, layout, path: str, mrows: list[dict], rows_per_step: int = 4096) -> None:
    """Per scoring order: mean bits per image and BPP (``order_bits``, ``order_bpp``); the standard
    deviation of those over the orders averaged into the headline (``order_std_bits``,
    ``order_std_bpp``; ddof 1, None for one order) and the headline's description (``order_headline``)."""
    arr = np.load(path, mmap_mode="r")
    sums = np.zeros(layout.parts, dtype=np.float64)
    for a in range(0, arr.shape[0], rows_per_step):
        sums += np.asarray(arr[a:a + rows_per_step], dtype=np.float64).sum((0, 1))
    del arr
    bits = sums / LN2 / len(mrows)                          # mean bits per image, per order
    denom = sum(3.0 * r["pixels"] for r in mrows) / len(mrows)
    names, m = layout.part_names, layout.mean_parts
    s["order_bits"] = {n: float(b) for n, b in zip(names, bits)}
    s["order_bpp"] = {n: float(b / denom) for n, b in zip(names, bits)}
    s["order_std_bits"] = float(np.std(bits[:m], ddof=1)) if m > 1 else None
    s["order_std_bpp"] = float(np.std(bits[:m] / denom, ddof=1)) if m > 1 else None
    s["order_headline"] = f"mean over {', '.join(names[:m])}" if m > 1 else names[0]


CLASS_INFO_FIELDS = ("model_id", "image", "label", "bits", "bits_null", "class_info_bits", "bpp", "bpp_null",
                     "paper_expected_bpp")


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CLASS_INFO_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(float(v)) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def copy_outputs(src_folder: str, dest_folder: str | None) -> None:
    """Copy ``token_nll/`` (and ``recon.csv``) of a result folder into another (each file atomically)."""
    src = os.path.join(src_folder, NLL_DIR)
    if not dest_folder or os.path.abspath(src_folder) == os.path.abspath(dest_folder):
        return
    if os.path.isfile(os.path.join(src_folder, "recon.csv")):  # --recon's per-image values (core/engine/recon.py)
        os.makedirs(dest_folder, exist_ok=True)
        shutil.copyfile(os.path.join(src_folder, "recon.csv"), os.path.join(dest_folder, "recon.csv.tmp"))
        os.replace(os.path.join(dest_folder, "recon.csv.tmp"), os.path.join(dest_folder, "recon.csv"))
    if not os.path.isdir(src):
        return
    dest = os.path.join(dest_folder, NLL_DIR)
    os.makedirs(dest, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if name.endswith(".tmp"):
            continue
        tmp = os.path.join(dest, name + ".tmp")
        shutil.copyfile(os.path.join(src, name), tmp)
        os.replace(tmp, os.path.join(dest, name))


# --------------------------------------------------------------------------- reading


def load(folder: str, model_id: str, null: bool = False, mmap: bool = True) -> tuple[np.ndarray, dict] | None:
    """(array (N, L[, K]) float32 nats, index entry) of a result folder, or None when not recorded."""
    try:
        with open(os.path.join(folder, NLL_DIR, "index.json")) as f:
            entry = json.load(f).get(model_id)
    except (OSError, ValueError):
        return None
    if not entry or not entry.get("file") or (null and not entry.get("null_file")):
        return None
    path = os.path.join(folder, NLL_DIR, entry["null_file" if null else "file"])
    return np.load(path, mmap_mode="r" if mmap else None), entry
