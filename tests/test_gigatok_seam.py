"""GigaTok on the family seam: position-free shared attention, token layout and null class,
breakdowns of the stored NLL, core's checkpoint reader (plain extras read, code refused)."""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conformance_utils import FixtureSet, fixture_sets, require
from test_run_cli import _imagefolder, _own_args
from visbpp.core.analysis import breakdown as BD
from visbpp.core.engine import recon as RC
from visbpp.core.errors import DataError
from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import scoring_null_class
from visbpp.core.layout import position_nll
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.store import results as R
from visbpp.core.store import token_store as TS
from visbpp.models import get_family
from visbpp.models.gigatok.tokenizer import ENCODE_PREFIXES
from visbpp.models.llama import Attention, Block
from visbpp.tui.cli import app

FAM = get_family("gigatok")


def _fixture() -> FixtureSet:
    return FixtureSet(require(next((p.values[0] for p in fixture_sets("gigatok") if p.values[0] is not None), None)))


def test_shared_attention_without_rope_is_plain_causal_attention():
    torch.manual_seed(0)
    att = Attention(32, 4)
    x = torch.randn(2, 7, 32)
    got = att(x, None)
    # rope=None is the identity rotation (cos 1, sin 0) exactly ...
    ones = torch.ones(7, 4, dtype=torch.complex64)
    assert torch.equal(got, att(x, ones))
    # ... and equals causal softmax attention written out by hand, in float64
    q, k, v = att.wqkv.weight.double().matmul(x.double().transpose(1, 2)).transpose(1, 2).split(32, dim=-1)
    q, k, v = (t.view(2, 7, 4, 8).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(8)
    scores = scores.masked_fill(torch.ones(7, 7, dtype=torch.bool).triu(1), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 7, 32) @ att.wo.weight.double().T
    torch.testing.assert_close(got.double(), y, atol=1e-5, rtol=0)
    # the block passes it through (still causal: the first position only sees itself)
    blk = Block(32, 4, 64)
    a, b = blk(x, None), blk(torch.cat([x[:, :1], torch.randn(2, 6, 32)], 1), None)
    assert torch.equal(a[:, 0], b[:, 0])


def test_layout_null_class_and_breakdown_sum_to_the_image_bits():
    fs = _fixture()
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)
    ar = FAM.load_transformer(str(fs.transformer_path), fs.config, tok)
    L = fs.config["transformer"]["block_size"]
    assert ar.token_layout == TokenLayout("raster", (1, L)) and ar.token_layout.length == ar.tokens_per_image == L
    assert ar.null_class == ar.num_classes == fs.config["derived"]["null_class_index"]
    tokens, labels = fs.expected["tokens"], torch.as_tensor(fs.labels, dtype=torch.long)
    nll, parts, null = TS.score_batch(ar, tokens, labels, unconditional=True)
    assert torch.equal(nll, ar.token_nll(tokens, labels))
    bits = (nll.double().sum(-1) / math.log(2)).numpy()
    np.testing.assert_allclose(bits, fs.expected["nll_bits"].numpy(), atol=4e-5, rtol=0)
    bd = BD.fold(parts, ar.token_layout)
    np.testing.assert_allclose(bd.bits, bits, rtol=1e-12)
    assert bd.spatial.shape == (len(bits), 1, L)
    np.testing.assert_allclose(bd.spatial.sum((1, 2)), bits, rtol=1e-12)
    with pytest.raises(ValueError, match="null"):
        ar.token_nll(tokens, torch.full_like(labels, ar.num_classes))
    with scoring_null_class():
        direct = ar.token_nll(tokens, torch.full_like(labels, ar.num_classes)).numpy()
    np.testing.assert_array_equal(null, direct)
    assert not np.array_equal(null, parts)
    with pytest.raises(DataError, match=rf"\[0, {ar.num_classes}\).*got min -1"):
        ar.token_nll(tokens, torch.full_like(labels, -1))


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path):
    fs = _fixture()
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    gsd = FAM.load_transformer(str(fs.transformer_path), fs.config).state_dict()  # whatever the set's container
    f = tmp_path / "gpt_with_code.pt"
    torch.save({"model": gsd, "args": Payload()}, f)
    with pytest.raises(CheckpointError, match="refused to load"):
        FAM.load_transformer(str(f), fs.config)
    tsd = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config, with_decoder=True).state_dict()
    f = tmp_path / "tok_with_code.pt"
    torch.save({"model": tsd, "extra": Payload()}, f)
    with pytest.raises(CheckpointError, match="refused to load"):
        FAM.load_tokenizer(str(f), fs.config)
    assert not marker.exists()


