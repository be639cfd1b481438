"""Checks shared by the random-order families' tests (ARPG, RandAR): official-code conformance under
raster order, each stored permutation and the per-image permutation batch; real-size manifests; the
end-to-end CLI with ``--order raster`` and ``--order perm:K``.

Everything is read from the fixture set's own ``config.json`` and ``expected.pt`` (sizes, containers,
permutation seeds), so any set of that layout works.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conformance_utils import FixtureSet, require
from visbpp.core.registry.catalog import get_tokenizer_card, model_cards
from visbpp.models import get_family
from visbpp.models.llamagen.preprocess import center_crop_arr
from visbpp.models.orders import permutation

NATS, BITS = 1e-4, 1e-3   # the specs' tolerances: per-token NLL and logits, bits per image


def transformer_file(folder: Path) -> Path:
    """The generator file of a set: the released format (safetensors) where the set has it."""
    st = folder / "transformer.safetensors"
    return st if st.exists() else folder / "transformer.pt"


@lru_cache(maxsize=None)
def loaded(family: str, folder: Path):
    """(fixture set, tokenizer, generator, preprocessed images, labels) of a set, loaded like a run loads them."""
    fam = get_family(family)
    fs = FixtureSet(folder)
    tok = fam.load_tokenizer(str(fs.tokenizer_path), fs.config)
    gen = fam.load_transformer(str(transformer_file(folder)), fs.config, tok)
    x = torch.stack([tok.preprocess(Image.fromarray(a)) for a in fs.images])
    return fs, tok, gen, x, torch.from_numpy(fs.labels).long()


def check_preprocess(family: str, folder: Path) -> None:
    fs, tok, _, x, _ = loaded(family, require(folder))
    assert torch.equal(x, fs.expected["x"])
    raw = fs.folder / "preprocess_raw.npy"
    if raw.exists():   # the ADM crop (BOX halving, bicubic, round) of a large picture = images[0]
        img = Image.fromarray(np.load(raw))
        assert np.array_equal(center_crop_arr(img, fs.config["image_size"]), fs.images[0])
        assert np.array_equal(fs.expected["preprocess_adm"].numpy(), fs.images[0])
        assert torch.equal(tok.preprocess(img), fs.expected["x"][0])


def check_tokens_and_recon(family: str, folder: Path) -> None:
    fs, tok, _, x, _ = loaded(family, require(folder))
    e = fs.expected
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and torch.equal(tokens, e["tokens"])
    if "z" in e:
        with torch.inference_mode():
            torch.testing.assert_close(tok.latent(x), e["z"], atol=1e-4, rtol=0)
    recon = e["recon_raw"] if "recon_raw" in e else e["recon"]   # tokenizers here return the unclamped decode
    torch.testing.assert_close(tok.decode(e["tokens"]), recon, atol=1e-3, rtol=0)


def _bits(nll: torch.Tensor) -> torch.Tensor:
    return nll.double().sum(-1) / math.log(2)


def check_nll(family: str, folder: Path) -> None:
    """Raster order, each stored permutation (same for every image) and the per-image batch: per-token
    NLL in scoring order, bits, the first image's logits; and the per-cell NLL of ``order_nll``."""
    fs, _, gen, _, labels = loaded(family, require(folder))
    e, order = fs.expected, fs.config["order"]
    tokens = e["tokens"]
    B, L = tokens.shape
    raster = torch.arange(L).expand(B, L)
    nll = gen.scored_nll(tokens, labels, raster)
    assert nll.dtype == torch.float32
    torch.testing.assert_close(nll, e["token_nll"], atol=NATS, rtol=0)
    torch.testing.assert_close(_bits(nll), e["nll_bits"], atol=BITS, rtol=0)
    with torch.inference_mode():
        torch.testing.assert_close(gen.logits(tokens[:1], labels[:1], raster[:1])[0], e["logits_first"], atol=NATS, rtol=0)
    torch.testing.assert_close(gen.freqs_cis(), e["freqs_cis"], atol=1e-6, rtol=0)
    for k, seed in enumerate(order["perm_seeds"]):
        perm = permutation(L, seed)
        assert torch.equal(perm, e["perms"][k])   # our rule gives the fixture's sigma_k
        got = gen.scored_nll(tokens, labels, perm.expand(B, L))
        torch.testing.assert_close(got, e["token_nll_perms"][k], atol=NATS, rtol=0)
        torch.testing.assert_close(_bits(got), e["nll_bits_perms"][k], atol=BITS, rtol=0)
        with torch.inference_mode():
            torch.testing.assert_close(gen.logits(tokens[:1], labels[:1], perm[None])[0], e["logits_first_perms"][k],
                                       atol=NATS, rtol=0)
        cells = gen.cell_nll(tokens, labels, perm.expand(B, L))   # raster-cell order: cell perm[i] holds entry i
        torch.testing.assert_close(cells[:, perm], e["token_nll_perms"][k], atol=NATS, rtol=0)
    for b, seed in enumerate(order["perm_batch_seeds"]):
        assert torch.equal(permutation(L, seed), e["perm_batch"][b])
    got = gen.scored_nll(tokens, labels, e["perm_batch"])
    torch.testing.assert_close(got, e["token_nll_perm_batch"], atol=NATS, rtol=0)


