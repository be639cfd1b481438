"""models/jobs.py: registry jobs, checkpoint resolution, tokenizer keys shared across sizes."""

import pytest

from visbpp.models import jobs as J


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))


def test_job_for_card_resolves_files_and_shares_tokenizer_key(tmp_path, monkeypatch):
    d = tmp_path / "ckpts"
    d.mkdir()
    for name in ("vq_ds16_c2i.pt", "c2i_B_256.pt", "c2i_L_256.pt"):
        (d / name).write_bytes(name.encode())  # loaders are lazy: contents are not read here
    b = J.job_for_card("llamagen-b-256", str(d))
    lg = J.job_for_card("LlamaGen 343M_256", str(d))  # alias
    assert b.model_id == "llamagen-b-256" and lg.model_id == "llamagen-l-256"
    assert b.checkpoints == {"tokenizer": str(d / "vq_ds16_c2i.pt"), "transformer": str(d / "c2i_B_256.pt")}
    assert b.tokenizer_key == lg.tokenizer_key and b.reference_bpp == pytest.approx(0.0143224)
    (d / "vq_ds16_c2i.pt").write_bytes(b"other weights")
    with pytest.raises(J.ck.FetchError, match="vq_ds16_c2i.pt: sha256"):  # not the file first seen
        J.job_for_card("llamagen-b-256", str(d))
    d2 = tmp_path / "other"
    d2.mkdir()
    for name in ("vq_ds16_c2i.pt", "c2i_B_256.pt"):
        (d2 / name).write_bytes((d / name).read_bytes())
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "fresh-home"))
    assert J.job_for_card("llamagen-b-256", str(d2)).tokenizer_key != b.tokenizer_key
    with pytest.raises(J.MissingCheckpointError, match="c2i_XL_384.pt"):
        J.job_for_card("llamagen-xl-384", str(d))


def test_job_from_config_errors(tmp_path):
    (tmp_path / "c.json").write_text("[1, 2]")
    (tmp_path / "t.pt").write_bytes(b"x")
    with pytest.raises(J.ConfigFileError, match="JSON object"):
        J.job_from_config("llamagen", str(tmp_path / "c.json"), str(tmp_path / "t.pt"), str(tmp_path / "t.pt"))
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(Exception, match="m.pt: transformer checkpoint file not found"):
        J.job_from_config("llamagen", str(tmp_path / "c.json"), str(tmp_path / "t.pt"), str(tmp_path / "m.pt"))
