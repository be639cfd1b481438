"""``visbpp inspect RUN|MODEL...``: where the bits go in finished runs.

Per model: BPP, mean bits per image, the class information (``--unconditional`` runs), the
per-group totals (scales / depths / sub-tokens, or the model's named position groups), bits vs
position (coarse), the mean bit map (terminal rendering of grid layouts) and per-class BPP with
bootstrap CIs; ``--compare A B``
(or any two models given) adds a paired comparison on common images. ``--json`` prints one
object (``models[]``, plus ``paired`` when comparing); ``--plot DIR`` writes figures.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .cli_errors import fail

SHADES = ".:-=+*#%@"




def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _bitmap_lines(spatial: list[list[float]]) -> list[str]:
    lo = min(min(r) for r in spatial)
    hi = max(max(r) for r in spatial)
    span = (hi - lo) or 1.0
    return ["".join(SHADES[min(len(SHADES) - 1, int((v - lo) / span * len(SHADES)))] * 2 for v in row)
            for row in spatial] + [f"(mean bits per cell: '{SHADES[0]}' {lo:.3f} ... '{SHADES[-1]}' {hi:.3f})"]


def _orders_table(o: dict) -> Table:
    """Bits per scoring order: each order, the headline (mean over the averaged orders, +- their std), raster."""
    std = f" (std over them {o['std_bits']:.3f})" if o.get("std_bits") is not None else ""
    t = Table("order", "mean bits per image", "vs headline",
              title=f"bits by scoring order ({o.get('order') or '?'}; headline = mean over {', '.join(o['averaged'])}{std})")
    for k, v in o["bits"].items():
        t.add_row(k + (" *" if k in o["averaged"] else ""), f"{v:.3f}", f"{v - o['headline_bits']:+.3f}")
    t.add_row("headline", f"{o['headline_bits']:.3f}", "")
    if o.get("raster_bits") is not None:
        t.caption = f"raster - permutation mean = {o['raster_bits'] - o['headline_bits']:+.3f} bits per image"
    return t


def _render(console: Console, rep: dict, classes: list[dict], src, max_classes: int) -> None:
    from visbpp.core.analysis.inspection import other_runs_with_class_info

    summary = src.summary
    console.rule(f"[bold]{rep['model_id']}")
    if src.run_id:
        how = f", chosen by the selection rule ({src.chosen_by})" if src.chosen_by else ""
        console.print(f"run {src.run_id}{how}", highlight=False)
    ci = f" [95% CI {_f(summary.get('bpp_ci_low'), '.6f')}, {_f(summary.get('bpp_ci_high'), '.6f')}]"
    console.print(f"{rep['n_images']} images; BPP {_f(rep['bpp'], '.6f')}{ci}; "
                  f"mean bits per image {_f(rep['bits_mean'], '.2f')}")
    if summary.get("class_info_bits") is not None:
        line = (f"class information bits(null) - bits(label): {summary['class_info_bits']:.3f} bits/image "
                f"[95% CI {_f(summary.get('class_info_ci_low'), '.3f')}, {_f(summary.get('class_info_ci_high'), '.3f')}]"
                f"; BPP with the null class {_f(summary.get('bpp_null'), '.6f')}")
        if summary.get("paper_expected_bpp") is not None:
            line += f"; with 10% label dropout (the paper's VAR evaluation) {summary['paper_expected_bpp']:.6f}"
        console.print(line)
    elif summary.get("class_info"):
        console.print(f"class information: {summary['class_info']}")
    else:
        others = other_runs_with_class_info(src)
        where = f" in run {src.run_id}" if src.run_id else ""
        also = f"; run {', '.join(others)} of this model has it (`visbpp inspect {others[0]}`)" if others else \
            " (score with --unconditional)"
        console.print(f"class information: not measured{where}{also}", highlight=False)
    parts = [f"raw index rate {rep['raw_rate_bpp']:.6f}"] if rep["raw_rate_bpp"] is not None else []
    if rep["unigram_bpp"] is not None:
        parts.append(f"order-0 (unigram) baseline {rep['unigram_bpp']:.6f} (Miller–Madow {rep['unigram_bpp_mm']:.6f}); "
                     f"AR share 1 - bpp/baseline = {100 * rep['ar_share']:.1f}%")
    if parts or rep["baseline_note"]:
        console.print("token code (bits / (3·H·W)): " + "; ".join(parts or ["no baseline"])
                      + (f" ({rep['baseline_note']})" if rep["baseline_note"] else ""))
    if summary.get("order") and not rep.get("orders"):
        console.print(f"scoring order: {summary['order']}")
    if rep["by_group"] is None:
        console.print("no per-token file for this run (scored by an older version): rerun to get the breakdowns")
    else:
        o = rep.get("orders")
        groups = {k: v for k, v in rep["by_group"].items() if not (o and k in o["bits"])}  # orders are alternatives
        if groups:
            t = Table("group", "mean bits", "share", title="bits by group")
            total = sum(groups.values()) or 1.0
            for k, v in groups.items():
                t.add_row(k, f"{v:.3f}", f"{100 * v / total:.1f}%")
            console.print(t)
        if o:
            console.print(_orders_table(o))
        pos = rep["by_position"]
        n = min(10, len(pos))
        step = len(pos) / n
        t = Table("positions", "mean bits per token", title="bits vs position")
        for i in range(n):
            a, b = int(i * step), int((i + 1) * step)
            t.add_row(f"{a}-{b - 1}", f"{sum(pos[a:b]) / max(1, b - a):.4f}")
        console.print(t)
        if rep["spatial"] is not None:
            console.print("mean bit map:")
            for line in _bitmap_lines(rep["spatial"]):
                console.print(line, highlight=False)
    t = Table("label", "n", "BPP", "95% CI", title="per-class BPP")
    for c in classes[:max_classes]:
        t.add_row(str(c["label"]), str(c["n"]), f"{c['bpp']:.6f}",
                  f"[{_f(c['bpp_ci_low'], '.6f')}, {_f(c['bpp_ci_high'], '.6f')}]")
    if len(classes) > max_classes:
        t.caption = f"{len(classes) - max_classes} more classes in --json"
    console.print(t)


def _render_pair(console: Console, p: dict) -> None:
    console.rule(f"[bold]paired: {p['a']} - {p['b']}")
    if not p["n_common"]:
        console.print("no common images")
        return
    ci = (f"[95% paired bootstrap CI {p['ci_low']:.4f}, {p['ci_high']:.4f}]" if p["ci_low"] is not None
          else f"({p['ci_note']})")
    console.print(f"{p['n_common']} common images; mean bits difference {p['mean_bits_diff']:.4f} "
                  f"{ci}; {p['a']} uses fewer bits on "
                  f"{p['a_fewer_bits']}, {p['b']} on {p['b_fewer_bits']} images; sign test p = {p['sign_test_p']:.3g}")
    for mid, v in (p.get("bpp_common") or {}).items():
        ci = f"[{_f(v['ci_low'], '.6f')}, {_f(v['ci_high'], '.6f')}]" if v["ci_low"] is not None else f"({p['ci_note']})"
        console.print(f"  {mid}: bpp {v['bpp']:.6f} on the common images, 95% CI {ci}")
    console.print(f"  CIs: {p['ci_method']}")


def inspect_cmd(
    targets: List[str] = typer.Argument(..., help="Result folder, run id, or model id (repeatable)."),
    compare: List[str] = typer.Option([], "--compare", help="Two model ids to compare paired (give it twice)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object on stdout."),
    plot: Optional[Path] = typer.Option(None, "--plot", metavar="DIR", help="Write figures (PNG + PDF) here."),
    max_classes: int = typer.Option(20, "--max-classes", help="Rows of the per-class table shown."),
) -> None:
    """Where the bits go: per-group/per-position bits, bit maps, per-class BPP, paired comparisons."""
    from visbpp.core.analysis import inspection as I

    try:
        sources = [s for t in targets for s in I.resolve(t)]
    except I.InspectError as e:
        fail(str(e))
    by_id = {}
    for s in sources:
        by_id.setdefault(s.model_id, s)
    if compare and len(compare) != 2:
        fail(f"--compare needs exactly two model ids (given {len(compare)}): --compare A --compare B")
    missing = [c for c in compare if c not in by_id]
    if missing:
        fail(f"--compare {', '.join(missing)}: not among the inspected models ({', '.join(by_id)})")
    pairs_of = [tuple(compare)] if compare else ([tuple(by_id)] if len(by_id) == 2 else [])
    reports, tables = [], []
    for s in by_id.values():
        rows = I.rows_of(s)
        reports.append(I.model_report(s, rows))
        tables.append(I.per_class_table(rows))
    pairs = [I.paired(by_id[a], by_id[b]) for a, b in pairs_of]
    if plot is not None:
        from .figures import FiguresUnavailable
        from .figures_bits import write_inspect_figures

        try:
            written = write_inspect_figures(reports, plot)
        except FiguresUnavailable as e:
            fail(str(e))
        except OSError as e:
            fail(f"--plot {plot}: cannot write the figures there ({e.strerror or e}); pass a writable folder")
        sys.stderr.write(f"note: {len(written)} figure files written to {plot}\n")
    if as_json:
        typer.echo(I.dumps(reports, pairs))
        return
    console = Console()
    for rep, cls, s in zip(reports, tables, by_id.values()):
        _render(console, rep, cls, s, max_classes)
    for p in pairs:
        _render_pair(console, p)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cmd)
