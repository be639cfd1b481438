"""Import direction (core -/-> models, tui; models -/-> tui; only tui imports textual/typer) is
enforced by import-linter's contracts in pyproject.toml, run by ``scripts/lint_imports.py`` (also
in ``.ci/run``). This test runs them so a plain ``pytest`` checks the boundaries too."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_contracts_are_declared():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    forbidden = {(s, f) for c in contracts if c["type"] == "forbidden"
                 for s in c["source_modules"] for f in c["forbidden_modules"]}
    assert {("visbpp.core", "visbpp.models"), ("visbpp.core", "visbpp.tui"), ("visbpp.models", "visbpp.tui"),
            ("visbpp.core", "textual"), ("visbpp.core", "typer"), ("visbpp.models", "textual"),
            ("visbpp.models", "typer")} <= forbidden
    layers = [c["layers"] for c in contracts if c["type"] == "layers"]
    assert ["visbpp.core.engine | visbpp.core.analysis", "visbpp.core.store", "visbpp.core.registry"] in layers


def test_import_contracts_hold():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint_imports.py")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
