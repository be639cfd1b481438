"""Every test gets its own VISBPP_HOME (cache, results store, checksums), so the suite never reads
or writes the user's real cache; tests that need a particular home set it themselves."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_visbpp_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path_factory.mktemp("visbpp_home")))
