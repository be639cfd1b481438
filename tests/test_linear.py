"""core.linear: float32 CPU linears of scoring through oneDNN, F.linear everywhere else."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import visbpp.core.cpu_linear as CL
import visbpp.core.linear as LN
from visbpp.core.linear import Linear, linear


class _Spy:
    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, *a):
        self.calls += 1
        return self.real(*a)


@pytest.fixture
def spy(monkeypatch):
    """The oneDNN op, counting its calls, with the oneDNN backend chosen (the default on x86-64)."""
    s = _Spy(LN._OP)
    monkeypatch.setattr(LN, "_OP", s)
    monkeypatch.setattr(LN, "_BACKEND", "onednn")
    return s


def test_default_backend_is_onednn_on_x86_64():
    # torch 2.13 x86-64 CPU and CUDA wheels ship oneDNN; the tests below need it (they fail, not skip, without)
    assert LN._OP is not None and torch.backends.mkldnn.is_available()
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert os.environ.get(LN.ENV) is None and LN.backend() == ("onednn" if x86 else "aten") and LN.note() is None
    assert CL.requested("x86_64") == CL.requested("AMD64") == "onednn"
    assert LN.feature_test() is None   # the op works in this torch: its call signature is the one used here


def test_default_backend_elsewhere_is_f_linear(monkeypatch):
    monkeypatch.delenv(LN.ENV, raising=False)
    assert CL.requested("arm64") == CL.requested("aarch64") == "aten"
    monkeypatch.setenv(LN.ENV, "onednn")  # asked for explicitly
    assert CL.requested("aarch64") == "onednn"


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_env_value_is_the_default(monkeypatch, value):
    monkeypatch.setenv(LN.ENV, value)
    assert CL.requested("x86_64") == "onednn" and CL.requested("aarch64") == "aten"


def test_an_op_that_fails_its_feature_test_falls_back_to_f_linear(monkeypatch):
    """A torch whose private op changed (another signature, another result) is detected at import,
    not at call time: F.linear is used, with a note saying why."""
    monkeypatch.delenv(LN.ENV, raising=False)
    monkeypatch.setattr(CL.platform, "machine", lambda: "x86_64")

    def changed(*a):
        raise RuntimeError("mkldnn::_linear_pointwise() expected at most 5 argument(s)")

    monkeypatch.setattr(LN, "_OP", changed)
    backend, note = LN._choose()
    assert backend == "aten" and "F.linear used instead" in note and "expected at most 5" in note
    monkeypatch.setattr(LN, "_OP", lambda x, w, b, *a: F.linear(x, w, b) + 1.0)   # a wrong result
    assert LN._choose()[0] == "aten" and "another result" in LN._choose()[1]
    monkeypatch.setattr(LN, "_OP", None)
    assert LN._choose()[0] == "aten"
    monkeypatch.setenv(LN.ENV, "aten")   # asked for: no test, no note
    assert LN._choose() == ("aten", None)


def test_models_get_the_backend_linears_where_they_are_finished(tmp_path):
    """Model files build plain nn.Linear; build_and_load (core/registry/build.finish) swaps them."""
    from visbpp.core.registry.build import build_and_load

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(8, 4)
            self.b = torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False), torch.nn.GELU())

    net = Net()
    assert {type(m) for m in net.modules()} >= {torch.nn.Linear}
    torch.save(net.state_dict(), tmp_path / "net.pt")
    loaded = build_and_load(tmp_path / "net.pt", Net)
    assert type(loaded.a) is Linear and type(loaded.b[0]) is Linear
    assert list(loaded.state_dict()) == list(net.state_dict())
    x = torch.randn(3, 8)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.b(loaded.a(x)), net.b(net.a(x)), atol=2e-6, rtol=1e-6)


@pytest.mark.parametrize("shape,bias,strided", [((5, 64), True, False), ((2, 7, 64), False, False),
                                                ((3, 4, 64), True, True), ((0, 64), True, False)])
def test_onednn_linear_is_the_float32_linear(spy, shape, bias, strided):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    if strided:
        x = torch.randn(shape[1], shape[0], shape[2], generator=g).transpose(0, 1)
    w, b = torch.randn(96, 64, generator=g) / 8, (torch.randn(96, generator=g) if bias else None)
    with torch.inference_mode():
        got = linear(x, w, b)
    assert spy.calls == 1 and got.dtype == torch.float32 and got.shape == (*shape[:-1], 96)
    want = F.linear(x.double(), w.double(), None if b is None else b.double())
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=1e-6)


def test_everything_but_float32_cpu_inference_takes_f_linear(spy):
    lin = Linear(16, 8)
    x = torch.randn(3, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: F.linear casts to bf16
        assert lin(x).dtype == torch.bfloat16
    y = lin(x)  # training: autograd needs F.linear
    y.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.shape == (8, 16)
    assert linear(x.double(), lin.weight.double().detach()).dtype == torch.float64
    assert spy.calls == 0
    with torch.no_grad():
        lin(x)
    assert spy.calls == 1


def test_linear_module_has_the_nn_linear_state_dict():
    a, b = torch.nn.Linear(16, 8), Linear(16, 8)
    b.load_state_dict(a.state_dict(), strict=True)
    assert list(b.state_dict()) == ["weight", "bias"] and isinstance(b, torch.nn.Linear)
    x = torch.randn(4, 16)
    with torch.inference_mode():
        torch.testing.assert_close(b(x), a(x), atol=2e-6, rtol=1e-6)


def _backend_in_subprocess(value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, LN.ENV: value}
    return subprocess.run([sys.executable, "-c", "import visbpp.core.linear as L; print(L.backend())"],
                          env=env, capture_output=True, text=True)


def test_env_switch_keeps_every_linear_on_aten():
    r = _backend_in_subprocess("aten")
    assert r.returncode == 0 and r.stdout.strip() == "aten"


def test_env_switch_rejects_an_unknown_backend():
    r = _backend_in_subprocess("mkl")
    assert r.returncode != 0 and "VISBPP_CPU_LINEAR='mkl': expected onednn or aten" in r.stderr


def test_aten_linears_forces_f_linear_in_its_block(spy):
    x, w = torch.randn(3, 8), torch.randn(4, 8)
    with torch.inference_mode():
        with LN.aten_linears():
            linear(x, w)
        assert spy.calls == 0
        linear(x, w)
    assert spy.calls == 1


def test_flop_count_sees_the_linears_of_a_scoring_forward():
    from visbpp.core.engine.bench import count_flops

    lin = Linear(64, 32, bias=False)
    with torch.inference_mode():
        assert count_flops(lambda: lin(torch.randn(5, 64))) == 2 * 5 * 64 * 32


def test_a_compiled_forward_traces_f_linear():
    """torch.compile's CPU lowering takes only weights it packed itself: traces get F.linear."""
    seen: list[str] = []

    def backend(gm, inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    lin = Linear(16, 8)
    f = torch.compile(lambda x: lin(x), backend=backend)
    with torch.inference_mode():
        torch.testing.assert_close(f(torch.ones(3, 16)), F.linear(torch.ones(3, 16), lin.weight, lin.bias))
    assert any("linear" in s for s in seen) and not any("mkldnn" in s for s in seen), seen


def test_the_backend_is_part_of_a_cpu_runs_identity(tmp_path, monkeypatch):
    """A run made with F.linear is neither reused nor resumed by a oneDNN process, and vice versa;
    the torch-free quick check keys on the backend asked for."""
    from engine_fakes import fake_job, make_imagefolder
    from visbpp.core.engine import finished as FIN
    from visbpp.core.engine.runner import RunSettings, run

    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    make_imagefolder(tmp_path / "data")
    s = RunSettings(data=str(tmp_path / "data"), device="cpu", batch_size=2)
    monkeypatch.setattr(LN, "_BACKEND", "onednn")
    a = run([fake_job()], s)
    assert not a.already_finished and a.metadata["cpu_linear"] == "onednn"
    assert run([fake_job()], s).already_finished
    monkeypatch.setattr(LN, "_BACKEND", "aten")
    b = run([fake_job()], s)
    assert not b.already_finished and b.run_id != a.run_id and b.metadata["cpu_linear"] == "aten"
    for asked, want in (("aten", b), ("onednn", a), ("", a if CL.requested() == "onednn" else b)):
        monkeypatch.setenv(LN.ENV, asked)
        quick = FIN.finished_without_torch([fake_job()], s)
        assert quick is not None and quick.already_finished and quick.run_id == want.run_id, asked
