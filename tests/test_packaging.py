"""The built wheel holds every subpackage and data file; `python -m visbpp` is the CLI."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_python_dash_m_visbpp_is_the_cli():
    r = subprocess.run([sys.executable, "-m", "visbpp", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for cmd in ("analyze", "models", "export", "run", "bench", "fetch", "zoo"):
        assert cmd in r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                        str(REPO)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("visbpp-*.whl")
    return zipfile.ZipFile(whl)


def test_wheel_has_every_source_package_and_data_file(wheel):
    names = set(wheel.namelist())
    for top, prefix in (("core", "visbpp/core"), ("models", "visbpp/models"), ("tui", "visbpp/tui")):
        for py in (REPO / top).rglob("*.py"):
            assert f"{prefix}/{py.relative_to(REPO / top).as_posix()}" in names, py
    for f in (REPO / "core" / "assets").rglob("*"):
        if f.is_file():
            assert f"visbpp/core/{f.relative_to(REPO / 'core').as_posix()}" in names, f
    assert "visbpp/tui/app.tcss" in names and "visbpp/__main__.py" in names
    assert not any(n.startswith(("tests/", "core/", "models/", "tui/")) for n in names)  # no generic top-level names
