"""``visbpp runs``: list, show, remove and pin the runs of the results store.

The selection rule itself lives in ``visbpp.core.store.runs`` (``analyze``, ``export``, ``inspect``
and the TUI use it); these commands only show and change its inputs. Bad input gives one
``error:`` line on stderr, exit code 2, and changes nothing.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import List

import typer
from rich.console import Console
from rich.table import Table

from .cli_errors import fail

runs_app = typer.Typer(help="List, show, remove and pin the runs of the results store.", no_args_is_help=True)




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


@runs_app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout.")) -> None:
    """Every run: id, models, data root, subset, n, preprocessing, dtype, device, date, complete?"""
    from visbpp.core.store import runs as RU

    rows = _call(RU.list_runs)
    pins = _call(RU.read_pins)
    if as_json:
        typer.echo(json.dumps({"runs": rows, "pins": pins}))
        return
    if not rows:
        typer.echo("no runs in the results store yet (visbpp run ...)")
        return
    t = Table("run id", "models", "data", "subset", "n", "preprocess", "dtype", "device", "date", "complete",
              title="runs (newest first)")
    t.columns[0].no_wrap = True
    for r in rows:
        pinned = [m for m, rid in pins.items() if rid == r["run_id"]]
        t.add_row(r["run_id"] + (" (pinned)" if pinned else ""), ", ".join(r["models"]), r["data"], r["subset"],
                  _n(r["n_images"]), r["preprocess"], r["dtype"], str(r["device"]), r["date"],
                  "yes" if r["complete"] else "no")
    Console().print(t)


@runs_app.command("show")
def show_cmd(run_id: str = typer.Argument(..., metavar="RUN")) -> None:
    """The run's summary and its results.json (as JSON)."""
    from visbpp.core.store import runs as RU

    typer.echo(json.dumps(_call(RU.show_run, run_id), indent=1))


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
    typer.echo(f"pinned {model} to run {run_id} (bpp {e['bpp']:.6f}, n={e['n_images']}, {e['dtype']}, {e['preprocess']})")


@runs_app.command("unpin")
def unpin_cmd(model: str = typer.Argument(..., metavar="MODEL")) -> None:
    """Back to the default selection rule for MODEL."""
    from visbpp.core.store import runs as RU

    typer.echo(f"unpinned {model}" if _call(RU.unpin, model) else f"{model} was not pinned")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
