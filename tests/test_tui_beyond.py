"""The TUI's views of the analyses beyond the straight line: a compact table per topic in the Stats tab
(80×24, scrolling) and the token baseline of the Results tab's cursor row."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.formula.api as smf
from rich.console import Console
from rich.table import Table

from test_tui import _loaded, make_app
from visbpp.core.analysis.table import fit_rows, merged_table, validate
from visbpp.tui import beyond_view as bv
from visbpp.tui.results_view import load_bundle
from visbpp.tui.stats_view import statistics
from visbpp.tui.widgets.result_detail import ResultDetail
from visbpp.tui.widgets.results_table import ResultsTable
from visbpp.tui.widgets.stats_panel import StatsPanel


def _text(renderable, width=80) -> str:
    c = Console(width=width, record=True, file=open("/dev/null", "w"))
    c.print(renderable)
    return c.export_text()


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    return load_bundle(str(tmp_path_factory.mktemp("home")), "published").analysis


def test_compact_tables_fit_80_columns_and_show_statsmodels_numbers(analysis):
    tables = [r for r in bv.renderables(analysis, compact=True) if isinstance(r, Table)]
    assert len(tables) == 4   # forms, scaling, baseline, validity (no pairs on the published table: a note)
    console = Console(width=200)
    for t in tables:
        assert console.measure(t).maximum <= 78, t.title   # inside the panel at 80 columns, unsqueezed
    out = _text(statistics(analysis))
    df = validate(fit_rows(merged_table(None, "published"))[0])
    lin = smf.ols("fid ~ bpp", df).fit().aic
    loglog = smf.ols("np.log(fid) ~ np.log(bpp)", df).fit().aic + 2 * np.log(df["fid"]).sum()
    assert f"{lin - loglog:.1f}" in out                          # ΔAIC of the straight line, global row
    for title in ("Functional form of FID vs BPP", "Size scaling per group", "What the AR context buys",
                  "Same tokenizer, different AR model: no pairs", "Predictive validity"):
        assert title in out
    cover = analysis["validity"]["leave_one_model_out"]["overall"]
    assert f"{cover['covered']}/{cover['n_predicted']} ({100 * cover['coverage']:.0f}%)" in out



@pytest.mark.anyio
async def test_stats_tab_scrolls_to_every_topic_at_80x24(home):
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        await pilot.press("5")
        await pilot.pause()
        panel = app.query_one(StatsPanel)
        assert panel.max_scroll_y > 0   # more than a screen: it scrolls
        panel.scroll_end(animate=False)
        await pilot.pause()
        assert panel.scroll_y == panel.max_scroll_y
        shown = app.export_screenshot().replace("&#160;", " ")   # the visible screen, scrolled to the end
        assert "prediction intervals" in shown and "Predictive" in shown


@pytest.mark.anyio
async def test_results_detail_shows_the_cursor_rows_baseline(home):
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one(ResultsTable)
        table.focus()
        table.move_cursor(row=10)   # var-d16 in the published table's order
        await pilot.pause()
        detail = str(app.query_one(ResultDetail).render())
        assert detail.startswith("var-d16: raw index rate 0.04150")   # 680 tokens x 12 bits / (3 x 256²)
        assert "no measured run" in detail
        assert [r.raw_rate_bpp for r in table.result_rows if r.model_id == "var-d16"] == [pytest.approx(680 * 12 / 196608)]


def test_pairs_and_baseline_figures_draw_their_data():
    import pandas as pd

    from visbpp.core.analysis.pairs import shared_tokenizer_pairs
    from visbpp.tui.figures import _pyplot
    from visbpp.tui.figures_beyond import _baseline, _pairs

    plt = _pyplot()
    df = pd.DataFrame({"model_id": ["a", "b", "c", "d"], "tokenizer_id": ["t"] * 4, "resolution": [256] * 4,
                       "params": [1e8, 1.1e8, 3e8, 3.2e8], "bpp": [0.1, 0.09, 0.08, 0.085], "fid": [3.0, 2.5, 2.0, 2.2]})
    pairs = shared_tokenizer_pairs(df).to_dict()
    fig = _pairs(plt, pairs, "FID")
    offsets = [tuple(c.get_offsets()[0]) for c in fig.axes[0].collections]
    assert offsets == [pytest.approx((p["d_bpp"], p["d_fid"])) for p in pairs["pairs"]] and len(offsets) == 2
    plt.close(fig)
    base = {"models": [{"model_id": "m", "bpp": 0.3, "raw_rate_bpp": 0.58, "unigram_bpp": 0.53, "ar_share": 1 - 0.3 / 0.53}]}
    fig = _baseline(plt, base)
    widths = sorted(round(b.get_width(), 6) for b in fig.axes[0].patches)
    assert widths == [0.3, 0.53, 0.58]
    assert any("AR share 43%" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
