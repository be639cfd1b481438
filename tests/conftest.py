"""Every test gets its own VISBPP_HOME (cache, results store, checksums), so the suite never reads
or writes the user's real cache; tests that need a particular home set it themselves."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_visbpp_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path_factory.mktemp("visbpp_home")))


@pytest.fixture
def anyio_backend():
    """The Textual Pilot tests run on asyncio."""
    return "asyncio"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An existing, empty VISBPP_HOME for the test (the TUI and CLI tests show or inspect it)."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("VISBPP_HOME", str(h))
    return h
