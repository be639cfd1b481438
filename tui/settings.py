"""Run settings of the TUI, remembered between sessions in a small JSON file.

Pure logic (no textual): load/save the user's last choices and translate them into the
engine's ``RunSettings``, which checks the values itself (this module only turns text into
numbers), and into the scoring order the jobs get (:func:`order_option`). The file lives in the
visbpp home (``VISBPP_HOME``, else the platformdirs user cache dir), next to the results store and
the token cache. ``parse_batch_size`` / ``parse_workers`` are the translations `visbpp run` uses too.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from visbpp.core.engine.preprocessing import PREPROCESSINGS  # official (the family's own transform) | paper
from visbpp.core.engine.run_types import DEVICES, DTYPES, RunSettings
from visbpp.core.errors import SettingsError

SETTINGS_FILE = "tui_settings.json"
# scoring order of the random-order families (ARPG, RandAR); "default" = each family's (perm:4); others ignore it
ORDERS = ("default", "raster", "perm:1", "perm:2", "perm:4", "perm:8")


def visbpp_home() -> Path:
    """``VISBPP_HOME`` if set, else the platformdirs user cache dir of visbpp."""
    from visbpp.core.files import cache_root

    return cache_root()


def settings_path(home: str | os.PathLike | None = None) -> Path:
    return Path(home or visbpp_home()) / SETTINGS_FILE


@dataclass(frozen=True)
class UISettings:
    """What the run-settings panel shows; strings where the user types free text."""

    data_dir: str = ""            # ImageFolder root, or flat val folder (+ labels CSV)
    labels_csv: str = ""          # LOC_val_solution.csv for the flat layout, optional
    limit: str = ""               # first N images ("" = all)
    per_class: str = ""           # first K images per class ("" = all)
    batch_size: str = "16"        # integer or "auto"
    device: str = "auto"          # auto|cuda|mps|cpu
    dtype: str = "fp32"           # fp32|bf16
    preprocess: str = "official"  # official|paper
    order: str = "default"        # ORDERS: scoring order of the models that have an order axis
    checkpoint_dir: str = ""      # where official checkpoints are looked up ("" = the cache)
    extra_files: str = ""         # own models: further files the family needs, "NAME=PATH, NAME=PATH" (--extra)
    unconditional: str = ""       # "on": also score with the null class (--unconditional)
    recon: str = ""               # "on": also decode the tokens, PSNR/SSIM (--recon)
    force: str = ""               # "on": recompute a finished run (--force); never remembered between sessions
    selection: str | None = None  # picked model ids, comma-separated; None = never saved (micro preselected)

    @property
    def selected_ids(self) -> tuple[str, ...] | None:
        if self.selection is None:
            return None
        return tuple(m for m in self.selection.split(",") if m)

    def updated(self, **changes: Any) -> "UISettings":
        return replace(self, **changes)


def load_settings(path: str | os.PathLike) -> tuple[UISettings, str | None]:
    """Settings from ``path``; defaults when the file is absent.

    A damaged file never stops the app: defaults are returned with a warning that names
    the file (the second element), and the next save rewrites it.
    """
    p = Path(path)
    if not p.exists():
        return UISettings(), None
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("top level is not an object")
    except (OSError, ValueError) as e:
        return UISettings(), f"ignored unreadable settings file {p}: {e}"
    known = {f.name for f in fields(UISettings)}
    values = {k: str(v) for k, v in raw.items() if k in known and v is not None}
    s = UISettings(**values)
    if s.device not in DEVICES:
        s = s.updated(device="auto")
    if s.dtype not in DTYPES:
        s = s.updated(dtype="fp32")
    if s.preprocess not in PREPROCESSINGS:
        s = s.updated(preprocess="official")
    if s.order not in ORDERS:
        s = s.updated(order="default")
    bad = field_errors(s)
    if bad:
        defaults = UISettings()
        s = s.updated(**{k: getattr(defaults, k) for k in bad})
        fixed = "; ".join(f"{msg}, reset to {getattr(defaults, k) or 'empty'}" for k, msg in bad.items())
        return s, f"settings file {p}: {fixed}"
    return s, None


VALIDATED = ("limit", "per_class", "batch_size")   # the typed fields checked before they are saved


def field_errors(ui: UISettings) -> dict[str, str]:
    """Field name -> message for every typed number that a run would refuse (checked before saving):
    the text translated as for a run, the value checked by ``RunSettings`` itself."""
    out = {}
    for name, parse in (("limit", lambda v: _optional_int(v, "limit")),
                        ("per_class", lambda v: _optional_int(v, "per class")),
                        ("batch_size", parse_batch_size)):
        try:
            RunSettings(data="", **{name: parse(getattr(ui, name))})
        except SettingsError as e:
            out[name] = str(e)
    return out


FLAGS = ("unconditional", "recon", "force")   # the on/off settings, as `visbpp run --unconditional --recon --force`


def flag(value: str) -> bool:
    return value.strip().lower() == "on"


def savable(new: UISettings, last_good: UISettings) -> UISettings:
    """``new`` with every invalid typed field taken from ``last_good`` (what may be written to disk);
    ``force`` is never written: each session starts without it."""
    bad = field_errors(new)
    out = new.updated(**{k: getattr(last_good, k) for k in bad}) if bad else new
    return out.updated(force="")


def parse_extras(items) -> dict[str, str]:
    """``NAME=PATH`` items (``--extra``, repeatable; the Run tab's field separates them with commas)
    -> {name: path}; :class:`SettingsError` for an item of another form."""
    if isinstance(items, str):
        items = [i.strip() for i in items.split(",") if i.strip()]
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise SettingsError(f"--extra {item!r}: expected NAME=PATH (e.g. --extra backbone=dinov2_vitl14_reg4_pretrain.pth)",
                                "extra_files")
        out[name.strip()] = path.strip()
    return out


def ui_field(error: SettingsError) -> str | None:
    """The settings-panel field a ``SettingsError`` is about (``RunSettings.data`` is ``data_dir``), for
    focusing it; None when the panel has no such field."""
    name = {"data": "data_dir"}.get(error.field or "", error.field)
    return name if name in {f.name for f in fields(UISettings)} else None


def save_settings(settings: UISettings, path: str | os.PathLike) -> None:
    """Atomic write (temp file + rename) so a crash never leaves half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tui_settings.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(settings), f, indent=1, sort_keys=True)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _optional_int(text: str, name: str) -> int | None:
    t = text.strip()
    if not t:
        return None
    try:
        return int(t)
    except ValueError:
        raise SettingsError(f"{name}: {text!r} is not a whole number (leave it empty for all images)",
                            name.replace(" ", "_")) from None


