"""Registry invariants: ids, aliases, provenance of every published figure, files."""

from __future__ import annotations

import pytest

from visbpp.core.registry import catalog as r


def _published(card):
    yield "fid", card.fid
    yield "rfid", card.rfid
    for i, p in enumerate(card.alt_fid):
        yield f"alt_fid[{i}]", p


def test_every_published_figure_has_a_source_and_a_protocol():
    missing = [f"{c.id}.{name}" for c in r.model_cards() for name, p in _published(c)
               if p is not None and not (p.source.strip() and p.protocol.strip())]
    missing += [f"{t.id}.rfid@{res}" for t in r.tokenizer_cards() for res, p in t.rfid
                if not (p.source.strip() and p.protocol.strip())]
    assert missing == []


def test_published_table_has_the_fourteen_rows_and_ids_are_unique():
    pub = r.model_cards(published_only=True)
    assert len(pub) == 14 and all(c.reference_bpp and c.fid and c.rfid for c in pub)
    ids = [c.id for c in r.model_cards()] + [t.id for t in r.tokenizer_cards()]
    assert len(ids) == len(set(ids))


def test_aliases_and_did_you_mean():
    assert r.get_card("LlamaGen 111M_256").id == "llamagen-b-256"
    assert r.get_card("VAR-d16").id == "var-d16"
    with pytest.raises(r.UnknownModelError, match="did you mean .*'var-d16'"):
        r.get_card("var-d61")
    with pytest.raises(r.UnknownModelError, match="did you mean 'llamagen-b-256'"):
        r.get_card("llamagen-b-265")


def test_every_card_names_existing_tokenizer_and_files_keyed_on_repository():
    seen = {}
    for c in r.model_cards():
        r.get_tokenizer_card(c.tokenizer_id)
        for f in c.files:
            assert f.url and f.cache_relpath
            seen.setdefault(f.cache_relpath, c.id)
    # Open-MAGVIT2 and IBQ ship files with equal names: their cache paths must still differ
    ibq = r.get_card("ibq-b-256").files[0]
    omg = r.get_card("omg-b-256").files[0]
    assert ibq.filename == omg.filename and ibq.cache_relpath != omg.cache_relpath
