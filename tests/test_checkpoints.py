"""Checkpoint fetching against a local HTTP server: download, resume, checksums, offline, locking, safety."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading

import pytest
import torch

from conformance_utils import conformance_root
from http_fixture import FileServer
from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry import download
from visbpp.core.registry.catalog import CheckpointFile, get_card
from visbpp.core.registry.checkpoint_io import CheckpointError, read_checkpoint, read_state_dict


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    for v in ("VISBPP_OFFLINE", "HF_HUB_OFFLINE", "VISBPP_CHECKPOINTS"):
        monkeypatch.delenv(v, raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def payload() -> bytes:
    p = conformance_root() / "llamagen" / "transformer.pt"
    if p.is_file():
        return p.read_bytes()
    return os.urandom(300_000)  # content is irrelevant for transfer tests


def _http_file(server: FileServer, name="w.pt", sha=None) -> CheckpointFile:
    return CheckpointFile("transformer", name, f"{server.url}/page", "model", repo=f"{server.url}/page",
                          direct_url=f"{server.url}/files/{name}", sha256=sha)


def test_download_and_verify(payload):
    sha = hashlib.sha256(payload).hexdigest()
    with FileServer({"files/w.pt": payload}) as srv:
        f = _http_file(srv, sha=sha)
        assert f.source_kind == "http"
        path = download.fetch_file(f)
    assert path.read_bytes() == payload
    assert path == ck.cached_path(f)
    assert ck.verify(f, path) == sha


def test_interrupted_download_resumes_with_range(payload):
    with FileServer({"files/w.pt": payload}) as srv:
        f = _http_file(srv)
        srv.cut_after["files/w.pt"] = 100_000
        with pytest.raises(ck.FetchError, match="resume"):
            download.fetch_file(f)
        part = ck.cached_path(f).with_name("w.pt.part")
        assert part.stat().st_size == 100_000 and not ck.cached_path(f).exists()
        path = download.fetch_file(f)
        ranges = [r for (_m, p, r) in srv.requests if p == "files/w.pt"]
    assert path.read_bytes() == payload
    assert ranges == [None, "bytes=100000-"]


def test_checksum_mismatch_leaves_no_file(payload):
    with FileServer({"files/w.pt": payload}) as srv:
        f = _http_file(srv, sha="0" * 64)
        with pytest.raises(ck.FetchError, match=r"sha256 .* expected 0{64}"):
            download.fetch_file(f)
    assert not ck.cached_path(f).exists()
    assert not ck.cached_path(f).with_name("w.pt.part").exists()


def test_first_seen_checksum_is_recorded_and_enforced(payload):
    with FileServer({"files/w.pt": payload}) as srv:
        f = _http_file(srv)
        path = download.fetch_file(f)
    import json

    db = json.loads((ck.cache_root() / "checksums.json").read_text())
    assert db["first_seen"][f.cache_relpath] == hashlib.sha256(payload).hexdigest()
    # tamper: same size, different bytes -> later use must fail
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ck.FetchError, match="first seen"):
        ck.verify(f, path)


def test_offline_and_unreachable_errors_name_the_file(monkeypatch):
    f = CheckpointFile("transformer", "x.pt", "http://127.0.0.1:9/page", None, repo="http://127.0.0.1:9/page",
                       direct_url="http://127.0.0.1:9/files/x.pt")
    with pytest.raises(download.NetworkUnreachable, match=r"network unreachable: cannot connect to 127\.0\.0\.1:9 .*x\.pt "
                                                           r"was not downloaded"):
        download.fetch_file(f)
    monkeypatch.setenv("VISBPP_OFFLINE", "1")
    with pytest.raises(ck.MissingCheckpointError, match=r"offline mode: x\.pt .*Expected at"):
        download.fetch_file(f)


def test_manual_source_says_where_to_put_it():
    card = get_card("taming-1.4b")
    f = card.files[0]
    assert f.source_kind == "manual"  # the cin run folder is a share link with no direct download
    with pytest.raises(ck.MissingCheckpointError, match="put .*last.ckpt at"):
        download.fetch_file(f, model_id=card.id)


def test_concurrent_fetches_download_once(payload):
    with FileServer({"files/w.pt": payload}) as srv:
        f = _http_file(srv)
        results, errors = [], []

        def go():
            try:
                results.append(download.fetch_file(f))
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        ts = [threading.Thread(target=go) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        gets = [p for (m, p, _r) in srv.requests if m == "GET" and p == "files/w.pt"]
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert len(gets) == 1
    assert results[0].read_bytes() == payload


def test_hub_fetch_through_cli(payload, monkeypatch, home):
    """`visbpp fetch llamagen-b-256` through huggingface_hub against a local hub-like server."""
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    tok = os.urandom(50_000)
    with FileServer({
        "FoundationVision/LlamaGen/resolve/main/c2i_B_256.pt": payload,
        "FoundationVision/LlamaGen/resolve/main/vq_ds16_c2i.pt": tok,
    }) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        res = CliRunner().invoke(app, ["fetch", "llamagen-b-256"])
        assert res.exit_code == 0, res.output
        res2 = CliRunner().invoke(app, ["fetch", "--check", "llamagen-b-256"])
    card = get_card("llamagen-b-256")
    paths = {s.file.filename: s.path for s in ck.status(card)}
    assert paths["c2i_B_256.pt"].read_bytes() == payload
    assert paths["vq_ds16_c2i.pt"].read_bytes() == tok
    assert str(home / "hf") in str(paths["c2i_B_256.pt"])  # huggingface_hub's own cache layout
    assert res2.output.count("verified") == 2


def test_archive_fetch_unpacks_members(payload):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in (("m/stage1/model.pt", b"s1" * 1000), ("m/stage2/model.pt", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with FileServer({"a/m.tar.gz": buf.getvalue()}) as srv:
        url = f"{srv.url}/a/m.tar.gz"
        f2 = CheckpointFile("transformer", "model.pt", url, "state_dict", repo=url, archive_member="m/stage2/model.pt")
        f1 = CheckpointFile("tokenizer", "model.pt", url, "state_dict", repo=url, archive_member="m/stage1/model.pt")
        assert f2.source_kind == "archive"
        p2 = download.fetch_file(f2)
        p1 = download.fetch_file(f1)  # already unpacked: no second download
        gets = [p for (m, p, _r) in srv.requests if m == "GET"]
    assert p2.read_bytes() == payload and p1.read_bytes() == b"s1" * 1000
    assert gets == ["a/m.tar.gz"]


def test_checkpoint_dir_and_toml_paths(tmp_path, monkeypatch, home):
    card = get_card("llamagen-b-256")
    f = card.files[0]
    d = tmp_path / "mine"
    d.mkdir()
    (d / "c2i_B_256.pt").write_bytes(b"x")
    assert ck.locate(f, d) == d / "c2i_B_256.pt"
    with pytest.raises(ck.MissingCheckpointError, match=r"c2i_B_256\.pt .*Expected at .*visbpp fetch llamagen-b-256"):
        ck.require(f, None, card.id)
    other = tmp_path / "elsewhere.pt"
    other.write_bytes(b"y")
    (home / "checkpoints.toml").write_text(f'[paths]\n"c2i_B_256.pt" = "{other}"\n')
    assert ck.locate(f) == other


def test_tampered_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "payload": Evil()}, bad)
    with pytest.raises(CheckpointError, match="refused to load"):
        read_checkpoint(bad)
    assert not marker.exists()


def test_safetensors_copy_keyed_by_sha(tmp_path, home, monkeypatch):
    sd = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    src = tmp_path / "w.pt"
    torch.save({"model": sd, "epoch": 3}, src)
    first = read_state_dict(src, ["model"], safetensors_cache=True)
    assert (home / "safetensors" / f"{ck.file_sha256(src)}.safetensors").is_file()

    def no_unpickling(*a, **k):
        raise AssertionError("the second load must come from the safetensors copy")

    monkeypatch.setattr(torch, "load", no_unpickling)
    second = read_state_dict(src, ["model"], safetensors_cache=True)
    for k in sd:
        assert torch.equal(first[k], sd[k]) and torch.equal(second[k], sd[k])


@pytest.mark.parametrize("family", ["llamagen", "var", "rqtransformer", "taming", "openmagvit2", "ibq"])
def test_family_loads_through_the_safetensors_copy_give_identical_nll(family, monkeypatch, home):
    """VISBPP_SAFETENSORS_CACHE=1: the second load comes from the fast copy and scores identically."""
    import json

    import numpy as np

    from conformance_utils import require
    from visbpp.models import get_family

    folder = require(conformance_root() / family if (conformance_root() / family).is_dir() else None)
    cfg = json.loads((folder / "config.json").read_text())
    images = np.load(folder / "images.npy")
    labels = torch.from_numpy(np.load(folder / "labels.npy"))
    fam = get_family(family)
    from PIL import Image

    def score():
        tok = fam.load_tokenizer(str(folder / "tokenizer.pt"), cfg)
        ar = fam.load_transformer(str(folder / "transformer.pt"), cfg, tok)
        x = torch.stack([tok.preprocess(Image.fromarray(a)) for a in images])
        return ar.token_nll(tok.encode(x), labels)

    plain = score()
    monkeypatch.setenv("VISBPP_SAFETENSORS_CACHE", "1")
    first = score()   # writes the copies
    copies = sorted((home / "safetensors").glob("*.safetensors"))
    assert len(copies) >= 1
    second = score()  # reads them
    assert torch.equal(plain, first) and torch.equal(plain, second)


def _llamagen_fixture_folder():
    from conformance_utils import require

    src = conformance_root() / "llamagen"
    return require(src if (src / "transformer.pt").is_file() and (src / "tokenizer.pt").is_file() else None)


def test_run_resolution_verifies_first_seen_checksum(tmp_path, home):
    """A file that changes after its first use is refused when a job is built (not only by fetch)."""
    import shutil

    from visbpp.models.jobs import job_for_card

    src = _llamagen_fixture_folder()
    d = tmp_path / "ck"
    d.mkdir()
    shutil.copy(src / "transformer.pt", d / "c2i_B_256.pt")
    shutil.copy(src / "tokenizer.pt", d / "vq_ds16_c2i.pt")
    job_for_card("llamagen-b-256", checkpoint_dir=str(d))  # first sight: recorded
    data = bytearray((d / "c2i_B_256.pt").read_bytes())
    data[100] ^= 0xFF
    (d / "c2i_B_256.pt").write_bytes(bytes(data))
    with pytest.raises(ck.FetchError, match=r"c2i_B_256\.pt: sha256 .* first seen"):
        job_for_card("llamagen-b-256", checkpoint_dir=str(d))


def test_toml_path_that_does_not_exist_is_reported(tmp_path, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "checkpoints.toml").write_text(f'[paths]\n"c2i_B_256.pt" = "{tmp_path}/nope.pt"\n')
    f = get_card("llamagen-b-256").files[0]
    with pytest.raises(ck.MissingCheckpointError, match=r"checkpoints\.toml: the path given for .*nope\.pt"):
        ck.locate(f)
    assert ck.summary_status(get_card("llamagen-b-256"))[0] == "missing"


def test_config_of_another_family_is_refused(tmp_path):
    from visbpp.models.jobs import ConfigFileError, job_from_config

    src = _llamagen_fixture_folder()
    with pytest.raises(ConfigFileError, match=r"config is for family 'llamagen', but --family is 'var'"):
        job_from_config("var", str(src / "config.json"), str(src / "tokenizer.pt"), str(src / "transformer.pt"))


def test_files_in_the_default_huggingface_cache_are_found(tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    snap = tmp_path / "hfcache" / "models--FoundationVision--LlamaGen"
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text("abc123")
    (snap / "snapshots" / "abc123").mkdir(parents=True)
    (snap / "snapshots" / "abc123" / "c2i_B_256.pt").write_bytes(b"weights")
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hfcache"))
    f = get_card("llamagen-b-256").files[0]
    assert ck.locate(f) == snap / "snapshots" / "abc123" / "c2i_B_256.pt"


def test_models_and_fetch_check_see_a_checkpoint_dir(tmp_path):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    d = tmp_path / "mine"
    d.mkdir()
    (d / "c2i_B_256.pt").write_bytes(b"x")
    (d / "vq_ds16_c2i.pt").write_bytes(b"y")
    r = CliRunner().invoke(app, ["fetch", "--check", "llamagen-b-256", "--checkpoint-dir", str(d)])
    assert r.exit_code == 0 and r.output.count("present") == 2 and "missing" not in r.output
    r = CliRunner().invoke(app, ["models", "--checkpoint-dir", str(d)], env={"COLUMNS": "200"})
    line = next(ln for ln in r.output.splitlines() if ln.startswith("llamagen-b-256"))
    assert "present" in line


@pytest.fixture
def fresh_probes(monkeypatch):
    monkeypatch.setattr(download, "_probed", {})


def test_no_network_is_said_on_the_first_try_without_the_hubs_retries(monkeypatch, fresh_probes):
    """An endpoint whose name does not resolve: one NetworkUnreachable naming the host and the file,
    and the hub client (with its retries) is never called; later files of that host are not probed again."""
    import huggingface_hub

    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: calls.append(a) or "/nope")
    card = get_card("llamagen-b-256")
    files = ck.files_for(card)
    for f in files:
        with pytest.raises(download.NetworkUnreachable, match=rf"cannot resolve no-such-host\.invalid .*{f.filename} was "
                                                              r"not downloaded.*--checkpoint-dir"):
            download.fetch_file(f)
    assert calls == [] and list(download._probed) == [("no-such-host.invalid", 443)]


def test_a_resolver_that_hangs_is_given_up_after_the_probe_time(monkeypatch, fresh_probes):
    import threading

    release = threading.Event()
    monkeypatch.setattr(download, "PROBE_SECONDS", 0.2)
    monkeypatch.setattr(download.socket, "getaddrinfo", lambda *a, **k: release.wait(30) and [])
    try:
        with pytest.raises(download.NetworkUnreachable, match=r"no answer from hangs\.example:443 within 0\.2 s"):
            download.check_reachable("https://hangs.example/f.pt", "f.pt")
    finally:
        release.set()


def test_cli_fetch_without_network_one_error_then_names_the_files_not_tried(tmp_path, monkeypatch, fresh_probes):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    r = CliRunner().invoke(app, ["fetch", "llamagen-b-256", "llamagen-l-256"])
    assert r.exit_code == 1
    err = " ".join(r.stderr.split())
    assert err.count("error: network unreachable") == 1 and "Traceback" not in err and "Retry" not in err
    assert "not tried without a network:" in err and "c2i_L_256.pt" in err
