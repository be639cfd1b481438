"""The TUI does what `visbpp run` does: --force, --unconditional, --recon and --extra NAME=PATH, in the
Run tab and as `visbpp-tui` options."""

from __future__ import annotations

import pytest

from tui_helpers import wait_for
from visbpp.core.errors import SettingsError
from visbpp.tui import launch
from visbpp.tui import settings as st
from visbpp.tui.app import VisbppApp
from visbpp.tui.state import CustomModel, own_jobs

pytestmark = pytest.mark.anyio


def test_switches_reach_the_engine_settings_and_force_is_never_saved(tmp_path):
    ui = st.UISettings(data_dir=str(tmp_path), unconditional="on", recon="on", force="on")
    rs = st.to_run_settings(ui)
    assert rs.unconditional and rs.recon and rs.force
    off = st.to_run_settings(st.UISettings(data_dir=str(tmp_path)))
    assert not (off.unconditional or off.recon or off.force)
    saved = st.savable(ui, st.UISettings())
    assert saved.unconditional == "on" and saved.recon == "on" and saved.force == ""


def test_extra_files_parse_like_visbpp_run():
    assert st.parse_extras("backbone=/m/dino.pth, other = /x") == {"backbone": "/m/dino.pth", "other": "/x"}
    assert st.parse_extras(["backbone=/m/dino.pth"]) == {"backbone": "/m/dino.pth"}
    with pytest.raises(SettingsError, match="expected NAME=PATH"):
        st.parse_extras("backbone")


def test_own_jobs_pass_the_extra_files(monkeypatch):
    from visbpp.models import jobs as mj

    got = {}
    monkeypatch.setattr(mj, "job_from_config", lambda *a, **kw: got.update(kw) or "job")
    m = CustomModel("mine", "hita", "c.json", "t.pt", "m.pt", extras=(("backbone", "/cli/dino.pth"),))
    assert own_jobs([m])["mine"](None) == "job" and got["extras"] == {"backbone": "/cli/dino.pth"}
    own_jobs([m], {"backbone": "/tab/dino.pth"})["mine"](None)   # the Run tab's field names the file anew
    assert got["extras"] == {"backbone": "/tab/dino.pth"}


def test_visbpp_tui_options(monkeypatch):
    made = {}

    class FakeApp:
        return_code = 0

        def __init__(self, **kw):
            made.update(kw)

        def run(self, loop=None):
            pass

        def abandon_workers_on_exit(self):
            return False

    monkeypatch.setattr("visbpp.tui.app.VisbppApp", FakeApp)
    launch.main(["--family", "hita", "--config", "c.json", "--tokenizer", "t.pt", "--transformer", "m.pt",
                 "--extra", "backbone=/d/dino.pth", "--unconditional", "--recon", "--force"])
    (m,) = made["custom_models"]
    assert m.extras == (("backbone", "/d/dino.pth"),)
    assert made["switches"] == {"unconditional": "on", "recon": "on", "force": "on"}
    with pytest.raises(SystemExit, match="--extra is for a custom model"):
        launch.main(["--extra", "backbone=/d/dino.pth"])
    with pytest.raises(SystemExit, match="expected NAME=PATH"):
        launch.main(["--extra", "backbone"])


async def test_run_tab_switches_reach_the_run(home):
    """Ticking the Run tab's switches: the next run (the micro zoo, a fake engine) gets them."""
    seen = []

    def runner(jobs, settings, on_event, cancel):
        seen.append(settings)
        raise RuntimeError("stop here")   # shown as a failed run; the settings are what is checked

    app = VisbppApp(home=home, warm_torch=False, check_checkpoints=False, runner=runner, switches={"recon": "on"})
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.analysis_loads >= 1 and app.default_data is not None, 60, "the start")
        await pilot.press("2")
        for name in ("unconditional", "force"):
            box = app.query_one(f"#set-{name}")
            box.scroll_visible()
            await pilot.pause()
            box.value = True
        await pilot.pause()
        assert app.query_one("#set-recon").value   # from `visbpp-tui --recon`
        app.action_run()
        await wait_for(pilot, lambda: bool(seen), 60, "the run to start")
    (s,) = seen
    assert s.unconditional and s.recon and s.force