def parse_batch_size(text: str) -> int | str:
    """A typed batch size: a whole number, ``auto``, or empty for the default (``RunSettings``'s)."""
    t = text.strip().lower()
    if not t:
        return RunSettings.batch_size   # the field's placeholder: empty means the default
    if t == "auto":
        return "auto"
    try:
        return int(t)
    except ValueError:
        raise SettingsError(f"batch size: {text!r} is neither a whole number nor 'auto'", "batch_size") from None


def parse_workers(text: str) -> int | str:
    """Typed decode workers: ``auto`` or a whole number."""
    t = text.strip().lower()
    if t == "auto":
        return "auto"
    try:
        return int(t)
    except ValueError:
        raise SettingsError(f"--workers {text!r}: expected auto, 0 (decode in the main process) or a number of "
                            f"decode worker processes", "workers") from None


def order_option(ui: UISettings) -> str | None:
    """The ``--order`` of these settings: None for each family's default."""
    return None if ui.order == "default" else ui.order


def to_run_settings(ui: UISettings, cache_dir: str | None = None, default_data: str | None = None):
    """The engine's ``RunSettings`` for these UI settings; ``SettingsError`` names a bad field.

    ``default_data`` (the data a family ships, e.g. the micro zoo's held-out digits) is used
    when the data dir is empty."""
    data = ui.data_dir.strip() or (default_data or "")
    if not data:
        raise SettingsError("data dir: empty; type the ImageNet val folder (ImageFolder root or flat folder + labels CSV)"
                            " (only the micro models have a built-in default)", "data_dir")
    if not Path(data).expanduser().is_dir():
        raise SettingsError(f"data dir: {data} is not a folder", "data_dir")
    labels = ui.labels_csv.strip() or None
    if labels and not Path(labels).expanduser().is_file():
        raise SettingsError(f"labels CSV: {labels} does not exist", "labels_csv")
    return RunSettings(
        data=str(Path(data).expanduser()),
        labels_csv=str(Path(labels).expanduser()) if labels else None,
        limit=_optional_int(ui.limit, "limit"),
        per_class=_optional_int(ui.per_class, "per class"),
        batch_size=parse_batch_size(ui.batch_size),
        device=ui.device,
        dtype=ui.dtype,
        cache_dir=cache_dir,
        preprocess=ui.preprocess,
        **{name: flag(getattr(ui, name)) for name in FLAGS},
    )
