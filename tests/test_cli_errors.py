"""Usage errors of the console script are one ``error:`` line with exit code 2, like every other error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

VISBPP = Path(sys.executable).parent / "visbpp"   # the console script of this environment


def _visbpp(*args, tmp_path):
    env = {"VISBPP_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "80"}
    return subprocess.run([str(VISBPP), *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("args, needle", [
    (("analyze", "--set", "mirco"), "error: Invalid value for '--set': 'mirco' is not one of 'published', 'all', 'micro'. "
                                     "(see `visbpp analyze --help`)"),
    (("runs", "lst"), "error: No such command 'lst'. Did you mean 'list'? (see `visbpp runs --help`)"),
    (("runs", "show"), "error: Missing argument 'RUN'. (see `visbpp runs show --help`)"),
    (("models", "--nope"), "error: No such option: --nope (see `visbpp models --help`)"),
])
def test_usage_errors_are_one_line(tmp_path, args, needle):
    r = _visbpp(*args, tmp_path=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [needle]
    assert "╭" not in r.stderr and "Traceback" not in r.stderr
