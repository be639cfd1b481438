"""Regenerate the README's pictures: the TUI's Plots tab as an SVG (Textual's own screenshot, 120x40,
the bundled published table) and the per-group FID-vs-BPP figure of `visbpp analyze --plot`.

    .venv/bin/python scripts/readme_assets.py        # writes docs/tui_plots.svg and docs/groups_fid_vs_bpp.png
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
SIZE = (120, 40)


async def tui_screenshot(home: str, out: Path) -> None:
    from visbpp.tui.app import VisbppApp

    app = VisbppApp(home=home, warm_torch=False, check_checkpoints=False)
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(600):   # the table and its analysis come from a worker
            if app.analysis_loads:
                break
            await pilot.pause(0.1)
        await pilot.press("4")
        await pilot.pause(0.5)
        app.save_screenshot(filename=out.name, path=str(out.parent))


def figure(out: Path) -> None:
    from visbpp.core.analysis.fits import analyze
    from visbpp.core.analysis.table import merged_table
    from visbpp.tui.figures import write_figures

    with tempfile.TemporaryDirectory() as tmp:
        write_figures(analyze(merged_table(None, "published")), tmp)
        shutil.copy(Path(tmp) / out.name, out)


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        os.environ["VISBPP_HOME"] = home   # an empty results store: the published table alone
        asyncio.run(tui_screenshot(home, DOCS / "tui_plots.svg"))
    figure(DOCS / "groups_fid_vs_bpp.png")
    print(f"wrote {DOCS / 'tui_plots.svg'} and {DOCS / 'groups_fid_vs_bpp.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
