"""Pure UI logic of the TUI (no textual): picker rows, selection -> scoring jobs, checkpoint
status, and the progress state that engine events update.

Everything here is plain data and functions so it is testable without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from visbpp.core.engine import events as ev
from visbpp.core.registry.catalog import MICRO_FAMILY, ModelCard

# ---------------------------------------------------------------- formatting


def fmt_float(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def fmt_bpp(v: float | None, digits: int = 7) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    x = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(x) < 1024 or unit == "TiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{x:.1f} TiB"  # pragma: no cover


def fmt_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class CheckpointStatus:
    state: str                     # "verified" | "present" | "missing"
    expected: tuple[str, ...] = ()  # where the missing files go, with how to get them

    @property
    def label(self) -> str:
        return {"verified": "verified", "present": "ok", "missing": "missing"}.get(self.state, self.state)


def checkpoint_status(card: ModelCard, checkpoint_dir: str | None = None) -> CheckpointStatus:
    """Local status of a model's files via the checkpoint manager (cheap: no hashing)."""
    from visbpp.core.registry import checkpoints as ck

    files = ck.status(card, checkpoint_dir or None)
    order = {"missing": 0, "present": 1, "verified": 2}
    worst = min(files, key=lambda s: order[s.state]).state if files else "missing"
    expected = []
    for s in files:
        if s.state == "missing":
            try:
                ck.require(s.file, checkpoint_dir or None, model_id=card.id)
            except ck.MissingCheckpointError as e:
                expected.append(str(e))
    return CheckpointStatus(worst, tuple(expected))


def fetch_function():
    """``visbpp.core.registry.download.fetch_models`` (imported on first use: the HTTP clients)."""
    from visbpp.core.registry.download import fetch_models

    return fetch_models


# ---------------------------------------------------------------- picker


@dataclass(frozen=True)
class CustomModel:
    """A user's own checkpoint of a supported architecture (scored via ``job_from_config``),
    or, for programmatic use, a ready ``ScoringJob`` in ``job``."""

    label: str
    family: str
    config: str = ""
    tokenizer: str = ""
    transformer: str = ""
    job: object = None
    extras: tuple[tuple[str, str], ...] = ()   # further files the family needs (``--extra NAME=PATH``)


@dataclass(frozen=True)
class PickerRow:
    key: str                        # "family:<name>" or the model id
    is_family: bool
    family: str
    label: str
    params: str = ""
    resolution: str = ""
    fid: str = ""
    rfid: str = ""
    status: str = ""


