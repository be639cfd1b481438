"""`visbpp bench` internals: FLOPs from shapes, throughput fields, bf16 vs fp32 gap."""

import pytest
import torch

from engine_fakes import FakeTokenizer
from visbpp.core.engine import bench as B
from visbpp.core.nll import nll_from_logits

D, V = 12, 16


class LinearAR(torch.nn.Module):
    """token j predicted from an embedding of token j-1 through one D x V matmul."""

    family, tokens_per_image, vocab_size, num_classes = "fake", 16, V, 4

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(V + 1, D)
        self.head = torch.nn.Linear(D, V, bias=False)

    def token_nll(self, tokens, labels):
        prev = torch.cat([torch.full_like(tokens[:, :1], V), tokens[:, :-1]], 1)
        return nll_from_logits(self.head(self.emb(prev)), tokens)


def test_bench_fields_and_flops(monkeypatch):
    monkeypatch.delenv("VISBPP_PEAK_TFLOPS", raising=False)
    r = B.bench(FakeTokenizer(), LinearAR(), batch_size=3, device="cpu", iters=1)
    assert r["tokens_per_image"] == 16 and r["batch_size"] == 3 and r["resolution"] == 8
    assert r["ar_flops_per_image"] == 2 * 16 * D * V  # one (L x D) @ (D x V) matmul per image
    assert r["ar_images_per_s"] > 0 and r["ar_tokens_per_s"] == pytest.approx(16 * r["ar_images_per_s"])
    assert r["ar_mfu"] is None and r["peak_memory_bytes"] > 0
    assert r["bpp_bf16"] is not None and r["bf16_bpp_rel_diff"] < 0.05
    monkeypatch.setenv("VISBPP_PEAK_TFLOPS", "1")
    r = B.bench(FakeTokenizer(), LinearAR(), batch_size=3, device="cpu", iters=1, compare_dtypes=False)
    assert r["ar_mfu"] == pytest.approx(r["ar_flops_per_image"] * r["ar_images_per_s"] / 1e12)


def test_peak_table_lookup(monkeypatch):
    monkeypatch.delenv("VISBPP_PEAK_TFLOPS", raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100 80GB HBM3")
    cuda = torch.device("cuda", 0)
    assert B.peak_flops(cuda, "bf16", False) == 989e12
    assert B.peak_flops(cuda, "fp32", True) == 494e12 and B.peak_flops(cuda, "fp32", False) == 67e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Some Future GPU")
    assert B.peak_flops(cuda, "bf16", False) is None
    assert B.peak_flops(torch.device("cpu"), "fp32", False) is None


def test_bench_cli_is_reproducible():
    """Seeded random weights, images and labels: two runs print the same BPPs; another seed differs."""
    import json

    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    def bpp(*extra):
        r = CliRunner().invoke(app, ["bench", "--model", "micro-s", "--device", "cpu", "--iters", "1",
                                     "--batch-size", "2", "--json", *extra])
        assert r.exit_code == 0, r.output
        d = json.loads(r.output.strip().splitlines()[-1])
        return d["bpp_fp32"], d["bpp_bf16"]

    first = bpp()
    assert bpp() == first
    assert bpp("--seed", "1")[0] != first[0]


def test_bench_encodes_with_tf32_off():
    seen = []

    class Rec(FakeTokenizer):
        def encode(self, x):
            seen.append((torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()))
            return super().encode(x)

    B.bench(Rec(), LinearAR(), batch_size=2, device="cpu", tf32=True, iters=1, flops=False, compare_dtypes=False)
    assert seen and set(seen) == {(False, "highest")}
