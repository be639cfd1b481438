"""`visbpp run` of a finished run without importing torch (core/engine/finished.py): the same output as
the engine's, the torch-free official configs, the torch-free device-type decision."""

import fnmatch
import glob
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from visbpp.core.engine import finished as FIN
from visbpp.core.engine.run_types import RunSettings
from visbpp.core.registry.catalog import model_cards
from visbpp.models import get_family, official_config, shipped_data_dir
from visbpp.models import jobs as J
from visbpp.tui.cli import app

runner = CliRunner()
MARK = "@@exit"
# the CLI in a fresh interpreter; afterwards one line: MARK, exit code, whether torch was imported
CHILD = ("import sys\nfrom visbpp.tui.cli import main\nsys.argv = ['visbpp'] + sys.argv[1:]\ncode = 0\n"
         "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\n"
         f"print({MARK!r}, code, 'torch' in sys.modules)\n")


def _child(args, home) -> tuple[list[str], int, bool]:
    env = {**os.environ, "VISBPP_HOME": str(home)}
    env.pop("WORLD_SIZE", None)
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, timeout=300)
    lines = p.stdout.splitlines()
    assert lines and lines[-1].startswith(MARK), p.stdout + p.stderr
    _, code, torch_imported = lines[-1].split()
    return lines[:-1], int(code), torch_imported == "True"


def _args(out, limit=6):
    return ["run", "--model", "micro-s", "--limit", str(limit), "--device", "cpu", "-q", "--out", str(out)]


def _normalised(lines, out):
    """Output lines with the --out folder and the elapsed seconds of the last line made comparable."""
    fixed = [ln.replace(str(out), "OUT") for ln in lines]
    if fixed and fixed[-1].startswith("results written to OUT ("):
        fixed[-1] = "results written to OUT (elapsed)"
    return fixed


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_home(tmp_path_factory):
    """A VISBPP_HOME in which micro-s has been scored on 6 held-out digits (--device cpu)."""
    home = tmp_path_factory.mktemp("startup") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("VISBPP_HOME", str(home))
    try:
        r = runner.invoke(app, _args(home.parent / "first"))
        assert r.exit_code == 0, r.output
        assert "already finished" not in r.output and "6 images, 0 skipped" in r.output
    finally:
        mp.undo()
    return home


def test_finished_rerun_imports_no_torch_and_prints_what_the_engine_prints(finished_home, tmp_path, monkeypatch):
    quick, normal = tmp_path / "quick", tmp_path / "normal"
    lines, code, torch_imported = _child(_args(quick), finished_home)
    assert code == 0 and not torch_imported, lines
    assert lines[0].startswith("run ") and "already finished: nothing recomputed" in lines[0]

    monkeypatch.setenv("VISBPP_HOME", str(finished_home))
    monkeypatch.setattr(FIN, "finished_without_torch", lambda *a, **k: None)  # the engine's own finished check
    r = runner.invoke(app, _args(normal))
    assert r.exit_code == 0, r.output
    assert _normalised(lines, quick) == _normalised(r.output.splitlines(), normal)
    got, want = _files(quick), _files(normal)
    assert set(want) >= {"per_image.csv", "summary.csv", "results.json"} and got == want


def test_a_changed_setting_is_not_taken_as_finished(finished_home, tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(finished_home))
    jobs = J.job_for_card("micro-s")
    data = str(shipped_data_dir("micro"))
    same = RunSettings(data=data, limit=6, device="cpu", out_dir=str(tmp_path / "a"))
    assert FIN.finished_without_torch([jobs], same) is not None
    for changed in (RunSettings(data=data, limit=5, device="cpu"), RunSettings(data=data, limit=6, device="cpu", dtype="bf16"),
                    RunSettings(data=data, limit=6, device="cpu", force=True)):
        assert FIN.finished_without_torch([jobs], changed) is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert FIN.finished_without_torch([jobs], same) is None  # torchrun: always the engine

    lines, code, torch_imported = _child(_args(tmp_path / "five", limit=5), finished_home)
    assert code == 0 and torch_imported
    assert not any("already finished" in ln for ln in lines) and any("5 images, 0 skipped" in ln for ln in lines)