def _params(n: int) -> str:
    return f"{n / 1e3:.0f}K" if n < 1e6 else (f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M")


def _is_micro_fid(pub) -> bool:
    return pub is not None and pub.metric == "micro-FID"


def picker_rows(cards: Sequence[ModelCard], statuses: dict[str, CheckpointStatus],
                custom: Sequence[CustomModel] = (), custom_infos: dict | None = None) -> list[PickerRow]:
    """Families as group rows followed by their sizes: custom models first (``custom_infos``: label ->
    (params, resolution)), then the micro zoo, then registry order."""
    rows: list[PickerRow] = []
    if custom:   # your own checkpoints first: they are what you came to score
        rows.append(PickerRow("family:custom", True, "custom", f"Custom ({len(custom)})"))
        for m in custom:
            params, res = (custom_infos or {}).get(m.label, ("", ""))
            rows.append(PickerRow(m.label, False, "custom", m.label, params, res, "-", "-", "ok"))
    by_family: dict[str, list[ModelCard]] = {}
    for c in cards:
        by_family.setdefault(c.family, []).append(c)
    # the micro zoo first: it is what scores out of the box
    order = sorted(by_family, key=lambda f: f != MICRO_FAMILY)
    for fam in order:
        cs = by_family[fam]
        micro = any(_is_micro_fid(c.fid) for c in cs)
        note = " · micro-FID" if micro else ""
        rows.append(PickerRow(f"family:{fam}", True, fam, f"{cs[0].family_label} ({len(cs)}){note}"))
        for c in cs:
            st = statuses.get(c.id)
            mark = " µFID" if _is_micro_fid(c.fid) else ""
            rows.append(PickerRow(
                c.id, False, fam, c.size, _params(c.params), str(c.resolution),
                fmt_float(c.fid.value if c.fid else None) + (mark if c.fid else ""),
                fmt_float(c.rfid.value if c.rfid else None) + (mark if c.rfid else ""),
                st.label if st else "?",
            ))
    return rows


def family_members(rows: Iterable[PickerRow], family: str) -> list[str]:
    return [r.key for r in rows if not r.is_family and r.family == family]


def toggle_family(selected: set[str], members: Sequence[str]) -> set[str]:
    """All on if any member is off, else all off."""
    out = set(selected)
    if all(m in out for m in members):
        out.difference_update(members)
    else:
        out.update(members)
    return out


def default_selection(cards: Sequence[ModelCard]) -> tuple[str, ...]:
    """What the picker starts with when the user never saved a selection: the micro zoo."""
    return tuple(c.id for c in cards if c.family == MICRO_FAMILY)


def selection_families(selected: Sequence[str], rows: Iterable[PickerRow], custom: Sequence[CustomModel] = ()) -> list[str]:
    """The family of each selected model: from the picker rows (registered models), a custom model's own."""
    family = {r.key: r.family for r in rows if not r.is_family}
    family.update({m.label: m.family for m in custom})
    return [family[k] for k in selected if k in family]


# ---------------------------------------------------------------- selection -> jobs


def own_jobs(custom: Sequence[CustomModel], extras: dict[str, str] | None = None) -> dict:
    """label -> a function of the selection's scoring order building the custom model's scoring job
    (``plan_jobs``'s ``own``; the order goes to a model whose family has an order axis); ``extras``
    (the Run tab's extra files) add to, or replace by name, each model's ``--extra`` files."""
    from visbpp.models import jobs as mj

    def build(m: CustomModel):
        files = {**dict(m.extras), **(extras or {})}
        return lambda order: m.job if m.job is not None else mj.job_from_config(
            m.family, m.config, m.tokenizer, m.transformer, model_id=m.label, extras=files or None,
            order=mj.order_for(m.family, order))

    return {m.label: build(m) for m in custom}


# ---------------------------------------------------------------- progress


@dataclass
class ModelProgress:
    model_id: str
    stage: str = "queued"
    detail: str = ""
    done: int = 0
    total: int = 0
    images_per_s: float = 0.0
    eta_s: float | None = None
    bpp: float | None = None
    bits_per_token: float | None = None
    n_images: int | None = None

    @property
    def stats(self) -> str:
        if self.stage == "done" and self.bpp is not None:
            return f"bpp {self.bpp:.7f}  bits_per_token {fmt_float(self.bits_per_token, 3)}  n={self.n_images}"
        if self.stage == "queued":
            return "waits for the models above"
        if self.stage == "not run":
            return "not scored: the run was cancelled"
        if self.stage == "cancelled":
            return f"cancelled at {self.done}/{self.total}: run again to resume"
        rate = f"{self.images_per_s:.1f} img/s" if self.images_per_s else "- img/s"
        return f"{self.done}/{self.total}  {rate}  ETA {fmt_eta(self.eta_s)}"


@dataclass
class RunView:
    """What the progress panel shows, folded from engine events."""

    run_id: str = ""
    models: dict[str, ModelProgress] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    running: bool = False
    cancelled: bool = False
    finished: bool = False
    out_dir: str | None = None
    memory: ev.MemoryStats | None = None
    message: str = ""               # last run-level note from the engine

    def row(self, model_id: str) -> ModelProgress:
        if model_id not in self.models:
            self.models[model_id] = ModelProgress(model_id)
        return self.models[model_id]

    def apply(self, event: object) -> str | None:
        """Fold one event in; returns the model id whose row changed (None for run-level events)."""
        if isinstance(event, ev.RunStarted):
            self.run_id = event.run_id
            self.running, self.finished, self.cancelled = True, False, False
            for m in event.models:
                r = self.row(m)
                r.total = event.total_images
            return None
        if isinstance(event, ev.StageChanged):
            if not event.model_id:  # run-level stage ("writing" the results, "already finished")
                self.message = f"{event.stage}: {event.detail}" if event.detail else event.stage
                return None
            r = self.row(event.model_id)
            r.stage, r.detail = event.stage, event.detail
            return r.model_id
        if isinstance(event, ev.Progress):
            r = self.row(event.model_id)
            r.stage, r.done, r.total = event.stage, event.done, event.total
            r.images_per_s, r.eta_s = event.images_per_s, event.eta_s
            if event.memory is not None:
                self.memory = event.memory
            return r.model_id
        if isinstance(event, ev.ModelFinished):
            r = self.row(event.model_id)
            r.stage, r.bpp, r.bits_per_token, r.n_images = "done", event.bpp, event.bits_per_token, event.n_images
            r.done = r.total = max(r.total, event.n_images)
            r.eta_s = 0.0
            return r.model_id
        if isinstance(event, ev.ImageSkipped):
            self.skipped.append((event.image, event.reason))
            return None
        if isinstance(event, ev.RunFinished):
            self.running, self.finished = False, True
            self.cancelled, self.out_dir = event.cancelled, event.out_dir
            if event.cancelled:  # a model part-way through was cancelled; those not started did not run
                for r in self.models.values():
                    if r.stage != "done":
                        r.stage = "cancelled" if r.stage == "scoring" and r.done > 0 else "not run"
            return None
        return None

    def start(self, model_ids: Sequence[str]) -> None:
        """Reset for a new run with these models queued."""
        self.run_id, self.skipped, self.memory, self.message = "", [], None, ""
        self.models = {m: ModelProgress(m) for m in model_ids}
        self.running, self.finished, self.cancelled, self.out_dir = True, False, False, None


def readable_error(err: BaseException | str) -> str:
    """One readable sentence: the message without a class-name prefix, whitespace folded, one final period."""
    text = " ".join(str(err).split()) or (type(err).__name__ if isinstance(err, BaseException) else "unknown error")
    head, sep, rest = text.partition(": ")
    if sep and head.isidentifier() and head[:1].isupper() and head.endswith(("Error", "Exception")):
        text = rest
    text = text.rstrip(" .")
    return (text[:1].upper() + text[1:] + ".") if text else "Unknown error."


def _find_int(d, keys: tuple[str, ...]) -> int | None:
    if isinstance(d, dict):
        for k in keys:
            if isinstance(d.get(k), int) and not isinstance(d.get(k), bool):
                return d[k]
        for v in d.values():
            r = _find_int(v, keys)
            if r is not None:
                return r
    return None


def custom_info(m: CustomModel) -> tuple[str, str]:
    """(params, resolution) of a custom model: the resolution from its config JSON, the parameter count
    from the transformer checkpoint's tensors (read as plain tensors, memory-mapped); blanks when unknown."""
    import json

    res = None
    try:
        res = _find_int(json.loads(Path(m.config).read_text(encoding="utf-8")), ("image_size", "resolution", "img_size"))
    except (OSError, ValueError):
        pass
    params = ""
    try:
        import torch

        sd = torch.load(m.transformer, map_location="cpu", weights_only=True, mmap=True)
        sd = sd.get("model", sd) if isinstance(sd, dict) else {}
        n = sum(v.numel() for v in sd.values() if isinstance(v, torch.Tensor))
        params = _params(n) if n else ""
    except Exception:  # noqa: BLE001 - an unreadable or non-torch file: left blank (the run reports it)
        pass
    return params, str(res) if res else ""
