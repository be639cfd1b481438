"""Downloads never accept wrong data: archives, hub blobs, stalls, hub errors, the HTTP mirror
(a local HTTP server on 127.0.0.1 plays every host)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest
from typer.testing import CliRunner

from http_fixture import FileServer
from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry import download
from visbpp.core.registry.catalog import CheckpointFile, get_card


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    for v in ("VISBPP_OFFLINE", "HF_HUB_OFFLINE", "VISBPP_CHECKPOINTS", "VISBPP_HTTP_MIRROR", "HF_ENDPOINT"):
        monkeypatch.delenv(v, raising=False)
    return tmp_path / "home"


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _first_seen() -> dict:
    p = ck.cache_root() / "checksums.json"
    return json.loads(p.read_text()).get("first_seen", {}) if p.is_file() else {}


def test_truncated_archive_is_a_fetch_error_and_leaves_no_member():
    member = os.urandom(300_000)  # incompressible: the cut lands inside the member
    full = _tar({"m/stage2/model.pt": member, "m/stage1/model.pt": b"t" * 100})
    with FileServer({"a/m.tar.gz": full[: len(full) // 2]}) as srv:
        url = f"{srv.url}/a/m.tar.gz"
        f = CheckpointFile("transformer", "model.pt", url, "state_dict", repo=url, archive_member="m/stage2/model.pt")
        with pytest.raises(ck.FetchError, match=r"m\.tar\.gz.*truncated or corrupt"):
            download.fetch_file(f)
        assert not ck.cached_path(f).exists()  # nothing that looks done
        assert f.cache_relpath not in _first_seen()
        assert not list(ck.cached_path(f).parents[2].glob(".*unpack-*"))  # no temporary folder left
        srv.files["a/m.tar.gz"] = full
        path = download.fetch_file(f)
    assert path.read_bytes() == member
    assert _first_seen()[f.cache_relpath] == hashlib.sha256(member).hexdigest()


def _hub_cli(args):
    from visbpp.tui.cli import app

    return CliRunner().invoke(app, args)


def test_hub_file_with_wrong_bytes_is_refused_then_the_right_one_accepted(monkeypatch):
    """`visbpp fetch` of a hub file served with wrong bytes: refused, nothing left in place, then the
    correct file is accepted."""
    right, tok = os.urandom(60_000), os.urandom(20_000)
    wrong = bytearray(right)
    wrong[1000] ^= 0xFF
    model = "FoundationVision/LlamaGen/resolve/main/c2i_B_256.pt"
    with FileServer({model: bytes(wrong), "FoundationVision/LlamaGen/resolve/main/vq_ds16_c2i.pt": tok}) as srv:
        srv.etags[model] = hashlib.sha256(right).hexdigest()  # the hub announces the right file's sha256
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        res = _hub_cli(["fetch", "llamagen-b-256"])
        assert res.exit_code == 1, res.output
        assert "sha256" in res.output and "c2i_B_256.pt" in res.output
        f = get_card("llamagen-b-256").files[0]
        assert ck.locate(f) is None  # no blob, no snapshot link
        assert not [p for p in (ck.cache_root() / "hf").rglob("*") if p.is_file() and p.read_bytes() == bytes(wrong)]
        assert f.cache_relpath not in _first_seen()
        srv.files[model] = right
        res = _hub_cli(["fetch", "llamagen-b-256"])
        assert res.exit_code == 0, res.output
        check = _hub_cli(["fetch", "--check", "llamagen-b-256"])
    assert ck.locate(f).read_bytes() == right
    assert check.output.count("verified") == 2, check.output


def test_a_wrong_first_seen_checksum_does_not_refuse_the_right_hub_file_forever(monkeypatch):
    right, tok = os.urandom(40_000), os.urandom(10_000)
    f = get_card("llamagen-b-256").files[0]
    ck.cache_root().mkdir(parents=True, exist_ok=True)
    (ck.cache_root() / "checksums.json").write_text(json.dumps({"first_seen": {f.cache_relpath: "0" * 64}}))
    with FileServer({"FoundationVision/LlamaGen/resolve/main/c2i_B_256.pt": right,
                     "FoundationVision/LlamaGen/resolve/main/vq_ds16_c2i.pt": tok}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        res = _hub_cli(["fetch", "llamagen-b-256"])
    assert res.exit_code == 0, res.output
    assert _first_seen()[f.cache_relpath] == hashlib.sha256(right).hexdigest()


def test_fetch_check_repair_removes_a_bad_cached_copy_and_its_checksum():
    payload = os.urandom(30_000)
    with FileServer({"files/w.pt": payload}) as srv:
        f = CheckpointFile("transformer", "w.pt", f"{srv.url}/page", "model", repo=f"{srv.url}/page",
                           direct_url=f"{srv.url}/files/w.pt")
        path = download.fetch_file(f)
        path.write_bytes(b"x" * len(payload))  # damaged after its checksum was recorded
        with pytest.raises(ck.FetchError, match="--repair"):
            ck.verify(f, path)
        line = ck.repair(f, path)
        assert line.startswith("removed") and not path.exists()
        assert f.cache_relpath not in _first_seen()
        assert download.fetch_file(f).read_bytes() == payload


def test_a_stalled_download_keeps_every_byte_that_arrived():
    payload = os.urandom(400_000)
    with FileServer({"files/w.pt": payload}) as srv:
        srv.stall_after["files/w.pt"] = 100_000
        dest = ck.cache_root() / "dl" / "w.pt"
        with pytest.raises(ck.FetchError, match="interrupted at 100000 bytes"):
            download.http_download(f"{srv.url}/files/w.pt", dest, timeout=1.0)
        assert dest.with_name("w.pt.part").stat().st_size == 100_000
        download.http_download(f"{srv.url}/files/w.pt", dest)
    assert dest.read_bytes() == payload


def test_hub_404_says_not_found_at_the_configured_endpoint(monkeypatch):
    with FileServer({}) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        f = get_card("llamagen-b-256").files[0]
        with pytest.raises(ck.FetchError) as e:
            download.fetch_file(f)
    msg = str(e.value)
    assert "not found" in msg and srv.url in msg, msg
    assert "huggingface.co" not in msg and "No network" not in msg
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ck.MissingCheckpointError) as e:
        download.fetch_file(f)
    assert srv.url in str(e.value) and "huggingface.co" not in str(e.value)


def test_http_mirror_from_environment_and_checkpoints_toml(monkeypatch):
    payload = os.urandom(20_000)
    member = os.urandom(5_000)
    with FileServer({"files.example.org/w/w.pt": payload,
                     "cdn.example.org/a/m.tar.gz": _tar({"m/stage2/model.pt": member})}) as srv:
        f = CheckpointFile("transformer", "w.pt", "https://files.example.org/w", "model",
                           repo="https://files.example.org/w", direct_url="https://files.example.org/w/w.pt")
        monkeypatch.setenv("VISBPP_HTTP_MIRROR", srv.url)
        assert download.fetch_file(f).read_bytes() == payload
        monkeypatch.delenv("VISBPP_HTTP_MIRROR")
        ck.cache_root().mkdir(parents=True, exist_ok=True)
        (ck.cache_root() / "checkpoints.toml").write_text(f'[mirror]\nhttp = "{srv.url}/"\n')
        url = "https://cdn.example.org/a/m.tar.gz"
        a = CheckpointFile("transformer", "model.pt", url, "state_dict", repo=url, archive_member="m/stage2/model.pt")
        assert download.fetch_file(a).read_bytes() == member
        gets = [p for (m, p, _r) in srv.requests if m == "GET"]
    assert gets == ["files.example.org/w/w.pt", "cdn.example.org/a/m.tar.gz"]


def test_an_altered_or_truncated_safetensors_copy_is_rebuilt_from_the_source(tmp_path):
    import torch

    from visbpp.core.registry.checkpoint_io import read_state_dict

    sd = {"w": torch.randn(256), "b": torch.arange(7)}
    src = tmp_path / "w.pt"
    torch.save({"model": sd}, src)
    read_state_dict(src, ["model"], safetensors_cache=True)
    (copy,) = (ck.cache_root() / "safetensors").glob("*.safetensors")
    data = bytearray(copy.read_bytes())
    data[-5] ^= 0x40  # inside the tensor data: same size, different values
    copy.write_bytes(bytes(data))
    got = read_state_dict(src, ["model"], safetensors_cache=True)
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    copy.write_bytes(copy.read_bytes()[:100])  # truncated
    got = read_state_dict(src, ["model"], safetensors_cache=True)
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    again = read_state_dict(src, ["model"], safetensors_cache=True)  # from the rebuilt copy
    assert all(torch.equal(again[k], sd[k]) for k in sd)


@pytest.mark.parametrize("args", [["models"], ["fetch", "llamagen-b-256"], ["fetch", "--check", "llamagen-b-256"]])
def test_an_uncreatable_visbpp_home_is_one_error_line(tmp_path, monkeypatch, args):
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "afile" / "home"))
    r = _hub_cli(args)
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "error:" in r.output and "VISBPP_HOME" in r.output and "Traceback" not in r.output
