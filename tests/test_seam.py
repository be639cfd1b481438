"""The family seam: one build/load path, shared RoPE, checkpoint reading of plain extras, errors."""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from visbpp.core import errors
from visbpp.core.registry.build import build_and_load, build_on_meta
from visbpp.core.registry.checkpoint_io import CheckpointError, read_checkpoint
from visbpp.models.llama import Rope2D, apply_rope, rope_2d_table


def _old_rotary(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The real-arithmetic rotation the families used before (official formula)."""
    xp = x.float().reshape(*x.shape[:-1], -1, 2)
    f = table.view(1, xp.shape[1], 1, xp.shape[3], 2)
    a, b = xp[..., 0], xp[..., 1]
    cos, sin = f[..., 0], f[..., 1]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(3).type_as(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_complex_rope_is_bit_identical_to_the_real_formula(dtype):
    g = torch.Generator().manual_seed(0)
    rope = Rope2D(grid=6, head_dim=16, base=10000.0)
    x = (torch.randn(3, 37, 4, 16, generator=g) * 5).to(dtype)
    new = apply_rope(x, rope("cpu"))
    old = _old_rotary(x, rope_2d_table(6, 16))
    assert new.dtype == dtype and torch.equal(new, old)
    # a random (cos, sin) table, not only the structured one
    t = torch.randn(37, 8, 2, generator=g)
    assert torch.equal(apply_rope(x, torch.view_as_complex(t)), _old_rotary(x, t))


def test_rope_table_cached_per_device_and_dtype():
    rope = Rope2D(grid=4, head_dim=8)
    a, b = rope("cpu"), rope(torch.device("cpu"))
    assert a is b and a.shape == (17, 4) and a.dtype == torch.complex64
    assert rope("cpu", torch.complex128) is not a
    assert torch.equal(a[0], torch.zeros(4, dtype=torch.complex64))  # the class position vanishes


def test_one_rope_and_one_strict_load_in_the_code():
    root = pathlib.Path(__file__).resolve().parents[1]
    sources = [p for d in ("core", "models") for p in (root / d).rglob("*.py")]
    defs = [p for p in sources if "def rope_2d_table" in p.read_text() or "def apply_rope" in p.read_text()]
    assert [p.name for p in defs] == ["llama.py"]
    loaders = [p.name for p in sources if "strict_load(" in p.read_text()]
    assert sorted(loaders) == ["build.py", "checkpoint_io.py"]


def test_no_id_keyed_size_table_in_models():
    """A size id's architecture is written once, on its card (``arch``): no module of visbpp.models
    names a registered model id, and every registered config is the family's base + ``card.arch``."""
    from visbpp.core.registry.catalog import model_cards
    from visbpp.models import get_family

    root = pathlib.Path(__file__).resolve().parents[1] / "models"
    ids = [c.id for c in model_cards()]
    for path in root.rglob("*.py"):
        text = path.read_text()
        named = [i for i in ids if f'"{i}"' in text or f"'{i}'" in text]
        assert not named, f"{path} names model ids {named}: put the size on its card's arch"
    for c in model_cards():
        assert c.arch, f"{c.id}: card without arch"
        fam = get_family(c.family)
        cfg = fam.config_for(c.id)
        assert cfg == fam.config_for(c.id)  # plain data, rebuilt each call


def test_meta_build_runs_no_initialiser_and_imports_no_dynamo():
    code = (
        "import sys, torch\n"
        "from visbpp.core.registry.build import build_on_meta\n"
        "from visbpp.models.llamagen.gpt import GPT, GPTConfig\n"
        "from visbpp.models.llamagen.tokenizer import VQConfig, VQTokenizer\n"
        "from visbpp.models.ibq.transformer import AdaLNGPT, GPTConfig as IC\n"
        "from visbpp.models.var.transformer import VAR, VARConfig\n"
        "from visbpp.models.var.vqvae import VQVAE, VQVAEConfig\n"
        "m = build_on_meta(lambda: GPT(GPTConfig(dim=64, n_layer=2, n_head=4, block_size=16)))\n"
        "t = build_on_meta(lambda: VQTokenizer(VQConfig(image_size=64)))\n"
        "i = build_on_meta(lambda: AdaLNGPT(IC(n_embd=64, n_head=4, n_layer=1, block_size=16)))\n"
        "v = build_on_meta(lambda: VAR(VARConfig(depth=2, embed_dim=64, num_heads=4)))\n"
        "q = build_on_meta(lambda: VQVAE(VQVAEConfig()))\n"
        "mods = (m, t, i, v, q)\n"
        "assert all(p.is_meta for x in mods for p in x.parameters())\n"
        "bad = [k for k in sys.modules if k.startswith(('torch._dynamo', 'sympy'))]\n"
        "assert not bad, bad[:5]\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_skip_init_restores_the_initialisers():
    build_on_meta(lambda: torch.nn.Embedding(4, 3))
    torch.manual_seed(0)
    e = torch.nn.Embedding(50, 4)
    assert e.weight.std() > 0.5  # normal_ ran again outside the context


def test_build_and_load_gives_fp32_eval_no_grad(tmp_path):
    lin = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5))
    sd = {k: v.to(torch.bfloat16) for k, v in lin.state_dict().items()}
    torch.save({"model": sd, "args": argparse.Namespace(lr=1e-4, name="x")}, tmp_path / "m.pt")
    seen = []

    def check(module, path):
        seen.append(path)

    m = build_and_load(tmp_path / "m.pt", lambda: torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Dropout(0.5)),
                       containers=("model",), check=check)
    assert not m.training and all(p.dtype == torch.float32 and not p.requires_grad for p in m.parameters())
    assert torch.equal(m[0].weight, sd["0.weight"].float()) and seen == [str(tmp_path / "m.pt")]


