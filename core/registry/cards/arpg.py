"""ARPG cards: ARPG-L/XL/XXL, random-order generators on LlamaGen's VQ-16 tokenizer at 256 (spec:
shared/specs/arpg.md).

Not in the published table. FIDs: the README "Model Zoo" table (cosine schedule, 64 steps, the
guidance scale of the row); alternates: GETTING_STARTED's reproduction commands (arccos schedule,
"close to"). No FID without guidance is published. The tokens are LlamaGen-256's (same tokenizer
file, same preprocessing): the cards share its rFID and its ``compare`` set.
"""

from visbpp.core.registry.cards.llamagen import COMPARE_VQ16_256
from visbpp.core.registry.cards.llamagen import TOKENIZERS as _LLAMAGEN_TOKENIZERS
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published

_HF = "hf:hp-l33/ARPG"
_URL = "https://huggingface.co/hp-l33/ARPG/resolve/main/"
_VQ16 = _LLAMAGEN_TOKENIZERS[0]
_RFID = dict(_VQ16.rfid)[256]
_PROTO = ("class-conditional ImageNet 256x256, 50k samples (50 per class), {schedule} schedule, {steps} parallel "
          "decoding steps, classifier-free guidance {cfg} (linear cfg schedule, the sampler default), temperature 1, "
          "bf16; ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")

# sizes as plain data (upstream ModelArgs): n_layer = self + cross decoder blocks
_ARCH = {
    "L": {"n_layer": 24, "n_head": 16, "dim": 1024},
    "XL": {"n_layer": 36, "n_head": 20, "dim": 1280},
    "XXL": {"n_layer": 48, "n_head": 24, "dim": 1536},
}


def _card(*, size: str, params: int, fname: str, fid: float, cfg: float, alt: float, alt_cfg: float,
          aliases: tuple[str, ...]) -> ModelCard:
    return ModelCard(
        id=f"arpg-{size.lower()}",
        family="arpg",
        family_label="ARPG",
        size=f"ARPG-{size}",
        params=params,
        resolution=256,
        tokenizer_id=_VQ16.id,
        codebook_size=16384,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", fname, _URL + fname, "state_dict", repo=_HF),),
        fid=Published(fid, f"ARPG README, Model Zoo table, row ARPG-{size}",
                      _PROTO.format(schedule="cosine", steps=64, cfg=cfg), guidance=f"cfg {cfg}", eval_resolution=256,
                      origin="readme"),
        rfid=_RFID,
        alt_fid=(Published(alt, f"ARPG GETTING_STARTED.md, ARPG-{size} command (\"FID should be close to {alt}\")",
                           _PROTO.format(schedule="arccos", steps=64, cfg=alt_cfg), guidance=f"cfg {alt_cfg}",
                           eval_resolution=256, origin="readme"),),
        aliases=(f"ARPG-{size}", f"ARPG {size}", fname.removesuffix(".pt")) + aliases,
        group="ARPG",
        notes="random-order model (two-pass guided decoder); scored per order: --order raster | perm:K (default perm:4, "
              "the mean over 4 seeded permutations, raster beside it)",
        arch=dict(_ARCH[size]),
        compare=(COMPARE_VQ16_256,),
    )


CARDS = (
    _card(size="L", params=319_845_376, fname="arpg_300m.pt", fid=2.44, cfg=4.5, alt=2.38, alt_cfg=5.0,
          aliases=("ARPG 320M",)),
    _card(size="XL", params=718_997_760, fname="arpg_700m.pt", fid=2.10, cfg=6.0, alt=2.02, alt_cfg=6.0,
          aliases=("ARPG 719M",)),
    _card(size="XXL", params=1_302_449_664, fname="arpg_1b.pt", fid=1.94, cfg=7.5, alt=1.91, alt_cfg=7.5,
          aliases=("ARPG 1.3B",)),
)
