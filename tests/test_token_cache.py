"""Token cache: keys, persistence across instances (processes), concurrent writers, merging."""

import multiprocessing as mp
import os

import torch

from visbpp.core.store import token_cache as TC


def _writer(cache_dir, i, n):
    c = TC.TokenCache(cache_dir, "tok", "pp", 8)
    for j in range(n):
        c.put([f"img{i}-{j}"], torch.full((1, 4), i * 100 + j))


def test_put_reload_and_keys(tmp_path):
    a = TC.TokenCache(str(tmp_path), "tok", "pp", 8)
    a.put(["x", "y"], torch.tensor([[1, 2], [3, 4]]), {"z": "empty file"})
    b = TC.TokenCache(str(tmp_path), "tok", "pp", 8)  # another process would see the same
    assert b.tokens["y"].tolist() == [3, 4] and b.bad == {"z": "empty file"} and b.has("x")
    assert b.tokens["x"].dtype == torch.long
    other = TC.TokenCache(str(tmp_path), "tok", "pp", 16)  # another resolution: another folder
    assert not other.has("x") and other.folder != b.folder
    assert not TC.TokenCache(str(tmp_path), "tok2", "pp", 8).has("x")


def test_concurrent_writers_and_merge(tmp_path, monkeypatch):
    ctx = mp.get_context("fork")
    ps = [ctx.Process(target=_writer, args=(str(tmp_path), i, 40)) for i in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
        assert p.exitcode == 0
    c = TC.TokenCache(str(tmp_path), "tok", "pp", 8)  # 80 shards > MERGE_AT: merged into one
    assert len(c.tokens) == 80
    assert all(c.tokens[f"img{i}-{j}"].tolist() == [i * 100 + j] * 4 for i in range(2) for j in range(40))
    assert len([f for f in os.listdir(c.folder) if f.startswith("shard-")]) == 1
    assert len(TC.TokenCache(str(tmp_path), "tok", "pp", 8).tokens) == 80


def test_image_key_changes_with_content(tmp_path):
    p = tmp_path / "a.png"
    p.write_bytes(b"1234")
    k1 = TC.image_key(str(p))
    p.write_bytes(b"12345")
    assert TC.image_key(str(p)) != k1


def test_cache_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "h"))
    assert TC.default_cache_dir() == str(tmp_path / "h")
    assert TC.default_cache_dir(str(tmp_path / "o")) == str(tmp_path / "o")
