"""PAR family: official-code conformance (both token orders), real-size manifests, loading errors,
cards, the shared LlamaGen token cache, the CLI end to end and `inspect`'s group breakdown."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conformance_utils import FixtureSet, conformance_root, fixture_sets, manifests, require
from visbpp.core.analysis import breakdown as BD
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.registry.catalog import fit_group, get_card, get_tokenizer_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.store import results as R
from visbpp.models import get_family
from visbpp.models import jobs as J
from visbpp.models.llamagen import center_crop_arr
from visbpp.models.llamagen.preprocess import to_model_input
from visbpp.models.par import ConfigError, group_mask, permutation
from visbpp.tui.cli import app

FAM = get_family("par")

# Exact parameter counts from the family spec (section 1).
SPEC_PARAMS = {
    "PAR-XL-4x.pt": 774_703_360,
    "PAR-XXL-4x.pt": 1_410_977_280,
    "PAR-3B-4x.pt": 3_096_668_800,
    "PAR-3B-16x.pt": 3_096_707_200,
    "vq_ds16_c2i.pt": 71_883_403,
}
NATS, BITS = 1e-5, 4e-5  # the tolerances


# --------------------------------------------------------------------------- conformance fixtures


@lru_cache(maxsize=None)
def _loaded(folder: Path):
    fs = FixtureSet(folder)
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)
    gpt = FAM.load_transformer(str(fs.transformer_path), fs.config, tok)
    x = torch.stack([to_model_input(a) for a in fs.images])  # (N, 3, S, S)
    labels = torch.from_numpy(fs.labels).long()
    return fs, tok, gpt, x, labels


@pytest.mark.parametrize("folder", fixture_sets("par"))
def test_conformance_preprocess_tokens_recon(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert torch.equal(x, fs.expected["x"])
    if (fs.folder / "preprocess_raw.npy").exists():  # a raw picture whose centre crop is images[0]
        raw = Image.fromarray(np.load(fs.folder / "preprocess_raw.npy"))
        assert np.array_equal(center_crop_arr(raw, fs.config["image_size"]), fs.images[0])
        assert torch.equal(tok.preprocess(raw), fs.expected["x"][0])
    with torch.inference_mode():
        z = tok.latent(x)
    torch.testing.assert_close(z, fs.expected["z"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)  # raster order: LlamaGen's tokens
    assert tokens.dtype == torch.int64 and torch.equal(tokens, fs.expected["tokens_raster"])
    recon = tok.decode(fs.expected["tokens_raster"])
    torch.testing.assert_close(recon, fs.expected["recon"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("par"))
def test_conformance_order(folder):
    fs, _, gpt, _, _ = _loaded(require(folder))
    e, n = fs.expected, fs.config["transformer"]["ar_token_num"]
    assert gpt.perm == e["perm"].tolist() == permutation(int(math.isqrt(gpt.tokens_per_image)), n)
    assert torch.equal(e["tokens_raster"][:, e["perm"]], e["tokens"])
    assert torch.equal(torch.argsort(e["perm"]), e["inv_perm"])
    assert list(gpt.token_layout.group_of) == (e["group_index_raster"] > 0).long().tolist()
    torch.testing.assert_close(gpt.freqs_cis(), e["freqs_cis"], atol=1e-6, rtol=0)
    assert torch.equal(group_mask(e["attn_mask"].shape[0], n), e["attn_mask"])


@pytest.mark.parametrize("folder", fixture_sets("par"))
def test_conformance_nll_both_orders_and_groups(folder):
    fs, _, gpt, _, labels = _loaded(require(folder))
    e = fs.expected
    nll = gpt.token_nll(e["tokens_raster"], labels)  # per raster cell
    assert nll.dtype == torch.float32 and nll.shape == e["tokens_raster"].shape
    torch.testing.assert_close(nll, e["token_nll_raster"], atol=NATS, rtol=0)
    torch.testing.assert_close(nll[:, e["perm"]], e["token_nll"], atol=NATS, rtol=0)  # PAR order
    torch.testing.assert_close(nll[:, e["perm"]], e["token_nll_sampler"], atol=NATS, rtol=0)  # KV-cache sampler
    bits = nll.double().sum(-1) / math.log(2)
    torch.testing.assert_close(bits, e["nll_bits"], atol=BITS, rtol=0)
    bd = BD.fold(nll.numpy(), gpt.token_layout)
    seq, par = gpt.token_layout.group_names
    np.testing.assert_allclose(bd.by_group[seq], e["group_bits"][:, 0].numpy(), atol=BITS, rtol=0)
    np.testing.assert_allclose(bd.by_group[par], e["group_bits"][:, 1:].sum(1).numpy(), atol=BITS, rtol=0)
    with torch.inference_mode():
        logits = gpt(e["tokens_raster"][:1], labels[:1])[0]  # row j: raster cell j
    torch.testing.assert_close(logits[e["perm"]], e["logits_first"], atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- the factorisation by hand


def test_groups_are_conditionally_independent_and_later_groups_condition_on_them():
    fs, _, gpt, _, labels = _loaded(_fixture_folder())
    tokens = fs.expected["tokens_raster"]
    base = gpt.token_nll(tokens, labels)
    perm, n, V = gpt.perm, gpt.cfg.ar_token_num, gpt.vocab_size
    group = [k // n for k in range(len(perm))]  # group of the k-th PAR token
    for k in sorted({1, n, 2 * n + 1, len(perm) - 1} & set(range(len(perm)))):
        changed = tokens.clone()
        changed[:, perm[k]] = (changed[:, perm[k]] + 1) % V
        nll = gpt.token_nll(changed, labels)
        for k2, cell in enumerate(perm):
            same = torch.equal(nll[:, cell], base[:, cell])
            if k2 == k:
                assert not same  # its own target changed
            elif group[k2] < group[k] or (group[k2] == group[k] and (group[k] > 0 or k2 < k)):
                assert same, (k, k2)  # earlier groups, the parallel group itself, earlier sequential tokens
        later = [cell for k2, cell in enumerate(perm) if group[k2] > group[k] or (group[k] == 0 and k2 > k)]
        assert all(not torch.equal(nll[:, c], base[:, c]) for c in later), k  # later tokens condition on it


def test_real_permutations_by_hand():
    p4 = permutation(24, 4)
    assert p4[:8] == [0, 12, 288, 300, 1, 13, 289, 301] and sorted(p4) == list(range(576))
    p16 = permutation(24, 16)
    assert sorted(p16[:16]) == sorted(r * 24 + c for r in (0, 6, 12, 18) for c in (0, 6, 12, 18))
    assert p16[16:21] == [1, 7, 13, 19, 145] and sorted(p16) == list(range(576))
    m = group_mask(12, 4)
    assert m[:4, :4].equal(torch.ones(4, 4).tril().bool())  # sequential part: causal
    assert m[4:8, :8].all() and not m[4:8, 8:].any()       # block [u_{n-1}, M_1..M_{n-1}]: full inside
    assert m[8:12, :12].all() and not m[3, 4:].any()


def test_layout_names_the_groups():
    with torch.device("meta"):
        gpt = FAM.build_transformer(FAM.config_for("par-3b-16x"))
    layout = gpt.token_layout
    assert layout.kind == "raster" and layout.grid == (24, 24) and layout.length == 576
    assert layout.group_names == ("group 0 (sequential, 16 tokens)", "groups 1-35 (parallel, 560 tokens)")
    assert sum(1 for g in layout.group_of if g == 0) == 16
    assert [i for i, g in enumerate(layout.group_of) if g == 0] == sorted(permutation(24, 16)[:16])


# --------------------------------------------------------------------------- real-size manifests


@pytest.mark.parametrize("manifest", manifests("par"))
def test_manifest_keys_shapes_params(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    if m["file"] == get_tokenizer_card("llamagen-vq16").file.filename:
        tcard = get_tokenizer_card("llamagen-vq16")
        assert all(c.tokenizer_id == tcard.id for c in model_cards("par"))
        with torch.device("meta"):
            module = FAM.build_tokenizer(FAM.config_for("par-xl-4x"))
        assert m["container"] == tcard.file.container
        params = tcard.params
    else:
        (card,) = [c for c in model_cards("par") if c.files[0].filename == m["file"]]
        cfg = FAM.config_for(card.id)
        with torch.device("meta"):
            module = FAM.build_transformer(cfg)
        assert cfg["transformer"]["ar_token_num"] == m["config"]["ar_token_num"] == module.cfg.ar_token_num
        assert cfg["transformer"]["spe_token_num"] == m["config"]["spe_token_num"]
        assert module.cfg.head_dim == m["config"]["head_dim"]
        assert cfg["transformer_container"] == m["container"] == card.files[0].container == "model"
        assert cfg["image_size"] == m["image_size"] == card.resolution
        assert module.tokens_per_image == m["num_tokens"] == card.tokens_per_image
        assert module.freqs_cis().shape[0] == m["order"]["rope_table_rows"]
        assert card.files[0].url == m["url"]
        params = card.params
    got = {k: list(v.shape) for k, v in module.state_dict().items()}
    assert got == m["state_dict"]
    n = sum(p.numel() for p in module.parameters())
    assert n == SPEC_PARAMS[m["file"]] == m["params"] == params
    assert sum(v.numel() for v in module.state_dict().values()) == m["state_dict_numel"]


# --------------------------------------------------------------------------- loading errors


def _fixture_folder() -> Path:
    return require(next((p.values[0] for p in fixture_sets("par") if p.values[0] is not None), None))


def test_llamagen_file_given_as_par_is_refused(tmp_path):
    folder = _fixture_folder()
    fs = FixtureSet(folder)
    sd = torch.load(folder / "transformer.pt", weights_only=True)["model"]
    lg = {k: v for k, v in sd.items() if not k.startswith("spe_tok_embeddings.")}  # exactly a LlamaGen GPT
    lg_file = tmp_path / "c2i_like.pt"
    torch.save({"model": lg}, lg_file)
    lg_cfg = {k: v for k, v in fs.config.items() if k in ("tokenizer", "tokenizer_encoder_decoder_args", "image_size")}
    lg_cfg["transformer"] = {k: v for k, v in fs.config["transformer"].items()
                             if k not in ("ar_token_num", "spe_token_num", "caption_dim", "max_batch_size", "max_seq_len")}
    get_family("llamagen").load_transformer(str(lg_file), lg_cfg)  # a valid LlamaGen file
    with pytest.raises(CheckpointError, match=r"c2i_like\.pt: no special-token table .*--family llamagen"):
        FAM.load_transformer(str(lg_file), fs.config)
    with pytest.raises(CheckpointError, match=r"transformer\.pt: unexpected key spe_tok_embeddings.*--family par"):
        get_family("llamagen").load_transformer(str(fs.transformer_path), lg_cfg)  # and the other way round
    real = conformance_root() / "llamagen"
    if (real / "transformer.pt").exists():  # the LlamaGen fixture with a PAR config of its sizes
        cfg = json.loads((real / "config.json").read_text())
        cfg["transformer"]["ar_token_num"] = 4
        with pytest.raises(CheckpointError, match="no special-token table"):
            FAM.load_transformer(str(real / "transformer.pt"), cfg)


def test_other_n_is_refused_with_the_files_n():
    fs = FixtureSet(_fixture_folder())
    cfg = json.loads(json.dumps(fs.config))
    n = fs.config["transformer"]["ar_token_num"]
    side = int(math.isqrt(fs.config["transformer"]["block_size"]))
    other = next(s * s for s in range(1, side + 1) if side % s == 0 and s * s != n)
    cfg["transformer"].update(ar_token_num=other, spe_token_num=other - 1)
    with pytest.raises(CheckpointError, match=rf"special-token table has {n - 1} rows.*n = {n}.*ar_token_num {n}"):
        FAM.load_transformer(str(fs.transformer_path), cfg)


def test_containers_model_module_state_dict_bare_never_ema(tmp_path):
    fs, _, gpt, _, labels = _loaded(_fixture_folder())
    sd = torch.load(fs.transformer_path, weights_only=True)["model"]
    tokens = fs.expected["tokens_raster"]
    ref = gpt.token_nll(tokens, labels)
    noise = {k: v + 1.0 for k, v in sd.items()}
    for name, obj in (("module", {"module": sd}), ("state_dict", {"state_dict": sd, "steps": 3}), ("bare", sd),
                      ("model_and_ema", {"model": sd, "ema": noise, "optimizer": {}})):
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
        assert torch.equal(FAM.load_transformer(str(path), fs.config).token_nll(tokens, labels), ref), name
    torch.save({"ema": sd}, tmp_path / "ema.pt")
    with pytest.raises(CheckpointError, match=r"ema\.pt: unexpected container"):
        FAM.load_transformer(str(tmp_path / "ema.pt"), fs.config)


def test_config_errors_name_the_field(tmp_path):
    fs = FixtureSet(_fixture_folder())

    def bad(**t):
        cfg = json.loads(json.dumps(fs.config))
        cfg["transformer"].update(t)
        return cfg

    cfg = bad()
    del cfg["transformer"]["ar_token_num"]
    with pytest.raises(ConfigError, match="lacks transformer.ar_token_num"):
        FAM.build_transformer(cfg)
    with pytest.raises(ConfigError, match="spe_token_num 2 must be ar_token_num - 1"):
        FAM.build_transformer(bad(spe_token_num=2))
    with pytest.raises(ConfigError, match="ar_token_num 5 is not a positive square"):
        FAM.build_transformer(bad(ar_token_num=5, spe_token_num=4))
    side = int(math.isqrt(fs.config["transformer"]["block_size"]))
    s = next(s for s in range(2, 2 * side) if side % s)
    with pytest.raises(ConfigError, match="does not split"):
        FAM.build_transformer(bad(ar_token_num=s * s, spe_token_num=s * s - 1))
    typo = bad()
    typo["transformer"]["ar_tokens_num"] = 4
    with pytest.raises(ConfigError, match="my.json: unknown key 'transformer.ar_tokens_num'"):
        FAM.parse_config(typo, "my.json")
    _, _, gpt, _, labels = _loaded(_fixture_folder())
    with pytest.raises(ValueError, match="PAR scores whole images"):
        gpt.token_nll(fs.expected["tokens_raster"][:, :-1], labels)


def test_interfaces_bf16_and_chunks():
    fs, tok, gpt, x, labels = _loaded(_fixture_folder())
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gpt, ARModel)
    assert gpt.family == "par" and tok.family == "llamagen" and gpt.null_class == gpt.num_classes
    tokens = fs.expected["tokens_raster"]
    ref = gpt.token_nll(tokens, labels)
    for chunk in (1, 7):
        torch.testing.assert_close(gpt.token_nll(tokens, labels, chunk=chunk), ref, atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gpt.token_nll(tokens, labels)
    assert low.dtype == torch.float32 and not torch.equal(low, ref)
    torch.testing.assert_close(low, ref, atol=0.5, rtol=0.1)


# --------------------------------------------------------------------------- cards and the shared token cache


def test_cards_group_fids_rfid_and_links():
    cards = {c.id: c for c in model_cards("par")}
    assert sorted(cards) == ["par-3b-16x", "par-3b-4x", "par-xl-4x", "par-xxl-4x"]
    want = {"par-xl-4x": (2.61, "cfg 1.5", 4, "llamagen-xl-384"), "par-xxl-4x": (2.35, "cfg 1.435", 4, "llamagen-xxl-384"),
            "par-3b-4x": (2.29, "cfg 1.345", 4, "llamagen-3b-384"), "par-3b-16x": (2.88, "cfg 1.5", 16, "llamagen-3b-384")}
    for mid, (fid, guidance, n, lg_id) in want.items():
        c, lg = cards[mid], get_card(lg_id)
        assert fit_group(c) == "PAR-384" and c.size.endswith(f"-{n}x, n={n})")
        assert (c.fid.value, c.fid.guidance, c.fid.origin, c.fid.eval_resolution) == (fid, guidance, "readme", 256)
        assert "PAR README" in c.fid.source and "Table 2" in c.fid.source
        assert c.rfid.value == 0.94 and "24x24" in c.rfid.source and c.rfid.guidance == "none"
        assert c.params == SPEC_PARAMS[c.files[0].filename] and c.reference_bpp is None
        assert c.tokenizer_id == lg.tokenizer_id and c.resolution == lg.resolution == 384
        assert {k: v for k, v in c.arch.items() if k != "ar_token_num"} == dict(lg.arch) and c.arch["ar_token_num"] == n
        assert c.compare and c.compare == lg.compare  # the LlamaGen model of the same size on the same tokens
        assert c.files[0].repo == "hf:Epiphqny/PAR" and c.files[0].url.endswith(c.files[0].filename)
        assert FAM.config_for(mid)["transformer"]["dim"] == lg.arch["dim"]
    assert get_card("PAR-XL-4x").id == "par-xl-4x"
    with pytest.raises(KeyError, match="not a PAR model"):
        FAM.config_for("llamagen-xl-384")


def test_par_and_llamagen_384_share_the_token_cache_key(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    d = tmp_path / "ckpts"
    d.mkdir()
    for name in ("vq_ds16_c2i.pt", "c2i_XL_384.pt", "PAR-XL-4x.pt", "PAR-3B-16x.pt"):
        (d / name).write_bytes(name.encode())  # loaders are lazy: contents are not read here
    keys = {mid: J.job_for_card(mid, str(d)).tokenizer_key for mid in ("llamagen-xl-384", "par-xl-4x", "par-3b-16x")}
    assert len(set(keys.values())) == 1 and keys["par-xl-4x"].startswith("llamagen:")
    fs = FixtureSet(_fixture_folder())
    lg_cfg = {k: fs.config[k] for k in ("tokenizer", "tokenizer_encoder_decoder_args", "image_size")}
    lg_cfg["transformer"] = {k: v for k, v in fs.config["transformer"].items()
                             if k not in ("ar_token_num", "spe_token_num", "caption_dim", "max_batch_size", "max_seq_len")}
    (tmp_path / "lg.json").write_text(json.dumps(lg_cfg))
    par = J.job_from_config("par", str(fs.folder / "config.json"), str(fs.tokenizer_path), str(fs.transformer_path))
    lg = J.job_from_config("llamagen", str(tmp_path / "lg.json"), str(fs.tokenizer_path), str(fs.transformer_path))
    assert par.tokenizer_key == lg.tokenizer_key and par.family == "par"


# --------------------------------------------------------------------------- CLI end to end


def test_cli_run_inspect_and_models(tmp_path, monkeypatch):
    fs = FixtureSet(_fixture_folder())
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    names = []
    for c in range(fs.config["num_classes"]):
        (tmp_path / "data" / f"class{c:03d}").mkdir(parents=True)
    for i, (a, lab) in enumerate(zip(fs.images, fs.labels)):
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(tmp_path / "data" / rel)
        names.append(rel)
    out = tmp_path / "out"
    runner = CliRunner()
    r = runner.invoke(app, [
        "run", "--family", "par", "--config", str(fs.folder / "config.json"), "--tokenizer", str(fs.tokenizer_path),
        "--transformer", str(fs.transformer_path), "--data", str(tmp_path / "data"), "--out", str(out),
        "--device", "cpu", "--batch-size", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    rows = {row["image"]: row for row in R.read_rows(str(out))}
    want = fs.expected["nll_bits"].double().tolist()
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fs.labels[i])
        assert abs(rows[rel]["bits"] - want[i]) <= BITS, (rel, rows[rel]["bits"], want[i])
    # inspect: the sequential first group vs the parallel groups, from the stored raster-cell NLL
    r = runner.invoke(app, ["inspect", str(out), "--json"])
    assert r.exit_code == 0, r.output
    (m,) = json.loads(r.output)["models"]
    order = [names.index(row["image"]) for row in R.read_rows(str(out))]
    gb = fs.expected["group_bits"].numpy()[order]
    n, groups = fs.config["transformer"]["ar_token_num"], gb.shape[1]
    seq, par = f"group 0 (sequential, {n} tokens)", f"groups 1-{groups - 1} (parallel, {n * (groups - 1)} tokens)"
    assert list(m["by_group"]) == [seq, par]
    assert m["by_group"][seq] == pytest.approx(gb[:, 0].mean(), abs=BITS)
    assert m["by_group"][par] == pytest.approx(gb[:, 1:].sum(1).mean(), abs=BITS)
    raster = fs.expected["token_nll_raster"].double().numpy()[order] / math.log(2)
    np.testing.assert_allclose(np.array(m["spatial"]).ravel(), raster.mean(0), atol=BITS)  # raster-cell bit map
    r = runner.invoke(app, ["inspect", str(out)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert seq in text and par in text
    # the registry lists the four models
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    got = {x["id"]: x for x in json.loads(r.output)["models"] if x["id"].startswith("par-")}
    assert sorted(got) == sorted(c.id for c in model_cards("par"))
    assert got["par-3b-16x"]["params"] == 3_096_707_200 and got["par-3b-16x"]["group"] == "PAR-384"


def test_same_token_sets_are_not_fitted_as_tokenizer_comparisons():
    import pandas as pd

    from visbpp.core.analysis.fits import analyze

    same = get_card("par-xl-4x").compare[0]
    rows = [("LlamaGen", "XL", 3.42, 0.94, 0.01318, same), ("PAR", "XL-4x", 2.61, 0.94, 0.01350, same),
            ("A", "s", 5.0, 1.0, 0.020, "across"), ("B", "s", 4.0, 2.0, 0.018, "across"),
            ("C", "s", 3.0, 3.0, 0.017, "across"), ("D", "s", 2.5, 0.5, 0.016, "")]
    df = pd.DataFrame([{"family": f, "size": s, "resolution": 384, "fid": fid, "rfid": rfid, "bpp": bpp, "compare": c}
                       for f, s, fid, rfid, bpp, c in rows])
    (cp,) = analyze(df).comparisons  # one tokenizer (a constant rFID): no tokenizer to compare
    assert cp.name == "across" and cp.n == 3
