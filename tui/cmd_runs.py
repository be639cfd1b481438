"""``visbpp runs``: list, show, remove and pin the runs of the results store.

The selection rule itself lives in ``visbpp.core.store.runs`` (``analyze``, ``export``, ``inspect``
and the TUI use it); these commands only show and change its inputs. A run id may be given by
any unique prefix (as git takes commit ids). Bad input gives one ``error:`` line on stderr, exit
code 2, and changes nothing. ``visbpp runs`` alone lists.

The list is a table where it fits the terminal; narrower (80 columns, or piped output) it is
one block of lines per run, so that no run id, model id or path is ever cut.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import List

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .cli_errors import fail
from .cli_tables import fits

runs_app = typer.Typer(help="List, show, remove and pin the runs of the results store (alone: list).",
                       invoke_without_command=True)


def _call(fn, *a):
    from visbpp.core.errors import VisbppError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = fn(*a)
        for w in caught:
            sys.stderr.write(f"warning: {w.message}\n")
        return out
    except VisbppError as e:
        fail(str(e))


def _n(v) -> str:
    return "-" if v is None else (", ".join(map(str, v)) if isinstance(v, list) else str(v))


def _date(iso: str) -> str:
    """``2026-01-02T03:04:05Z`` -> ``2026-01-02 03:04``; "" stays "" (no date known)."""
    return iso.replace("T", " ")[:16] if iso else ""


def _state(r: dict) -> str:
    return "complete" if r["complete"] else "unfinished"


def _how(r: dict) -> str:
    """preprocessing, numerics, device and options of a run, as one text."""
    return ", ".join([r["preprocess"] or "?", r["dtype"] or "?", str(r["device"] or "?"), *r.get("options", [])])


def _runs_table(rows: list[dict], pins: dict[str, str]) -> Table:
    t = Table(title="runs (newest first)")
    for name in ("run id", "models", "data", "subset", "n", "settings", "date", "state"):
        t.add_column(name, no_wrap=name not in ("models", "subset", "settings"))  # wrapped at spaces only
    for r in rows:
        pinned = [m for m, rid in pins.items() if rid == r["run_id"]]
        t.add_row(r["run_id"] + (" (pinned)" if pinned else ""), Text(", ".join(r["models"])), Text(r["data"]),
                  r["subset"], _n(r["n_images"]), _how(r), _date(r["date"]), _state(r))
    return t


def _runs_blocks(console: Console, rows: list[dict], pins: dict[str, str]) -> None:
    console.print("runs (newest first)", style="bold")
    for r in rows:
        pinned = sorted(m for m, rid in pins.items() if rid == r["run_id"])
        when = _date(r["date"]) or "no date"
        head = Text(r["run_id"], style="bold")
        head.append(f"  {_state(r)}  {when if r['complete'] else 'last written ' + when}")
        if pinned:
            head.append(f"  pinned for {', '.join(pinned)}")
        console.print(head, highlight=False)
        console.print(Text(f"  models  {', '.join(r['models'])}"), highlight=False)
        console.print(Text(f"  images  {r['data']}, {r['subset']}, n={_n(r['n_images'])}"), highlight=False)
        console.print(Text(f"  scored  {_how(r)}"), highlight=False)


def _list(as_json: bool) -> None:
    from visbpp.core.store import runs as RU

    rows = _call(RU.list_runs)
    pins = _call(RU.read_pins)
    if as_json:
        typer.echo(json.dumps({"runs": rows, "pins": pins}))
        return
    if not rows:
        typer.echo("no runs in the results store yet (visbpp run ...)")
        return
    console = Console()
    table = _runs_table(rows, pins)
    if fits(console, table):
        console.print(table)
    else:
        _runs_blocks(console, rows, pins)


@runs_app.callback()
def runs_root(ctx: typer.Context) -> None:
    """List, show, remove and pin the runs of the results store; alone it lists them."""
    if ctx.invoked_subcommand is None:
        _list(False)


@runs_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout.")) -> None:
    """Every run: id, models, data, subset, n, preprocessing, numerics, device, options, date, complete?"""
    _list(as_json)


def _ci(m: dict) -> str:
    lo, hi = m.get("bpp_ci_low"), m.get("bpp_ci_high")
    return f" [95% CI {lo:.6f}, {hi:.6f}]" if lo is not None and hi is not None else ""


def summary_lines(info: dict) -> list[str]:
    """The human summary of ``runs show``: state, models with their BPP, images, settings, pins."""
    doc = info.get("document") or {}
    out = [f"run {info['run_id']}: {_state(info)}" + (f", finished {_date(info['date'])}" if info["complete"] else
                                                       f" (last written {_date(info['date']) or '?'}; rerun the same "
                                                       f"command to continue it)")]
    by_id = {m.get("model_id"): m for m in doc.get("models", []) if isinstance(m, dict)}
    for mid in info["models"]:
        m = by_id.get(mid)
        if m and m.get("bpp") is not None:
            out.append(f"  {mid}: bpp {m['bpp']:.6f}{_ci(m)}, n={m.get('n_images')}, "
                       f"{m.get('images_skipped', 0)} skipped")
        else:
            out.append(f"  {mid}: not finished")
    out.append(f"images: {info['data']}, {info['subset']}, n={_n(info['n_images'])}")
    out.append(f"scored: {_how(info)}")
    if info.get("pinned_for"):
        out.append(f"pinned for: {', '.join(info['pinned_for'])}")
    out.append("all of results.json: visbpp runs show " + info["run_id"] + " --json")
    return out


@runs_app.command("show")
def show_cmd(run_id: str = typer.Argument(..., metavar="RUN"),
             as_json: bool = typer.Option(False, "--json", help="The summary and the whole results.json as JSON.")) -> None:
    """A run's summary (models and BPP, images, settings, pins); --json adds its results.json."""
    from visbpp.core.store import runs as RU

    info = _call(RU.show_run, run_id)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    console = Console()
    for line in summary_lines(info):
        console.print(Text(line), highlight=False)


@runs_app.command("rm")
def rm_cmd(run_ids: List[str] = typer.Argument(..., metavar="RUN...")) -> None:
    """Remove runs (results-store entry, run state, pins); their cached tokens stay."""
    from visbpp.core.store import runs as RU

    removed = _call(RU.remove_runs, list(run_ids))
    for d in removed:
        typer.echo(f"removed {d}")


@runs_app.command("pin")
def pin_cmd(model: str = typer.Argument(..., metavar="MODEL"), run_id: str = typer.Argument(..., metavar="RUN")) -> None:
    """Use run RUN's measurement of MODEL in the analysis, export and TUI."""
    from visbpp.core.store import runs as RU

    e = _call(RU.pin, model, run_id)
    typer.echo(f"pinned {model} to run {e['run_id']} (bpp {e['bpp']:.6f}, n={e['n_images']}, {e['dtype']}, "
               f"{e['preprocess']})")


@runs_app.command("unpin")
def unpin_cmd(model: str = typer.Argument(..., metavar="MODEL")) -> None:
    """Back to the default selection rule for MODEL."""
    from visbpp.core.store import runs as RU

    typer.echo(f"unpinned {model}" if _call(RU.unpin, model) else f"{model} was not pinned")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
