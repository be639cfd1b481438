"""The shared numerics: chunked/blocked NLL and the fused RMSNorm equal their written-out forms bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from visbpp.core.nll import chunked_nll, nll_from_logits
from visbpp.models.common import RMSNorm, rms_norm_reference


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("block_bytes", [1, 4 * 100 * 3, 2**30])
def test_blocked_nll_is_the_full_log_softmax_bit_for_bit(dtype, block_bytes):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 7, 100, generator=g) * 4).to(dtype)
    targets = torch.randint(0, 100, (3, 7), generator=g)
    want = -torch.log_softmax(logits.float(), -1).gather(-1, targets[..., None])[..., 0]
    got = nll_from_logits(logits, targets, block_bytes=block_bytes)
    assert got.dtype == torch.float32 and got.shape == (3, 7)
    assert torch.equal(got, want)


def test_blocked_nll_under_autocast_stays_float32():
    g = torch.Generator().manual_seed(1)
    head = torch.nn.Linear(16, 300)
    h, t = torch.randn(2, 9, 16, generator=g), torch.randint(0, 300, (2, 9), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(h)
        got = chunked_nll(h, head, t, chunk=4)
    assert logits.dtype == torch.bfloat16
    want = -torch.log_softmax(logits.float(), -1).gather(-1, t[..., None])[..., 0]
    assert torch.equal(got, want)
    # and it is the real cross-entropy, not an artefact of the formula above
    torch.testing.assert_close(got.mean(), F.cross_entropy(logits.float().flatten(0, 1), t.flatten()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_rmsnorm_equals_the_written_out_formula(dtype, scale):
    g = torch.Generator().manual_seed(2)
    norm = RMSNorm(768, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.1 * torch.randn(768, generator=g))
    x = (torch.randn(4, 33, 768, generator=g) * scale).to(dtype)
    got = norm(x)
    want = rms_norm_reference(x, norm.weight, 1e-5)
    assert got.dtype == want.dtype
    assert torch.equal(got, want)
    # the reference is the Llama RMSNorm itself
    xf = x.double()
    by_hand = (xf / (xf.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()) * norm.weight.double()
    torch.testing.assert_close(want.double(), by_hand, rtol=1e-2 if dtype == torch.bfloat16 else 1e-5, atol=1e-6)


def test_rmsnorm_under_bf16_autocast_matches_the_formula():
    g = torch.Generator().manual_seed(3)
    norm, lin = RMSNorm(64), torch.nn.Linear(64, 64)
    x = torch.randn(2, 5, 64, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = lin(x)
        assert torch.equal(norm(h), rms_norm_reference(h, norm.weight, norm.eps))
