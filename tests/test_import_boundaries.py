"""Import direction: core and models never pull in the front-end libraries (textual, typer)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FRONTEND = ("textual", "typer", "textual_plotext", "visbpp.tui")


def _loaded_after(code: str) -> dict:
    probe = code + "\nimport json, sys\nprint(json.dumps({m: m in sys.modules for m in %r}))" % (FRONTEND,)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import visbpp.core",
    # every core module the front-ends use, plus the engine path a run takes
    "import visbpp.core.registry, visbpp.core.events, visbpp.core.engine, visbpp.core.results, "
    "visbpp.core.table, visbpp.core.analysis, visbpp.core.checkpoints",
    "import visbpp.models, visbpp.models.jobs",
])
def test_core_and_models_do_not_import_frontends(code):
    loaded = _loaded_after(code)
    assert not any(loaded.values()), f"{code!r} imported {[m for m, v in loaded.items() if v]}"


def test_probe_detects_a_frontend_import():
    # the check itself can fail: importing the TUI does load textual
    assert _loaded_after("import visbpp.tui.app")["textual"] is True
