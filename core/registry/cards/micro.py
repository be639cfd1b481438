"""Micro zoo cards: tiny LlamaGen-architecture models trained in the repo on the sklearn digits.

Everything about them (files and their sha256, parameters, held-out BPP, micro-FID) is read
from ``core/assets/micro/zoo.json``, which ``visbpp zoo train`` writes next to the weights.
Their quality figure is *micro-FID* (Fréchet distance in the features of a small digits
classifier), never FID: the cards say so in ``fid.source`` and ``fid.protocol``.
"""

from __future__ import annotations

import json

from visbpp.core.files import ASSETS_DIR
from visbpp.core.registry.catalog import MICRO_FAMILY, CheckpointFile, ModelCard, Published, TokenizerCard

ZOO_DIR = ASSETS_DIR / "micro"
REPO = "bundled:micro"
GROUP = "Micro (digits 16px)"
SOURCE = "visbpp zoo train (core/assets/micro/zoo.json)"
PROTOCOL = ("micro-FID: Fréchet distance of DigitClassifier features, {n} class-conditional samples "
            "(no guidance) vs the 360 held-out digits, 16x16")
RPROTOCOL = "micro-FID of tokenizer reconstructions of the 360 held-out digits vs the originals, 16x16"
REFERENCE_SOURCE = ("shipped held-out BPP of the micro zoo, measured in this repo by `visbpp zoo train` "
                    "(core/assets/micro/zoo.json); not a published value")

# The architecture of each micro size (the one place it is written): what `visbpp zoo train` trains and
# what each card's ``arch`` carries; about 10x in parameters from the smallest to the largest.
SIZES = {
    "micro-s": {"dim": 32, "n_layer": 1, "n_head": 2},
    "micro-m": {"dim": 48, "n_layer": 2, "n_head": 2},
    "micro-l": {"dim": 64, "n_layer": 3, "n_head": 4},
    "micro-xl": {"dim": 96, "n_layer": 3, "n_head": 4},
}


def _file(role: str, name: str, sha: dict) -> CheckpointFile:
    return CheckpointFile(role, name, f"bundled:micro/{name}", None, repo=REPO, sha256=sha.get(name))


def _load() -> tuple[tuple[TokenizerCard, ...], tuple[ModelCard, ...]]:
    p = ZOO_DIR / "zoo.json"
    if not p.is_file():
        return (), ()
    meta = json.loads(p.read_text())
    sha = meta["sha256"]
    tmeta = meta["tokenizer"]
    n = 10 * meta["settings"]["samples_per_class"]
    rfid = Published(round(tmeta["micro_rfid"], 4), SOURCE, RPROTOCOL, metric="micro-FID", guidance="none")
    toks = (TokenizerCard(
        id="micro-vq", family=MICRO_FAMILY, params=tmeta["params"], codebook_size=128, code_dim=8, downsample=2,
        file=_file("tokenizer", tmeta["file"], sha), rfid=((16, rfid),),
        notes="LlamaGen VQ tokenizer code at width 32, two levels",
    ),)
    cards = []
    for mid, m in sorted(meta["models"].items(), key=lambda kv: kv[1]["params"]):
        cards.append(ModelCard(
            id=mid, family=MICRO_FAMILY, family_label="Micro", size=mid.split("-", 1)[1].upper(), params=m["params"],
            resolution=16, tokenizer_id="micro-vq", codebook_size=128, tokens_per_image=64,
            files=(_file("transformer", m["file"], sha),),
            fid=Published(round(m["micro_fid"], 4), SOURCE, PROTOCOL.format(n=n), metric="micro-FID", guidance="none"),
            rfid=rfid,
            reference_bpp=round(m["heldout_bpp"], 7),
            aliases=(f"Micro {mid.split('-', 1)[1].upper()}",),
            group=GROUP,
            notes="held-out BPP measured by the training script on the float16 weights as shipped",
            arch=dict(SIZES[mid]),
        ))
    return toks, tuple(cards)


TOKENIZERS, CARDS = _load()
