"""`visbpp zoo train --out DIR` replaces a zoo whole: a kill while writing leaves the old one intact."""

from __future__ import annotations

import hashlib
import json

import pytest

from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry.catalog import CheckpointFile


def test_a_kill_while_writing_the_zoo_leaves_the_old_one_whole(tmp_path, monkeypatch):
    """The write step of `zoo train` (training itself is covered by test_micro)."""
    import torch

    from visbpp.models.micro import train as T

    out = tmp_path / "zoo"
    out.mkdir()
    old = {"zoo.json": b'{"old": true}', "micro_vq.safetensors": b"old vq", "micro_s.safetensors": b"old s",
           "NOTES.txt": b"kept"}
    for name, data in old.items():
        (out / name).write_bytes(data)
    files = {n: {"w": torch.full((4,), float(i))} for i, n in
             enumerate(["micro_vq.safetensors", "micro_classifier.safetensors", "micro_s.safetensors"])}
    real, saved = T.save_file, []

    def killed(sd, path):
        saved.append(path)
        if len(saved) == 3:
            raise KeyboardInterrupt
        real(sd, path)

    monkeypatch.setattr(T, "save_file", killed)
    with pytest.raises(KeyboardInterrupt):
        T.write_zoo(out, files, lambda sha: {"sha256": sha})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert [p.name for p in tmp_path.iterdir()] == ["zoo"]  # no staging folder left
    monkeypatch.setattr(T, "save_file", real)
    meta = T.write_zoo(out, files, lambda sha: {"sha256": sha})
    assert json.loads((out / "zoo.json").read_text())["sha256"] == meta["sha256"]
    for name, sha in meta["sha256"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == sha
    assert (out / "NOTES.txt").read_bytes() == b"kept"
    # a kill between the two renames of the swap: the next write puts the old zoo back first
    (out / "zoo.json").write_bytes(b'{"older": true}')
    aside = out.with_name(f".{out.name}.old-1")
    out.rename(aside)
    T.write_zoo(out, {}, lambda sha: {"sha256": sha, "new": True})
    assert (out / "NOTES.txt").exists() and json.loads((out / "zoo.json").read_text())["new"] is True
    assert not aside.exists()


def test_a_changed_bundled_file_is_not_sent_to_visbpp_fetch(tmp_path):
    f = CheckpointFile("transformer", "micro_s.safetensors", "bundled", "model", repo="bundled:micro", sha256="0" * 64)
    p = tmp_path / "micro_s.safetensors"
    p.write_bytes(b"x")
    with pytest.raises(ck.FetchError) as e:
        ck.verify(f, p)
    assert "zoo train" in str(e.value) and "--repair" not in str(e.value)