def test_tokenizer_with_part_of_the_decoder_is_refused(tmp_path):
    fs = _fixture()
    tsd = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config, with_decoder=True).state_dict()
    partial = {k: v for k, v in tsd.items() if not k.startswith("decoder.")}
    assert any(not k.startswith(ENCODE_PREFIXES) for k in partial)  # still holds some decoder-side keys
    f = tmp_path / "tok_partial.pt"
    torch.save({"model": partial}, f)
    with pytest.raises(CheckpointError, match=r"tok_partial\.pt: holds only part of the tokenizer's decoder.*decoder\."):
        FAM.load_tokenizer(str(f), fs.config)
    with pytest.raises(CheckpointError, match=r"tok_partial\.pt.*missing.*decoder\."):
        FAM.load_tokenizer(str(f), fs.config, with_decoder=True)
    loaded = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config, with_decoder=True)
    assert not loaded.training and all(p.dtype == torch.float32 and not p.requires_grad for p in loaded.parameters())


def test_cli_unconditional_and_recon_end_to_end(tmp_path, monkeypatch):
    """`visbpp run --unconditional --recon` on the fixture: stored per-token NLL (label and null class)
    and the reconstruction PSNR of the official decoder output."""
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    fs = _fixture()
    names = _imagefolder(fs, tmp_path / "data", fs.config["num_classes"])
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", *_own_args(fs, "gigatok"), "--data", str(tmp_path / "data"), "--out", str(out),
                                 "--device", "cpu", "--batch-size", "3", "--quiet", "--unconditional", "--recon"])
    assert r.exit_code == 0, r.output
    rows = R.read_rows(str(out))
    order = [names.index(row["image"]) for row in rows]
    (model_id,) = {row["model_id"] for row in rows}
    stored, entry = TS.load(str(out), model_id)
    assert entry["layout"]["kind"] == "raster" and list(entry["layout"]["grid"]) == [1, fs.config["num_tokens"]]
    want = fs.expected["token_nll"][order].numpy()
    np.testing.assert_allclose(position_nll(np.asarray(stored)), want, atol=1e-5, rtol=0)
    null, _ = TS.load(str(out), model_id, null=True)
    ar = FAM.load_transformer(str(fs.transformer_path), fs.config)
    tokens = fs.expected["tokens"][order]
    with scoring_null_class():
        direct = torch.cat([ar.token_nll(tokens[i:i + 3], torch.full((len(tokens[i:i + 3]),), ar.null_class))
                            for i in range(0, len(tokens), 3)]).numpy()
    np.testing.assert_allclose(position_nll(np.asarray(null)), direct, atol=1e-6, rtol=0)
    recon = _read_recon(out / "recon.csv")
    x, ref = fs.expected["x"], fs.expected["recon"]
    want_psnr = RC.psnr(RC._to_255(x), RC._to_255(ref)).numpy()
    for i, name in enumerate(names):
        assert recon[name] == pytest.approx(float(want_psnr[i]), abs=1e-3)


def _read_recon(path) -> dict[str, float]:
    with open(path, newline="") as f:
        return {row["image"]: float(row["psnr"]) for row in csv.DictReader(f)}
