"""The analysis never presents meaningless fits as results, and damaged store entries never block it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from visbpp.core.analysis.fits import TableError, analyze
from visbpp.core.analysis.table import read_csv

COLS = ["family", "size", "resolution", "fid", "rfid", "bpp"]


def _table(n=6, seed=0, **override) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    bpp = rng.uniform(0.01, 0.03, n)
    rows = [["A", f"s{i}", 256, 5 + 300 * b + rng.normal(0, 0.5), rng.uniform(1, 3), b] for i, b in enumerate(bpp)]
    df = pd.DataFrame(rows, columns=COLS)
    for col, values in override.items():
        df[col] = values
    return df


def test_all_identical_bpp_is_refused():
    with pytest.raises(TableError, match="same bpp"):
        analyze(_table(bpp=[0.02] * 6))


def test_an_absurd_bpp_is_refused():
    bpp = list(_table()["bpp"])
    bpp[2] = 1e300
    with pytest.raises(TableError, match="not a plausible BPP"):
        analyze(_table(bpp=bpp))


@pytest.mark.parametrize("col", ["fid", "rfid"])
def test_negative_fid_or_rfid_is_an_error(col):
    vals = list(_table()[col])
    vals[1] = -2.0
    with pytest.raises(TableError, match=f"column '{col}'.*negative"):
        analyze(_table(**{col: vals}))


def test_duplicate_rows_are_reported():
    df = _table()
    res = analyze(pd.concat([df, df.iloc[[0]]], ignore_index=True))
    assert any("duplicate rows" in n and "A s0" in n for n in res.notes), res.notes
    assert not any("duplicate" in n for n in analyze(df).notes)


def test_semicolon_separated_file_gets_a_hint(tmp_path):
    p = tmp_path / "t.csv"
    df = _table()
    p.write_text(";".join(COLS) + "\n" + "".join(";".join(str(v) for v in r) + "\n" for r in df.values.tolist()))
    with pytest.raises(TableError, match="semicolon-separated"):
        read_csv(p)


def _entry(store, name, doc):
    (store / name).mkdir(parents=True)
    (store / name / "results.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))


def _doc(models):
    return {"run_id": "x", "complete": True, "finished_at": "2026-01-01T00:00:00Z",
            "metadata": {"dtype": "fp32"}, "models": models}


def _model(mid, bpp, n=100):
    return {"model_id": mid, "bpp": bpp, "n_images": n, "dtype": "fp32"}


def test_every_damaged_store_entry_is_skipped_with_one_warning_naming_it(tmp_path, monkeypatch):
    from visbpp.tui.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("VISBPP_HOME", str(home))
    store = home / "results"
    _entry(store, "good", _doc([_model("llamagen-b-256", 0.5)]))
    damaged = {
        "wrongtype": _doc("oops"),
        "negative": _doc([_model("llamagen-l-256", -0.2)]),
        "intid": _doc([_model(7, 0.3)]),
        "truncated": json.dumps(_doc([_model("var-d16", 0.4)]))[:40],
        "empty": "",
        "nan": json.dumps(_doc([_model("var-d20", float("nan"))])),
    }
    for name, doc in damaged.items():
        _entry(store, name, doc)
    # the good entry (100 images) meets the table's BPPs: fitted together on request
    r = CliRunner().invoke(app, ["analyze", "--set", "all", "--json", "--allow-mixed"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert "groups" in d
    for name in damaged:
        hits = [ln for ln in r.stderr.splitlines() if f"results/{name}/results.json" in ln]
        assert len(hits) == 1, (name, r.stderr)
    assert "results/good/" not in r.stderr
