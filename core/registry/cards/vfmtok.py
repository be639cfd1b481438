"""VFMTok cards: one region-adaptive tokenizer on frozen DINOv2 features and the six LlamaGen GPTs
trained on it (spec: shared/specs/vfmtok.md; "Vision Foundation Models as Effective Visual
Tokenizers for Autoregressive Image Generation", arXiv 2507.08441; github.com/CVMI-Lab/VFMTok).

Every file the upstream README links: the tokenizer and GPT-B/L/XL/XXL/2B/3B on the hub repository
``yexiguafu/VFMTok``. The DINOv2 ViT-L/14-reg4 backbone is not inside the tokenizer file: it is the
tokenizer card's extra file, the same file as Hita's. The six GPTs share one tokenizer and form one
fit group; the README publishes FIDs with and without guidance for all six.

BPP is bits / (3 * 336 * 336): the tokenizer's input is 336x336 (the FIDs are measured after
resizing samples to 256).

Not supported yet: the VFMTok-RAR generators of the same hub repository
(``VFMTok-RAR/RAR-L-ultra/model.safetensors``, ``VFMTok-RAR/RAR-vanilla/vfmtok-rar-{l,xl,xxl}.safetensors``,
github.com/CVMI-Lab/VFMTok-RAR): RAR's generator on VFMTok tokens, not covered by the spec or its fixtures.
"""

from visbpp.core.registry.cards.hita import BACKBONE
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_HF = "hf:yexiguafu/VFMTok"
_URL = "https://huggingface.co/yexiguafu/VFMTok/resolve/main/"
_README_CFG = "VFMTok README, table 'AR generation models with classifier-free guidance (CFG)'"
_README_FREE = "VFMTok README, table 'AR generation without CFG'"
_SAMPLING = ("50k samples, classes uniform, generated at 336 (KV-cache sampler, GPT in bf16, top-k 0, top-p 1, "
             "temperature 1), decoded at 336, resized to 256 (bicubic), ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")
_PROTO_CFG = f"with classifier-free guidance, scale not stated by the README (sampler default 1.5); {_SAMPLING}"
_PROTO_FREE = f"without guidance (README 'without CFG' table); {_SAMPLING}"
_RFID_PROTO = ("ImageNet val 50k, center crop at 336, eval-mode reconstruction; reconstruction and original "
               "resized to 256 (PIL bicubic), ADM evaluator")
_CFG = "cfg (scale not stated)"  # README: no scale given for any FID (the sampler's default is 1.5)
NOT_SUPPORTED = ("Not supported yet: the VFMTok-RAR generators on this tokenizer (same hub repository, "
                 "VFMTok-RAR/...; RAR's generator).")

RFID = Published(0.89, "VFMTok README, tokenizer table, vfmtok-tokenizer rFID (rIS 215.4); the README said 0.98 "
                       "until commit 28fb34b (2026-05-21) changed it to 0.89 after a re-evaluation",
                 _RFID_PROTO, guidance="none", eval_resolution=256, origin="readme")

TOKENIZERS = (
    TokenizerCard(
        id="vfmtok-tokenizer",
        family="vfmtok",
        params=73_286_831,
        codebook_size=16384,
        code_dim=12,
        downsample=16,
        file=CheckpointFile("tokenizer", "DINOv2/tokenizer/vfmtok-tokenizer.pt",
                            _URL + "DINOv2/tokenizer/vfmtok-tokenizer.pt", "ema", repo=_HF),
        rfid=((336, RFID),),
        extra_files=(BACKBONE,),
        notes=("params = the file (encode + decode paths; 20,580,620 make tokens) without the DINOv2 ViT-L/14-reg4 "
               "backbone (304,372,736 params, extra file). 256 tokens = 16x16 carriers (raster order over their "
               "reference grid), one 16384 x 12 l2-normalised codebook. " + NOT_SUPPORTED),
    ),
)

# GPT sizes as plain data (upstream GPT arguments; head_dim 64 except 60 for 2B and 100 for 3B) and exact params
_GPT = {
    "B": {"n_layer": 12, "n_head": 12, "dim": 768},
    "L": {"n_layer": 24, "n_head": 16, "dim": 1024},
    "XL": {"n_layer": 36, "n_head": 20, "dim": 1280},
    "XXL": {"n_layer": 48, "n_head": 24, "dim": 1536},
    "2B": {"n_layer": 48, "n_head": 32, "dim": 1920},
    "3B": {"n_layer": 24, "n_head": 32, "dim": 3200},
}
_PARAMS = {"B": 110_888_448, "L": 342_910_976, "XL": 774_699_520, "XXL": 1_410_972_672, "2B": 2_188_389_120,
           "3B": 3_096_659_200}


def _card(*, size: str, epochs: int, fid: tuple[float, float], free: tuple[float, float]) -> ModelCard:
    path = f"DINOv2/GPT-{size}/GPT-{size}-{epochs}e.pt"
    return ModelCard(
        id=f"vfmtok-{size.lower()}",
        family="vfmtok",
        family_label="VFMTok",
        size=f"GPT-{size} {epochs}e",
        params=_PARAMS[size],
        resolution=336,
        tokenizer_id="vfmtok-tokenizer",
        codebook_size=16384,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", path, _URL + path, "ema", repo=_HF),),
        fid=Published(fid[0], f"{_README_CFG}, VFMTok-{size} (IS {fid[1]})", _PROTO_CFG, guidance=_CFG,
                      eval_resolution=256, origin="readme"),
        rfid=RFID,
        alt_fid=(Published(free[0], f"{_README_FREE}, VFMTok-{size} (IS {free[1]})", _PROTO_FREE, guidance="none",
                           eval_resolution=256, origin="readme"),),
        aliases=(f"VFMTok-{size}", f"VFMTok GPT-{size}"),
        group="VFMTok",
        arch=dict(_GPT[size]),
        notes=("BPP = bits / (3*336*336), the tokenizer's input side (FIDs are evaluated at 256); 256 tokens = the "
               "16x16 carrier grid in raster order; LlamaGen's GPT unchanged (block_size 256)."
               + (" n_head fixed per size (not readable from the weights)." if size in ("2B", "3B") else "")
               + " " + NOT_SUPPORTED),
    )


CARDS = (
    _card(size="B", epochs=300, fid=(3.43, 252.2), free=(3.09, 173.6)),
    _card(size="L", epochs=300, fid=(2.76, 276.1), free=(2.15, 230.1)),
    _card(size="XL", epochs=200, fid=(2.38, 277.2), free=(2.06, 257.2)),
    _card(size="XXL", epochs=200, fid=(2.28, 274.3), free=(2.09, 259.3)),
    _card(size="2B", epochs=200, fid=(2.27, 283.6), free=(2.20, 279.7)),
    _card(size="3B", epochs=200, fid=(2.07, 280.4), free=(2.04, 267.8)),
)
