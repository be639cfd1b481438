"""Import direction (core -/-> models, tui; models -/-> tui; only tui imports textual/typer; core's
rooms engine | analysis -> store -> registry) is enforced by import-linter's contracts in
pyproject.toml, and the absence of import cycles inside ``visbpp.core`` by grimp, both run by
``scripts/lint_imports.py`` (also in ``.ci/run``). This test runs them so a plain ``pytest`` checks
the boundaries too."""

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
    assert "0 broken" in out.stdout and "visbpp.core import cycles: 0" in out.stdout


def _lint_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lint_imports", ROOT / "scripts" / "lint_imports.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_cycle_check_finds_cycles():
    find = _lint_module().find_cycles
    assert find({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find({"a": {"a"}, "b": {"c"}, "c": {"b", "d"}, "d": set()}) == [["a"], ["b", "c"]]
    chain = {f"m{i}": {f"m{i + 1}"} for i in range(5000)} | {"m5000": {"m0"}}   # deep: no recursion limit
    assert find(chain) == [sorted(chain)]


def test_a_cycle_inside_core_fails_the_lint(tmp_path):
    """A function-level import that closes a circle counts (it is an import cycle all the same)."""
    import json
    import shutil

    tree = tmp_path / "tree"
    pkg = tree / "visbpp"
    shutil.copytree(ROOT / "core", pkg / "core", ignore=shutil.ignore_patterns("assets", "__pycache__"))
    (pkg / "__init__.py").touch()

    def cycles() -> list:   # a fresh process: this one has imported the real visbpp already
        code = ("import importlib.util, json, sys\n"
                "spec = importlib.util.spec_from_file_location('lint', sys.argv[1])\n"
                "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
                "print(json.dumps(mod.core_cycles(sys.argv[2])))\n")
        out = subprocess.run([sys.executable, "-c", code, str(ROOT / "scripts" / "lint_imports.py"), str(tree)],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    assert cycles() == []
    with open(pkg / "core" / "engine" / "context.py", "a") as f:
        f.write("\n\ndef _late():\n    from visbpp.core.engine import runner  # noqa: F401\n")
    (cycle,) = cycles()
    assert {"visbpp.core.engine.context", "visbpp.core.engine.runner"} <= set(cycle)
