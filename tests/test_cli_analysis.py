"""CLI of the analysis: ``visbpp analyze`` (JSON contract, bad input, model sets, figures),
``visbpp models`` and ``visbpp export``."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import statsmodels.formula.api as smf
import typer
from typer.testing import CliRunner

from test_analysis import PUBLISHED_FITS, published_frame, random_table
from visbpp.core.registry import catalog
from visbpp.core.registry.catalog import Published
from visbpp.tui import cmd_analysis

runner = CliRunner()

# The analysis commands on their own app (the full CLI is exercised by test_console_script_json).
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
cmd_analysis.register(app)


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def one_json(result) -> dict:
    assert result.exit_code == 0, result.stderr
    out = result.stdout.strip()
    assert out.count("\n") == 0, "exactly one JSON object on one line"
    return json.loads(out)


def check_contract(d: dict) -> None:
    assert {"groups", "ancova", "global"} <= set(d)
    for g in d["groups"]:
        assert {"group", "n", "slope", "intercept", "r2", "pearson_r", "p_value", "slope_ci"} <= set(g)
        if g["n"] < 3:
            assert g["slope"] is None
    gl = d["global"]
    assert {"n", "linear", "bilinear"} <= set(gl)
    assert {"r2", "coef", "pvalues"} <= set(gl["linear"])
    assert set(gl["bilinear"]["coef"]) == set(gl["bilinear"]["pvalues"]) == {"Intercept", "bpp", "rfid"}


# ---------------------------------------------------------------------------------------------
# analyze

def test_analyze_json_bundled():
    d = one_json(invoke("analyze", "--json"))
    check_contract(d)
    by = {g["group"]: g for g in d["groups"]}
    for name, (n, slope, r2, rho) in PUBLISHED_FITS.items():
        assert by[name]["n"] == n
        assert abs(by[name]["slope"] - slope) / slope < 1e-3
        assert abs(by[name]["r2"] - r2) <= 0.0015 and abs(by[name]["pearson_r"] - rho) <= 0.0015
    assert by["LlamaGen-256"]["slope"] is None and by["VQGAN (Taming)"]["slope"] is None
    assert abs(d["global"]["linear"]["r2"] - 0.446) <= 0.0015
    assert abs(d["global"]["bilinear"]["r2"] - 0.746) <= 0.0015
    assert d["global"]["bilinear"]["pvalues"]["rfid"] < 0.05
    assert d["global"]["n"] == 14 and d["fid_source"] == "paper"
    assert [(w["kind"], w["fit"]) for w in d["warnings"]] == [("bpp_provenance", "global")]


def test_analyze_json_csv(tmp_path):
    df = random_table(7)
    path = tmp_path / "some.csv"
    df.to_csv(path, index=False)
    d = one_json(invoke("analyze", str(path), "--json", "--predict", "0.02", "1.5"))
    check_contract(d)
    bil = smf.ols("fid ~ bpp + rfid", data=df).fit()
    for k in ("Intercept", "bpp", "rfid"):
        assert math.isclose(d["global"]["bilinear"]["coef"][k], bil.params[k], rel_tol=1e-9)
    sub = df[df.family == "Gamma"]
    g = next(g for g in d["groups"] if g["group"] == "Gamma")
    assert math.isclose(g["slope"], smf.ols("fid ~ bpp", data=sub).fit().params["bpp"], rel_tol=1e-9)
    pred = bil.get_prediction(pd.DataFrame({"bpp": [0.02], "rfid": [1.5]})).summary_frame(alpha=0.05).iloc[0]
    assert math.isclose(d["prediction"]["fid"], pred["mean"], rel_tol=1e-9)
    assert math.isclose(d["prediction"]["pi"][1], pred["obs_ci_upper"], rel_tol=1e-9)


def test_analyze_human_output():
    r = invoke("analyze")
    assert r.exit_code == 0
    for text in ("LlamaGen-384", "RQ-Transformer", "VAR", "fid ~ bpp + rfid", "ANCOVA", "FID vs BPP"):
        assert text in r.stdout
    assert "16792.7" in r.stdout          # LlamaGen-384 slope, 6 significant digits


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "t.csv"
    p.write_text(text)
    return p


def _csv_text(mutate=None) -> str:
    df = published_frame()
    if mutate:
        df = mutate(df)
    return df.to_csv(index=False)


@pytest.mark.parametrize("text, needle", [
    (_csv_text(lambda d: d.drop(columns="bpp")), "missing column 'bpp'"),
    (_csv_text(lambda d: d.assign(rfid=d.rfid.astype(object).where(d.index != 5, "n/a?"))),
     "column 'rfid', row 6 (line 7 of the file)"),
    (_csv_text(lambda d: d.assign(fid=d.fid.where(d.index != 8, float("nan")))), "column 'fid', row 9"),
    ("", "the file is empty"),
    ("family,size,resolution,fid,rfid,bpp\n", "no rows"),
    ("family,size,resolution,fid,rfid,bpp\nVAR,d16,256,3.3,1.78,0.0303\n", "only 1 row"),
    ('family,size\n"unterminated,1\n', "t.csv"),
])
def test_analyze_bad_input(tmp_path, text, needle):
    p = _write(tmp_path, text)
    for extra in ([], ["--json"]):
        r = invoke("analyze", str(p), *extra)
        assert r.exit_code == 2
        assert r.stdout == ""
        err = r.stderr
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert needle in err and "Traceback" not in err


def test_analyze_csv_with_set_is_an_error(tmp_path):
    p = _write(tmp_path, _csv_text())
    r = invoke("analyze", str(p), "--set", "all")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "--set" in r.stderr


def test_analyze_missing_file():
    r = invoke("analyze", "/nonexistent/table.csv")
    assert r.exit_code == 2 and r.stderr == "error: /nonexistent/table.csv: no such file\n"


# ---------------------------------------------------------------------------------------------
# model sets

@pytest.fixture
def fake_results(monkeypatch):
    """A results store holding what the test puts in ``store``."""
    from visbpp.core.analysis import table

    store: list[dict] = []
    monkeypatch.setattr(table, "measured_results", lambda cache_dir=None, **kw: list(store))
    return store


@pytest.fixture
def extra_card(monkeypatch):
    base = catalog.get_card("llamagen-l-256")
    card = dataclasses.replace(base, id="x-llamagen-256", aliases=(), in_published_table=False, reference_bpp=None,
                               fid=Published(3.05, "test README", "cfg 3.0, 10k samples"), alt_fid=(), group=None)
    models, toks = catalog._all()
    monkeypatch.setattr(catalog, "_all", lambda: (models + (card,), toks))
    return card


def test_set_all_mixed_protocols_warns(fake_results, extra_card):
    fake_results.append({"model_id": extra_card.id, "bpp": 0.0137, "n_images": 50})
    d = one_json(invoke("analyze", "--set", "all", "--json", "--allow-mixed"))
    check_contract(d)
    assert d["global"]["n"] == 15
    g = next(g for g in d["groups"] if g["group"] == "LlamaGen-256")
    assert g["n"] == 3 and g["slope"] is not None
    warned = {(w["kind"], w["fit"]) for w in d["warnings"]}
    assert ("fid_protocol", "global") in warned and ("fid_protocol", "LlamaGen-256") in warned
    w = next(w for w in d["warnings"] if (w["kind"], w["fit"]) == ("fid_protocol", "LlamaGen-256"))
    assert {"value": "cfg 3.0, 10k samples", "models": ["x-llamagen-256"]} in w["values"]
    assert ("bpp_basis", "global") in warned and ("bpp_basis", "LlamaGen-256") in warned
    r = invoke("analyze", "--set", "all", "--no-plots", "--allow-mixed")
    assert r.exit_code == 0
    assert "warning:" in r.stdout and "mixes FID protocols" in r.stdout and "x-llamagen-256" in r.stdout


def test_set_published_unchanged(fake_results, extra_card):
    base = one_json(invoke("analyze", "--json"))
    fake_results.append({"model_id": extra_card.id, "bpp": 0.0137})
    fake_results.append({"model_id": "var-d16", "bpp": 0.05})
    assert one_json(invoke("analyze", "--set", "published", "--json")) == base


# ---------------------------------------------------------------------------------------------
# figures, models, export

def test_plot_writes_the_figures(tmp_path):
    pytest.importorskip("matplotlib")
    d = one_json(invoke("analyze", "--json", "--plot", str(tmp_path / "figs")))
    names = sorted(Path(p).name for p in d["figures"])
    stems = ("global_fid_vs_bpp", "groups_fid_vs_bpp", "bilinear_predicted_vs_observed",   # the paper's
             "forms_fid_vs_bpp", "scaling_bpp_vs_params", "baseline_bits", "pairs_delta_bpp_vs_delta_fid",
             "validity_predicted_vs_observed")                                                # beyond it
    assert names == sorted(f"{s}.{e}" for s in stems for e in ("png", "pdf"))
    for p in d["figures"]:
        assert Path(p).stat().st_size > 1000
        if p.endswith(".png"):
            assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_models_lists_registry():
    r = invoke("models")
    assert r.exit_code == 0
    for c in catalog.model_cards():
        assert c.id in r.stdout
    assert "Sources:" in r.stdout and "published table" in r.stdout
    d = one_json(invoke("models", "--json"))
    assert [m["id"] for m in d["models"]] == [c.id for c in catalog.model_cards()]
    m = next(m for m in d["models"] if m["id"] == "var-d16")
    assert m["fid"]["value"] == 3.30 and m["fid"]["source"] and m["reference_bpp"] == 0.0303021


def test_export(tmp_path, fake_results, extra_card):
    fake_results.append({"model_id": extra_card.id, "bpp": 0.0137})
    out = tmp_path / "merged.csv"
    r = invoke("export", str(out))
    assert r.exit_code == 0, r.stderr
    df = pd.read_csv(out)
    assert len(df) == 15 and "x-llamagen-256" in set(df.model_id)
    assert df.loc[df.model_id == "x-llamagen-256", "bpp_source"].item() == "measured"
    r = invoke("export", str(out), "--set", "published")
    assert r.exit_code == 0 and len(pd.read_csv(out)) == 14
    r = invoke("export", str(tmp_path / "no" / "such" / "x.csv"))
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1


def test_console_script_json():
    exe = Path(sys.executable).with_name("visbpp")
    if not exe.exists():
        pytest.skip("console script not installed next to the interpreter")
    p = subprocess.run([str(exe), "analyze", "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    check_contract(json.loads(p.stdout))
    p = subprocess.run([str(exe), "analyze", "/nonexistent.csv"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_row_with_an_extra_field_is_named_not_shifted(tmp_path):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    p = tmp_path / "t.csv"
    p.write_text("family,size,resolution,fid,rfid,bpp\nA,1,256,3,1,0.01\nA,2,256,2,1,0.02,9\nA,3,256,1,1,0.03\n")
    r = CliRunner().invoke(app, ["analyze", str(p), "--json"])
    assert r.exit_code == 2
    assert "line 3 has 7 fields, the header has 6" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_exports_follow_the_umask(tmp_path, mask):
    """`visbpp export` and the TUI's e/j files get the permissions the umask gives a new file."""
    import os
    import stat

    from visbpp.tui.results_view import export_json, export_table

    old = os.umask(mask)
    try:
        r = invoke("export", str(tmp_path / "cli.csv"))
        assert r.exit_code == 0 and str(tmp_path / "cli.csv") in " ".join(r.stderr.split())
        export_table([], tmp_path / "tui.csv")
        export_json({"a": 1}, tmp_path / "tui.json")
    finally:
        os.umask(old)
    for name in ("cli.csv", "tui.csv", "tui.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


# ------------------------------------------------------------------ plots: markers, legends, labels, equation


def test_group_markers_are_distinct_and_never_the_outliers():
    from visbpp.core.analysis import plots

    looks = [plots.style(i)[::2] for i in range(64)]   # (marker, colour)
    assert len(set(looks)) == 64
    assert all(m != plots.OUTLIER_MARKER for m, _ in looks)


def test_bilinear_equation_is_the_statsmodels_fit_with_its_cis():
    from visbpp.core.analysis import plots
    from visbpp.core.analysis.fits import analyze

    df = published_frame()
    res = analyze(df)
    ols = smf.ols("fid ~ bpp + rfid", data=df).fit()
    ci = ols.conf_int(alpha=0.05)
    eq = plots.bilinear_equation(res)

    def g(v):
        return f"{v:.4g}".replace("-", "−")

    a, b, c = ols.params["Intercept"], ols.params["bpp"], ols.params["rfid"]
    sign = (lambda v: "−" if v < 0 else "+")
    assert eq.startswith(f"FID = {g(a)} {sign(b)} {g(abs(b))}·BPP {sign(c)} {g(abs(c))}·rFID; 95% CIs: ")
    assert f"rFID [{g(ci.loc['rfid', 0])}, {g(ci.loc['rfid', 1])}]" in eq


def test_terminal_plots_legend_below_the_data_and_the_bilinear_equation(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    r = invoke("analyze")
    assert r.exit_code == 0
    lines = r.stdout.replace("\u00a0", " ").splitlines()
    legend = [i for i, ln in enumerate(lines) if ln.startswith("• VQGAN (Taming)  x RQ-Transformer")]
    frames = [i for i, ln in enumerate(lines) if ln.lstrip().startswith("└")]
    assert len(legend) == 2 and all(any(f < i for f in frames) for i in legend)   # each legend under a plot frame
    assert "o Cook's-distance outlier (llamagen-b-384)" in " ".join(r.stdout.split())
    assert any(ln.startswith("FID = ") and "95% CIs" in ln for ln in lines)
    plot = "\n".join(lines[frames[0] - 16:frames[0]])
    assert "481M" in plot and "d30" in plot      # points labelled with model sizes


def test_figures_label_sizes_keep_the_legend_outside_and_ring_outliers(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from visbpp.core.analysis.fits import analyze
    from visbpp.tui import figures

    figs = {}
    monkeypatch.setattr(figures, "_save", lambda fig, out, stem: figs.setdefault(stem, fig) and [])
    monkeypatch.setattr("matplotlib.pyplot.close", lambda fig=None: None)
    figures.write_figures(analyze(published_frame()), tmp_path)
    for stem in ("global_fid_vs_bpp", "groups_fid_vs_bpp", "bilinear_predicted_vs_observed"):
        ax = figs[stem].axes[0]
        texts = {t.get_text() for t in ax.texts}
        assert {"481M", "d16", "XXL"} <= texts, stem
        legend = ax.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1, stem
        labels = [t.get_text() for t in legend.get_texts()]
        assert "Cook's-distance outlier" in labels, stem
        markers = {c.get_paths()[0].vertices.tobytes() for c in ax.collections if c.get_label().startswith(
            ("VQGAN", "RQ-", "LlamaGen", "VAR"))}
        assert len(markers) == 5, stem   # one marker shape per group
    assert any(t.get_text().startswith("FID = ") for t in figs["bilinear_predicted_vs_observed"].axes[0].texts)
