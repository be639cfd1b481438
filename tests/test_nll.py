"""The shared numerics: the chunked/blocked NLL paths against the float64 log-softmax, and the fused
RMSNorm equal to its written-out form bit for bit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from visbpp.core.nll import chunked_nll, linear_head_nll, nll_from_logits
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


def _reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-log softmax(logits)[target] in float64."""
    return -torch.log_softmax(logits.double(), -1).gather(-1, targets[..., None])[..., 0]


@pytest.mark.parametrize("V,block,bias", [(300, 2048, True), (300, 7, False), (4096, 2048, True), (5000, 2048, False),
                                          (16384, 1024, False)])
def test_vocab_blocked_linear_head_nll_is_the_log_softmax(V, block, bias):
    g = torch.Generator().manual_seed(V)
    head = torch.nn.Linear(64, V, bias=bias)
    with torch.no_grad():
        head.weight.mul_(4)  # logits of magnitude ~10, like trained heads
    h, t = torch.randn(3, 11, 64, generator=g), torch.randint(0, V, (3, 11), generator=g)
    t[0, 0], t[0, 1] = 0, V - 1  # first and last column of the vocabulary
    got = linear_head_nll(h.reshape(-1, 64), head.weight, head.bias, t.reshape(-1), vocab_block=block).view(3, 11)
    assert got.dtype == torch.float32
    want = _reference(head(h), t)
    torch.testing.assert_close(got.double(), want, atol=5e-6, rtol=0)
    # the row-blocked log-softmax path of the same logits agrees to float32 rounding too
    torch.testing.assert_close(got, nll_from_logits(head(h), t), atol=5e-6, rtol=0)
    # chunked_nll takes the same path for an nn.Linear and for a (weight, bias) pair
    assert torch.equal(chunked_nll(h, head, t, chunk=4), chunked_nll(h, (head.weight, head.bias), t, chunk=4))


def test_linear_head_nll_under_autocast_takes_the_target_logit_from_the_bf16_head():
    g = torch.Generator().manual_seed(1)
    head = torch.nn.Linear(16, 3000)
    h, t = torch.randn(2, 9, 16, generator=g), torch.randint(0, 3000, (2, 9), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(h)
        got = chunked_nll(h, head, t, chunk=4)
    assert logits.dtype == torch.bfloat16 and got.dtype == torch.float32
    # float32 reductions of the bf16 logits: equal to their float64 log-softmax to float32 rounding
    # (a target logit recomputed in float32 instead of taken from the bf16 block would be ~1e-2 off)
    torch.testing.assert_close(got.double(), _reference(logits, t), atol=5e-6, rtol=0)
    torch.testing.assert_close(got.mean(), F.cross_entropy(logits.float().flatten(0, 1), t.flatten()))


def test_linear_head_nll_pre_is_applied_per_chunk():
    g = torch.Generator().manual_seed(2)
    head, norm = torch.nn.Linear(8, 50), torch.nn.LayerNorm(8)
    h, t = torch.randn(2, 10, 8, generator=g), torch.randint(0, 50, (2, 10), generator=g)
    got = chunked_nll(h, head, t, chunk=3, pre=norm)
    torch.testing.assert_close(got.double(), _reference(head(norm(h)), t), atol=5e-6, rtol=0)


def test_linear_head_nll_rejects_a_target_outside_the_vocabulary():
    head = torch.nn.Linear(8, 50)
    with pytest.raises(IndexError, match="target token 50 outside the head's vocabulary of 50"):
        chunked_nll(torch.randn(1, 3, 8), head, torch.tensor([[1, 50, 2]]))


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


def test_linear_head_nll_without_the_host_check_marks_a_target_outside_the_vocabulary_nan():
    """The accelerator path (no host check: it would wait for the queued forward): that token's NLL
    is NaN, which the engine's finiteness check reports; the other tokens are unchanged."""
    g = torch.Generator().manual_seed(3)
    head = torch.nn.Linear(8, 50)
    x = torch.randn(4, 8, generator=g)
    good = linear_head_nll(x, head.weight, head.bias, torch.tensor([1, 7, 2, 49]), vocab_block=16)
    got = linear_head_nll(x, head.weight, head.bias, torch.tensor([1, 50, 2, -1]), vocab_block=16, host_check=False)
    assert torch.isnan(got[[1, 3]]).all() and torch.equal(got[[0, 2]], good[[0, 2]])
