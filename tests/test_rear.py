"""reAR (HF qyoo/reAR): RAR's generator plus two training-only alignment heads, in safetensors files.
The RAR family scores them: a RAR fixture re-saved in reAR's layout gives the fixture's NLL exactly;
the real files' manifests (``alitok/keys/related``) match RAR's modules once the heads are dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conformance_utils import FixtureSet, assert_nll_matches, conformance_root, fixture_sets, require
from visbpp.core.registry.catalog import fit_group, get_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family
from visbpp.models.rar.family import REAR_DROP_PREFIXES

FAM = get_family("rar")
SIZES = {"reAR-S.safetensors": "rear-s", "reAR-B.safetensors": "rear-b", "reAR-L.safetensors": "rear-l"}


def _related() -> list:
    root = conformance_root() / "alitok" / "keys" / "related"
    files = sorted(root.glob("reAR-*.json")) if root.is_dir() else []
    return [pytest.param(p, id=p.stem) for p in files] or [pytest.param(None, id="rear-no-manifests")]


def _align_heads(dim: int, proj: int = 48, z: int = 16) -> dict[str, torch.Tensor]:
    """Random weights in the layout of reAR's ``encode_align_mlp`` / ``decode_align_mlp`` (Linear, SiLU, Linear, SiLU, Linear)."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for head in ("encode_align_mlp", "decode_align_mlp"):
        for i, (o, n) in zip((0, 2, 4), ((proj, dim), (proj, proj), (z, proj))):
            out[f"{head}.{i}.weight"] = torch.randn(o, n, generator=g)
            out[f"{head}.{i}.bias"] = torch.randn(o, generator=g)
    return out


@pytest.mark.parametrize("folder", fixture_sets("rar"))
def test_rar_fixture_resaved_as_rear_scores_identically(folder, tmp_path):
    fs = FixtureSet(require(folder))
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)
    labels = torch.from_numpy(fs.labels).long()
    tokens = fs.expected["tokens"]
    plain = FAM.load_transformer(str(fs.transformer_path), fs.config, tok).token_nll(tokens, labels)
    sd = torch.load(fs.transformer_path, weights_only=True)
    dim = fs.config["transformer"]["model.generator"]["hidden_size"]
    rear = tmp_path / "reAR-tiny.safetensors"
    save_file({k: v.contiguous() for k, v in {**sd, **_align_heads(dim)}.items()}, str(rear))
    nll = FAM.load_transformer(str(rear), fs.config, tok).token_nll(tokens, labels)
    assert torch.equal(nll, plain)
    assert_nll_matches(nll, fs)
    # only the two heads are dropped: any other extra key is still refused
    bad = tmp_path / "extra.safetensors"
    save_file({k: v.contiguous() for k, v in {**sd, "align_proj.weight": torch.zeros(2)}.items()}, str(bad))
    with pytest.raises(CheckpointError, match=r"extra\.safetensors.*unexpected key.*align_proj\.weight"):
        FAM.load_transformer(str(bad), fs.config, tok)


@pytest.mark.parametrize("manifest", _related())
def test_rear_manifest_is_rar_plus_the_two_heads(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    card = get_card(SIZES[m["file"]])
    assert card.files[0].url == m["url"] and card.files[0].repo == "hf:qyoo/reAR"
    with torch.device("meta"):
        module = FAM.build_transformer(FAM.config_for(card.id))
    heads = {k: v for k, v in m["state_dict"].items() if k.startswith(REAR_DROP_PREFIXES)}
    rest = {k: v for k, v in m["state_dict"].items() if k not in heads}
    assert {k.split(".")[0] for k in heads} == {p.rstrip(".") for p in REAR_DROP_PREFIXES}
    assert {k: list(v.shape) for k, v in module.state_dict().items()} == rest
    n = sum(p.numel() for p in module.parameters())
    assert n == card.params == m["params_without_align_mlps"]
    assert n + sum(torch.Size(s).numel() for s in heads.values()) == m["params"]
    gen = FAM.config_for(card.id)["transformer"]["model.generator"]
    assert all(gen[k] == m["config"][k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                  "intermediate_size", "image_seq_len", "condition_num_classes"))


def test_rear_cards():
    cards = [get_card(f"reAR-{s}") for s in ("S", "B", "L")]
    assert [c.id for c in cards] == ["rear-s", "rear-b", "rear-l"]
    assert {fit_group(c) for c in cards} == {"reAR"} and all(c.tokenizer_id == "rar-maskgit-vqgan" for c in cards)
    assert [c.fid.value if c.fid else None for c in cards] == [None, None, 1.86]
    assert (cards[2].fid.origin, cards[2].fid.guidance) == ("readme", "cfg (scale not stated)")
    assert all(c.files[0].filename.endswith(".safetensors") and c.files[0].source_kind == "hub" for c in cards)
    assert [c.id for c in model_cards("rar") if c.id.startswith("rear-")] == ["rear-s", "rear-b", "rear-l"]
