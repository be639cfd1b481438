"""Google Drive checkpoints (GigaTok): the by-hand message without gdown or offline, and gdown
downloads against a local server (URL override): resume, HTML pages, first-seen checksums."""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

from http_fixture import FileServer
from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry import download
from visbpp.core.registry.catalog import CheckpointFile, get_card, get_tokenizer_card

FID = "1ZiRAk9pHhcrrbVMP1qSf4rDfSJMCsY6Y"  # GPT_B256_e300_VQ_BL.pt


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    for v in ("VISBPP_OFFLINE", "HF_HUB_OFFLINE", "VISBPP_CHECKPOINTS", download.GDRIVE_URL_ENV):
        monkeypatch.delenv(v, raising=False)
    return tmp_path / "home"


def _by_hand_message_ok(msg: str, f: CheckpointFile) -> None:
    assert f.url in msg and f.filename in msg and str(ck.cached_path(f)) in msg and "--checkpoint-dir" in msg


def test_card_files_are_gdrive_and_cached_by_file_id():
    f = get_card("gigatok-b-bl").files[0]
    assert f.source_kind == "gdrive" and f.url == f"https://drive.google.com/file/d/{FID}/view"
    assert f.cache_relpath == f"drive.google.com/{FID}/GPT_B256_e300_VQ_BL.pt"
    t = get_tokenizer_card("gigatok-vq-bl").file
    assert t.source_kind == "gdrive" and t.cache_relpath.endswith("/VQ_BL256_e200.pt")


def test_without_gdown_prints_link_file_and_target(monkeypatch):
    monkeypatch.setitem(sys.modules, "gdown", None)  # import gdown -> ImportError
    f = get_card("gigatok-b-bl").files[0]
    with pytest.raises(ck.MissingCheckpointError, match=r"pip install 'visbpp\[gdrive\]'") as ei:
        download.fetch_file(f, model_id="gigatok-b-bl")
    _by_hand_message_ok(str(ei.value), f)
    assert not ck.cached_path(f).exists()


def test_offline_prints_link_file_and_target(monkeypatch):
    monkeypatch.setenv("VISBPP_OFFLINE", "1")
    f = get_tokenizer_card("gigatok-vq-xlxxl").file
    with pytest.raises(ck.MissingCheckpointError, match="offline mode") as ei:
        download.fetch_file(f)
    _by_hand_message_ok(str(ei.value), f)


# --------------------------------------------------------------------------- with gdown (local server)


def _drive_file(name: str = "w.pt", fid: str = "testid123") -> CheckpointFile:
    return CheckpointFile("transformer", name, f"https://drive.google.com/file/d/{fid}/view", "model",
                          repo=f"gdrive:{fid}")


@pytest.fixture
def gdown_server(monkeypatch):
    pytest.importorskip("gdown", reason="the gdrive extra (gdown) is part of the dev install")
    payload = os.urandom(3_000_000)  # several of gdown's 512 KiB chunks, so a cut leaves a partial file
    with FileServer({"gdrive/testid123": payload}) as srv:
        monkeypatch.setenv(download.GDRIVE_URL_ENV, f"{srv.url}/gdrive/{{id}}")
        yield srv, payload


def test_gdown_download_records_sha256(gdown_server):
    srv, payload = gdown_server
    f = _drive_file()
    path = download.fetch_file(f)
    assert path == ck.cached_path(f) and path.read_bytes() == payload
    sha = hashlib.sha256(payload).hexdigest()
    assert ck._load_db()["first_seen"][f.cache_relpath] == sha
    assert download.fetch_file(f) == path  # already there: verified, not downloaded again
    assert len([r for r in srv.requests if r[1] == "gdrive/testid123"]) == 1


def test_gdown_interrupted_leaves_no_file_and_resumes(gdown_server):
    srv, payload = gdown_server
    f = _drive_file()
    srv.cut_after["gdrive/testid123"] = 2_000_000
    with pytest.raises(ck.MissingCheckpointError, match="resume") as ei:
        download.fetch_file(f)
    _by_hand_message_ok(str(ei.value), f)
    assert not ck.cached_path(f).exists()  # never a partial file where the checkpoint belongs
    stage = ck.cache_root() / "downloads" / "gdrive" / "testid123"
    partial = [p for p in stage.iterdir() if p.name.endswith(".part")]
    assert len(partial) == 1 and 0 < partial[0].stat().st_size < len(payload)
    path = download.fetch_file(f)
    assert path.read_bytes() == payload
    ranges = [r for (_m, p, r) in srv.requests if p == "gdrive/testid123"]
    assert ranges[0] is None and ranges[-1] is not None and ranges[-1].startswith("bytes=")


def test_gdown_html_page_is_refused(gdown_server):
    srv, _ = gdown_server
    srv.files["gdrive/testid123"] = b"<!DOCTYPE html><html><body>Quota exceeded</body></html>"
    f = _drive_file()
    with pytest.raises(ck.MissingCheckpointError, match="web page"):
        download.fetch_file(f)
    assert not ck.cached_path(f).exists()


def test_gdown_changed_file_fails_first_seen_checksum(gdown_server):
    srv, payload = gdown_server
    f = _drive_file()
    path = download.fetch_file(f)
    path.unlink()
    srv.files["gdrive/testid123"] = payload[::-1]
    with pytest.raises(ck.FetchError, match="first seen"):
        download.fetch_file(f)
    assert not ck.cached_path(f).exists()