def check_manifest(family: str, manifest: Path | None, tokenizer_ids: tuple[str, ...]) -> None:
    """A real checkpoint's keys, shapes and parameter count = the module built on meta from the card's config."""
    if manifest is None:
        require(None)
    fam = get_family(family)
    m = json.loads(Path(manifest).read_text())
    cards = [c for c in model_cards(family) if c.files[0].filename == m["file"]]
    if cards:
        card = cards[0]
        cfg = fam.config_for(card.id)
        with torch.device("meta"):
            module = fam.build_transformer(cfg)
        assert cfg["transformer_container"] == m["container"] == card.files[0].container
        assert module.tokens_per_image == card.tokens_per_image and module.vocab_size == card.codebook_size
        params = card.params
    else:
        (tid,) = [t for t in tokenizer_ids if get_tokenizer_card(t).file.filename == m["file"]]
        tcard = get_tokenizer_card(tid)
        card = next(c for c in model_cards(family) if c.tokenizer_id == tid)
        cfg = fam.config_for(card.id)
        with torch.device("meta"):
            module = fam.build_tokenizer(cfg)
        assert cfg["tokenizer_container"] == m["container"] == tcard.file.container
        params = tcard.params
    assert {k: list(v.shape) for k, v in module.state_dict().items()} == m["state_dict"]
    assert sum(p.numel() for p in module.parameters()) == m["params"] == params
    assert sum(v.numel() for v in module.state_dict().values()) == m["state_dict_numel"]


def image_folder(fs: FixtureSet, data: Path) -> list[str]:
    """The set's images as an ImageFolder (one folder per class, sorted = class index); their relative paths."""
    for c in range(int(fs.config["num_classes"])):
        (data / f"class{c:03d}").mkdir(parents=True, exist_ok=True)
    names = []
    for i, (a, lab) in enumerate(zip(fs.images, fs.labels)):
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(data / rel)
        names.append(rel)
    return names


def check_end_to_end(family: str, folder: Path, tmp_path: Path) -> None:
    """``visbpp run --family F --config C ... --order raster`` gives the fixture's raster bits; ``--order perm:K``
    (K = the set's permutations, seeds 0..K-1) stores each permutation's per-cell NLL, whose sums are the
    fixture's bits per seed, and the headline bits are their mean; ``inspect --json`` shows both."""
    from typer.testing import CliRunner

    from visbpp.core.store import results as R
    from visbpp.core.store import token_store as TS
    from visbpp.tui.cli import app

    fs = FixtureSet(require(folder))
    seeds = list(fs.config["order"]["perm_seeds"])
    assert seeds == list(range(len(seeds)))   # what perm:K scores
    names = image_folder(fs, tmp_path / "data")
    e = fs.expected
    base = ["run", "--family", family, "--config", str(fs.folder / "config.json"), "--tokenizer", str(fs.tokenizer_path),
            "--transformer", str(transformer_file(fs.folder)), "--data", str(tmp_path / "data"), "--device", "cpu",
            "--batch-size", "3", "--quiet"]
    runner = CliRunner()
    r = runner.invoke(app, base + ["--out", str(tmp_path / "raster"), "--order", "raster"])
    assert r.exit_code == 0, r.output
    rows = {row["image"]: row for row in R.read_rows(str(tmp_path / "raster"))}
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fs.labels[i])
        assert abs(rows[rel]["bits"] - float(e["nll_bits"][i])) <= BITS
    r = runner.invoke(app, base + ["--out", str(tmp_path / "perm"), "--order", f"perm:{len(seeds)}"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "perm"
    doc = json.loads((out / "results.json").read_text())
    (m,) = doc["models"]
    assert m["order"] == f"perm:{len(seeds)}"
    order_rows = R.read_rows(str(out))
    nll, entry = TS.load(str(out), m["model_id"])
    names_of = entry["layout"]["part_names"]
    assert names_of == [f"perm seed {s}" for s in seeds] + ["raster"] and entry["layout"]["mean_parts"] == len(seeds)
    per_part = np.asarray(nll, dtype=np.float64).sum(1) / math.log(2)      # (N, K + 1) bits per image and order
    index = {rel: i for i, rel in enumerate(names)}
    for n, row in enumerate(order_rows):
        i = index[row["image"]]
        for k in range(len(seeds)):
            assert abs(per_part[n, k] - float(e["nll_bits_perms"][k][i])) <= BITS
        assert abs(per_part[n, -1] - float(e["nll_bits"][i])) <= BITS            # raster, scored beside
        assert row["bits"] == pytest.approx(per_part[n, :-1].mean(), rel=1e-12)  # the headline: the mean
    want = {f"perm seed {s}": float(e["nll_bits_perms"][k].mean()) for k, s in enumerate(seeds)}
    want["raster"] = float(e["nll_bits"].mean())
    for k, v in want.items():
        assert abs(m["order_bits"][k] - v) <= BITS
    pixels = 3 * fs.config["image_size"] ** 2
    assert abs(m["bpp"] * pixels - np.mean([want[f"perm seed {s}"] for s in seeds])) <= BITS   # headline BPP: the mean
    per_seed = np.array([want[f"perm seed {s}"] for s in seeds])
    assert m["order_std_bits"] == pytest.approx(per_seed.std(ddof=1), abs=2 * BITS)
    r = runner.invoke(app, ["inspect", str(out), "--json"])
    assert r.exit_code == 0, r.output
    o = json.loads(r.output)["models"][0]["orders"]
    assert o["averaged"] == [f"perm seed {s}" for s in seeds]
    assert o["raster_bits"] == pytest.approx(want["raster"], abs=BITS)
    assert o["headline_bits"] == pytest.approx(per_seed.mean(), abs=BITS)
    r = runner.invoke(app, ["inspect", str(out)])
    assert r.exit_code == 0 and "bits by scoring order" in r.output and "raster - permutation mean" in r.output