def test_training_script_namespace_is_read_as_plain_data(tmp_path):
    args = argparse.Namespace(gpt_model="GPT-B", image_size=256, lr=1e-4, ema=False, data=pathlib.Path("/d/x"))
    f = tmp_path / "ckpt.pt"
    torch.save({"model": {"w": torch.ones(2)}, "optimizer": None, "steps": 10, "args": args}, f)
    obj = read_checkpoint(f)
    assert torch.equal(obj["model"]["w"], torch.ones(2)) and obj["steps"] == 10
    assert obj["args"]["gpt_model"] == "GPT-B" and obj["args"]["image_size"] == 256 and obj["args"]["ema"] is False
    assert obj["args"]["data"] == "/d/x"


def test_exec_pickle_refused_without_running_or_ansi(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "payload": Evil()}, bad)
    with pytest.raises(CheckpointError, match="refused to load") as e:
        read_checkpoint(bad)
    assert not marker.exists() and "\x1b" not in str(e.value) and "system" in str(e.value)


def test_random_bytes_are_reported_as_unreadable_not_as_pickled_objects(tmp_path):
    f = tmp_path / "noise.pt"
    f.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(f)
    msg = str(e.value)
    assert "not a readable PyTorch checkpoint" in msg and "pickled" not in msg and "\x1b" not in msg


def test_every_project_error_is_a_visbpp_error():
    from visbpp.core.analysis.table import TableError
    from visbpp.core.engine.data import DataError
    from visbpp.core.engine.runtime import DeviceError
    from visbpp.core.registry.catalog import UnknownModelError
    from visbpp.core.registry.checkpoints import FetchError, MissingCheckpointError
    from visbpp.core.store.results import OutputError
    from visbpp.core.store.runstate import RunInProgressError
    from visbpp.models.jobs import ConfigFileError
    from visbpp.models.llamagen import ConfigError

    for cls in (CheckpointError, FetchError, MissingCheckpointError, DataError, UnknownModelError, OutputError,
                RunInProgressError, DeviceError, TableError, ConfigFileError, ConfigError,
                errors.SettingsError):
        assert issubclass(cls, errors.VisbppError), cls
    assert str(UnknownModelError("no model 'x'")) == "no model 'x'"


# --------------------------------------------------------------------------- config policy

_FAMILIES = ("llamagen", "var", "rqtransformer", "taming", "openmagvit2", "ibq")


@pytest.mark.parametrize("family", _FAMILIES)
def test_unknown_key_is_an_error_naming_key_and_file(family):
    from visbpp.models import get_family

    fam = get_family(family)
    cfg = fam.config_for(next(c.id for c in __import__("visbpp.core.registry.catalog", fromlist=["x"]).model_cards(family)))
    fam.parse_config(cfg, "my/config.json")  # the official config parses
    cfg["transformer"]["n_layre"] = 3
    with pytest.raises(errors.ConfigError, match=r"my/config\.json: unknown key 'transformer\.n_layre'"):
        fam.parse_config(cfg, "my/config.json")
    with pytest.raises(errors.ConfigError, match="n_layre"):
        fam.build_transformer(cfg)


@pytest.mark.parametrize("field,value,match", [
    ("transformer.dim", -64, "transformer.dim must be positive"),
    ("image_size", None, "image_size must not be null"),
    ("transformer.n_layer", [2], r"transformer.n_layer must be an integer"),
    ("tokenizer.codebook_l2_norm", "false", "tokenizer.codebook_l2_norm must be true or false"),
    ("transformer.n_head", 64.7, "transformer.n_head must be an integer"),
    ("transformer.n_layer", True, "transformer.n_layer must be an integer"),
])
def test_wrong_values_are_field_named_errors_not_coerced(field, value, match):
    from visbpp.models import get_family

    fam = get_family("llamagen")
    cfg = fam.config_for("llamagen-b-256")
    *path, key = field.split(".")
    d = cfg
    for p in path:
        d = d[p]
    d[key] = value
    with pytest.raises(errors.ConfigError, match=match):
        fam.parse_config(cfg, "c.json")


def test_config_run_model_id_hashes_the_config(tmp_path):
    import json

    from visbpp.models import jobs

    (tmp_path / "tok.pt").write_bytes(b"t")
    (tmp_path / "tr.pt").write_bytes(b"m")
    ids = []
    for i, grid in enumerate((16, 24)):
        from visbpp.models import get_family

        cfg = get_family("llamagen").config_for("llamagen-b-256" if grid == 16 else "llamagen-b-384")
        p = tmp_path / f"c{i}.json"
        p.write_text(json.dumps(cfg))
        ids.append(jobs.job_from_config("llamagen", str(p), str(tmp_path / "tok.pt"), str(tmp_path / "tr.pt")).model_id)
    assert ids[0] != ids[1] and all(i.startswith("llamagen:tr@") for i in ids)
    bad = tmp_path / "bad.json"
    cfg["transformer"]["dropout"] = 0.1
    bad.write_text(json.dumps(cfg))
    with pytest.raises(errors.ConfigError, match=r"bad\.json: unknown key 'transformer\.dropout'"):
        jobs.job_from_config("llamagen", str(bad), str(tmp_path / "tok.pt"), str(tmp_path / "tr.pt"))
