"""CLI commands of the analysis: ``analyze``, ``models``, ``export``.

Bad input gives one line on stderr and exit code 2, never a traceback; ``--json`` prints
exactly one JSON object on stdout.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from visbpp.core.engine.preprocessing import check as check_preprocessing
from visbpp.core.errors import SettingsError
from visbpp.core.registry import catalog

from .cli_errors import fail

# pandas/statsmodels (visbpp.core.analysis.table, visbpp.core.analysis.fits, the view) are imported inside the
# commands so that `visbpp --help` and the other commands start fast.


class ModelSet(str, Enum):
    published = "published"
    all = "all"
    micro = "micro"


class FidSource(str, Enum):
    paper = "paper"
    readme = "readme"
    noguidance = "noguidance"


_FID_HELP = ("Which published FID is fitted: 'paper' (the card's primary FID, the published table's for its rows; "
             "default), 'readme' (the released checkpoint's own README/docs FID) or 'noguidance' (FIDs without "
             "guidance). Models without one drop out with a note.")




def _note(msg: str) -> None:
    sys.stderr.write(f"note: {msg}\n")
    sys.stderr.flush()


def _measured(notes: list[str], preprocess: str | None = None) -> list[dict] | None:
    """The measurements chosen by the one selection rule (visbpp.core.store.runs); its notes join ``notes``."""
    import warnings

    from visbpp.core.analysis.table import load_measured

    if preprocess is not None:
        try:
            check_preprocessing(preprocess)
        except SettingsError as e:
            fail(e)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = load_measured(preprocess=preprocess, notes=notes)
        for w in caught:  # damaged store entries: skipped, each named once
            typer.echo(f"warning: {w.message}", err=True)
        return got
    except (OSError, ValueError, KeyError, TypeError) as e:
        fail(f"cannot read measured results: {type(e).__name__}: {e}")


def _bundled(model_set: ModelSet, notes: list[str], preprocess: str | None = None,
             fid: FidSource = FidSource.paper):
    from visbpp.core.analysis.table import fit_rows, merged_table

    measured = _measured(notes, preprocess) if model_set is not ModelSet.published else None
    df = merged_table(measured, model_set.value, fid.value)
    if model_set is ModelSet.all and measured is not None and not df["bpp_source"].eq("measured").any():
        micro = sorted(m["model_id"] for m in measured if str(m.get("model_id", "")).startswith("micro-"))
        notes.append(f"the results store holds measured BPP only of the micro zoo ({', '.join(micro)}), whose "
                     f"quality figure is micro-FID, not FID: fit them with --set micro; --set all equals the "
                     f"published rows" if micro else
                     "no measured BPP in the results store yet: --set all equals the published rows")
    rows, left_out = fit_rows(df)
    notes.extend(left_out)
    return rows, measured


def analyze_cmd(
    csv: Optional[Path] = typer.Argument(
        None, help="CSV with columns family,size,resolution,fid,rfid,bpp (optional: group, model_id). "
                   "Default: the bundled table of the registry."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="DIR",
                                        help="Write publication figures (PNG+PDF, needs matplotlib) into DIR."),
    model_set: Optional[ModelSet] = typer.Option(
        None, "--set", case_sensitive=False,
        help="Bundled model set: 'published' (the 14-model published table, default), 'all' "
             "(every registry model with a measured BPP, plus the published rows) or 'micro' "
             "(the micro zoo: micro-FID against BPP)."),
    predict: Optional[tuple[float, float]] = typer.Option(
        None, "--predict", metavar="BPP RFID",
        help="Predict the FID of a new model from its BPP and rFID (bilinear model, 95% intervals)."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the terminal plots."),
    preprocess: Optional[str] = typer.Option(
        None, "--preprocess", help="Use only measured BPPs of this protocol (official or paper; default: each "
                                   "model's preferred run, whatever its protocol)."),
    allow_mixed: bool = typer.Option(
        False, "--allow-mixed", help="Fit even when the BPPs were measured differently (preprocessing, images, "
                                     "image count); each such fit is reported with a warning."),
    fid: Optional[FidSource] = typer.Option(None, "--fid", case_sensitive=False, help=_FID_HELP),
    metric: Optional[str] = typer.Option(
        None, "--metric", help="Of a CSV file's rows, fit those of this quality metric (column fid_metric: FID or "
                               "micro-FID; default FID when present). Two metrics are never fitted together."),
) -> None:
    """Fit FID against BPP: per group (fixed tokenizer setting), ANCOVA, global linear and bilinear models."""
    from visbpp.core.analysis.fits import analyze
    from visbpp.core.analysis.table import TableError, read_csv

    from . import analysis_view as view

    notes: list[str] = []
    measured = None
    ms = None
    try:
        if csv is not None:
            if model_set is not None:
                fail("--set chooses among the bundled models; it cannot be combined with a CSV file")
            if fid is not None:
                fail("--fid chooses among the registry's published FIDs; a CSV file brings its own fid column")
            df, source, fid_source = read_csv(csv), str(csv), None
        else:
            if metric is not None:
                fail("--metric chooses among a CSV file's rows; the bundled sets have one metric each "
                      "(--set micro: micro-FID)")
            ms = model_set or ModelSet.published
            fs = FidSource.paper if ms is ModelSet.micro or fid is None else fid
            if ms is ModelSet.micro and fid not in (None, FidSource.paper):
                fail("--fid applies to the ImageNet model sets; the micro zoo has one micro-FID per model")
            (df, measured), source, fid_source = (_bundled(ms, notes, preprocess, fs),
                                                  f"bundled table, --set {ms.value}, --fid {fs.value}", fs.value)
        result = analyze(df, notes=notes, allow_mixed=allow_mixed, fid_source=fid_source, metric=metric)
        prediction = result.predict(*predict) if predict else None
    except TableError as e:
        fail(str(e))
    from visbpp.core.analysis.report import beyond_sections

    sections = beyond_sections(result, measured)
    figures = []
    if plot is not None:
        from .figures import FiguresUnavailable, write_figures
        from .figures_beyond import write_beyond_figures

        try:
            figures = write_figures(result, plot) + write_beyond_figures(result, sections, plot, view.metric_name(result))
        except FiguresUnavailable as e:
            fail(str(e))
        except OSError as e:
            fail(f"--plot {plot}: cannot write the figures there ({e.strerror or e}); pass a writable folder")
    if as_json:
        for n in notes:   # the human output prints them with the result
            _note(n)
        from visbpp.core.analysis.report import analysis_document

        out = analysis_document(result, source=source, model_set=ms.value if ms else None,
                                preprocess=preprocess, measured=measured, sections=sections)
        if prediction is not None:
            out["prediction"] = {**prediction.to_dict(),
                                 "pi_coverage_leave_one_model_out": sections["validity"]["leave_one_model_out"]["overall"]}
        if plot is not None:
            out["figures"] = [str(p) for p in figures]
        sys.stdout.write(json.dumps(out, allow_nan=False) + "\n")
        return
    console = Console()
    view.render(console, result, source, prediction, show_plots=not no_plots, sections=sections)
    if figures:
        console.print(f"figures written: {', '.join(str(p) for p in figures)}")


def models_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as one JSON object."),
    checkpoint_dir: Optional[Path] = typer.Option(
        None, "--checkpoint-dir", help="Also look for checkpoint files in this folder (as `visbpp run` does)."),
) -> None:
    """List every model of the registry with its published values and their sources."""
    from . import analysis_view as view

    cards = catalog.model_cards()
    if as_json:
        sys.stdout.write(json.dumps({"models": [view.card_dict(c) for c in cards],
                                     "tokenizers": [view.tokenizer_dict(t) for t in catalog.tokenizer_cards()]})
                         + "\n")
        return
    from visbpp.core.files import CacheDirError

    try:
        view.render_models(Console(), cards, catalog.tokenizer_cards(), str(checkpoint_dir) if checkpoint_dir else None)
    except CacheDirError as e:  # the checkpoint status column needs the cache dir
        fail(str(e))


def export_cmd(
    out: Path = typer.Argument(..., metavar="OUT.csv", help="CSV file to write (atomically)."),
    model_set: ModelSet = typer.Option(
        ModelSet.all, "--set", case_sensitive=False,
        help="'all' (default: published rows plus every measured registry model), 'published' or 'micro'."),
    preprocess: Optional[str] = typer.Option(
        None, "--preprocess", help="Use only measured BPPs of this protocol (official or paper)."),
    fid: FidSource = typer.Option(FidSource.paper, "--fid", case_sensitive=False, help=_FID_HELP),
) -> None:
    """Write the merged table (published values, and measured ones where present) as CSV."""
    from visbpp.core.analysis.report import export_frame
    from visbpp.core.analysis.table import TableError, write_csv

    notes: list[str] = []
    measured = _measured(notes, preprocess)
    try:
        df = export_frame(measured, model_set.value, fid.value)
        path = write_csv(df, out)
    except TableError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror or e}")
    from visbpp.core.analysis.table import bpp_basis

    metrics = list(dict.fromkeys(df["fid_metric"])) if len(df) else []
    if len(metrics) > 1:
        notes.append(f"the table holds rows of {len(metrics)} quality metrics ({', '.join(metrics)}, column fid_metric): "
                     f"`visbpp analyze {out}` fits the {metrics[0]} rows, --metric the others; never together")
    per_metric = [sorted({b for b in bpp_basis(df[df["fid_metric"] == m]) if b}) for m in metrics]
    bases = [b for bs in per_metric if len(bs) > 1 for b in bs]  # mixed within what analyze fits together
    if bases:
        notes.append("the table's BPPs were measured differently (" + "; ".join(bases) + "): see the columns "
                     "bpp_preprocess, bpp_image_set, bpp_n_images; `visbpp analyze` fits them together only "
                     "with --allow-mixed")
    for n in notes:
        _note(n)
    Console(stderr=True).print(f"wrote {len(df)} rows to {path} (FID set: --fid {df['fid_choice'].iloc[0] if len(df) else fid.value})")


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_cmd)
    app.command("models")(models_cmd)
    app.command("export")(export_cmd)