def test_every_registry_family_is_the_models_package_of_its_name():
    from visbpp.core.registry import cards
    from visbpp.core.registry.catalog import families

    assert len(set(cards.CARD_MODULES)) == len(cards.CARD_MODULES)
    assert set(families()) <= set(cards.CARD_MODULES)   # each family has its card module (cca: fine-tunes only)
    for fam in families():
        assert get_family(fam).name == fam
        assert importlib.util.find_spec(f"visbpp.models.{fam}.official") is not None, fam
    with pytest.raises(KeyError, match="unknown family"):
        get_family("nosuchfamily")


def test_official_configs_are_the_family_objects_configs():
    from visbpp.core.registry.catalog import get_tokenizer_card

    for c in model_cards():
        assert official_config(c, get_tokenizer_card(c.tokenizer_id)) == get_family(c.family).config_for(c.id), c.id
    for fam in ("openmagvit2", "ibq"):  # the codebook size comes from the tokenizer card, written once
        c = model_cards(fam)[0]
        cfg = get_family(fam).config_for(c.id)
        assert cfg["tokenizer"]["n_embed"] == cfg["derived"]["codebook_size"] == get_tokenizer_card(c.tokenizer_id).codebook_size


def test_official_configs_and_registered_jobs_need_no_torch(tmp_path):
    code = ("import json, sys\nfrom visbpp.core.registry.catalog import get_tokenizer_card, model_cards\n"
            "from visbpp.models import official_config\n"
            "from visbpp.models.jobs import job_for_card\n"
            "configs = {c.id: official_config(c, get_tokenizer_card(c.tokenizer_id)) for c in model_cards()}\n"
            "job = job_for_card('micro-s')\n"
            "print(json.dumps([len(configs), job.tokenizer_key, 'torch' in sys.modules]))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "VISBPP_HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    n, key, torch_imported = json.loads(p.stdout.splitlines()[-1])
    assert n == len(model_cards()) and not torch_imported
    card_cfg = get_family("micro").config_for("micro-s")
    job = J.job_for_card("micro-s")
    assert key == job.tokenizer_key == J.tokenizer_key("micro", job.checkpoints["tokenizer"], card_cfg)


@pytest.mark.parametrize("name,nodes,platform,want", [
    ("auto", [], "linux", "cpu"),
    ("auto", ["/dev/nvidia0", "/dev/nvidiactl"], "linux", None),
    ("auto", ["/dev/kfd"], "linux", None),
    ("auto", ["/dev/dxg"], "linux", None),
    ("auto", [], "darwin", None),       # MPS: only torch knows
    ("auto", [], "win32", None),
    ("cpu", ["/dev/nvidia0"], "linux", "cpu"),
    ("CPU", [], "darwin", "cpu"),
    ("cuda", [], "linux", None),        # is CUDA there (else the engine's DeviceError)? only torch knows
    ("cuda:1", ["/dev/nvidia0"], "linux", None),
    ("mps", [], "darwin", None),
    ("tpu", [], "linux", None),         # the engine reports the bad name
])
def test_device_type_without_torch(monkeypatch, name, nodes, platform, want):
    monkeypatch.setattr(FIN.sys, "platform", platform)
    monkeypatch.setattr(FIN.glob, "glob", lambda pattern: [n for n in nodes if fnmatch.fnmatch(n, pattern)])
    assert FIN.device_type_without_torch(name) == want


def test_auto_cpu_only_where_torch_picks_the_cpu():
    from visbpp.core.engine.runtime import resolve_device

    if FIN.device_type_without_torch("auto") == "cpu":
        assert resolve_device("auto").type == "cpu"
    else:  # uncertain here: this machine has GPU device nodes or is not Linux
        assert not sys.platform.startswith("linux") or any(glob.glob(p) for p in FIN.GPU_DEVICE_NODES)
