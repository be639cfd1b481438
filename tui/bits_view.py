"""Where the bits go, for the Bits tab: the stored per-token NLL of a model's run (the same report as
``visbpp inspect``) rendered as a heatmap with a colour scale in bits, bars per scale/depth group
and per-class BPP. Loading is plain (worker thread); rendering returns Rich renderables."""

from __future__ import annotations

from dataclasses import dataclass

from rich.color import Color
from rich.console import Group
from rich.table import Table
from rich.text import Text

RAMP = ((13, 8, 135), (126, 3, 168), (204, 71, 120), (248, 149, 64), (240, 249, 33))  # dark = few bits


@dataclass(frozen=True)
class BitsReport:
    model_id: str
    report: dict | None         # core.inspection.model_report(...) or None
    message: str = ""           # why there is no report


def load_report(model_id: str | None, cache_dir: str | None) -> BitsReport:
    """The inspection report of ``model_id``'s stored run; a readable message instead when there is none."""
    if not model_id:
        return BitsReport("", None, "Select a model on the Models tab (the cursor row) to see where its bits go.")
    from visbpp.core.analysis import inspection as I

    try:
        src = I.resolve(model_id, cache_dir)[0]
        return BitsReport(model_id, I.model_report(src))
    except I.InspectError:
        return BitsReport(model_id, None, f"{model_id} has no measured run yet: select it and press r to score it.")
    except (OSError, ValueError, KeyError) as e:
        return BitsReport(model_id, None, f"{model_id}: the stored run could not be read ({e}).")


def ramp(t: float) -> Color:
    """Colour of ``t`` in [0, 1] on a perceptual dark-to-bright ramp."""
    t = min(1.0, max(0.0, t)) * (len(RAMP) - 1)
    i = min(int(t), len(RAMP) - 2)
    f = t - i
    a, b = RAMP[i], RAMP[i + 1]
    return Color.from_rgb(*(round(x + (y - x) * f) for x, y in zip(a, b)))


def heatmap(spatial: list[list[float]], width: int = 2) -> Group:
    """Each cell as ``width`` coloured blocks, then a colour scale labelled in mean bits per token."""
    lo = min(min(r) for r in spatial)
    hi = max(max(r) for r in spatial)
    span = (hi - lo) or 1.0
    lines = []
    for row in spatial:
        t = Text()
        for v in row:
            t.append(" " * width, style=f"on {ramp((v - lo) / span).name}")
        lines.append(t)
    scale = Text(f"{lo:.2f} bits ")
    for i in range(16):
        scale.append(" ", style=f"on {ramp(i / 15).name}")
    scale.append(f" {hi:.2f} bits  (mean bits per token)")
    return Group(*lines, Text(""), scale)


def bars(values: dict[str, float], title: str, width: int = 30, share: bool = True) -> Table:
    """One bar per group; ``share`` adds each group's part of the total (not for alternatives such as orders)."""
    t = Table("group", "mean bits", "", *(("share",) if share else ()), title=title, title_justify="left",
              pad_edge=False, box=None)
    total = sum(values.values()) or 1.0
    top = max(values.values()) or 1.0
    for k, v in values.items():
        t.add_row(k, f"{v:.3f}", "█" * max(1, round(width * v / top)), *((f"{100 * v / total:.1f}%",) if share else ()))
    return t


def per_class(rows: list[dict], limit: int = 12) -> Table:
    t = Table("class", "n", "BPP", title="Per-class BPP" + (f" (first {limit} of {len(rows)})" if len(rows) > limit
                                                               else ""), title_justify="left", pad_edge=False, box=None)
    for c in rows[:limit]:
        t.add_row(str(c["label"]), str(c["n"]), f"{c['bpp']:.5f}")
    return t


def render(b: BitsReport) -> Group:
    if b.report is None:
        return Group(Text(b.message))
    r = b.report
    head = Text.assemble((r["model_id"], "bold"), f"  {r['n_images']} images · BPP "
                         f"{'-' if r['bpp'] is None else format(r['bpp'], '.5f')} · mean bits/image "
                         f"{'-' if r['bits_mean'] is None else format(r['bits_mean'], '.1f')}")
    parts: list = [head]
    if r.get("by_group") is None:
        parts.append(Text("No per-token file for this run (scored by an older version): rerun it for the bit map.",
                          style="yellow"))
    else:
        if r.get("spatial"):
            parts += [Text("Mean bit map", style="bold"), heatmap(r["spatial"])]
        o = r.get("orders")
        groups = {k: v for k, v in r["by_group"].items() if not (o and k in o["bits"])}  # orders are alternatives
        if groups:
            parts.append(bars(groups, "Bits by group"))
        if o:
            parts.append(bars(o["bits"], f"Bits per image by scoring order ({o.get('order') or '?'}; BPP = mean over "
                              f"{', '.join(o['averaged'])})", share=False))
    if r.get("per_class"):
        parts.append(per_class(r["per_class"]))
    return Group(*parts)
