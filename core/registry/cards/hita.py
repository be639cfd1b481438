"""Hita cards: two holistic+patch tokenizers (Hita-V, Hita-U) and the GPTs trained on each (spec: shared/specs/hita.md).

Every file the upstream README links (19): 2 tokenizers, 7 Hita-V and 10 Hita-U GPTs, on the hub
repository ``yexiguafu/hita-gen``. GPT file names repeat across ``vanilla/`` and ``ultra/``; each
card pairs a GPT with the tokenizer of its own directory. The DINOv2 ViT-L/14-reg4 backbone is not
inside the tokenizer files: it is an extra file of each tokenizer card.

BPP is bits / (3 * 336 * 336): the tokenizer's input is 336x336 (the FIDs are measured after
resizing samples to 256).
"""

from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_HF = "hf:yexiguafu/hita-gen"
_URL = "https://huggingface.co/yexiguafu/hita-gen/resolve/main/"
_DINO_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth"
_README_CFG = {"V": "Hita README, table 'AR generation models with Hita-V'", "U": "Hita README, table 'AR generation with Hita-U'"}
_README_FREE = "Hita README, table 'AR generation with CFG-free guidance'"
_PROTO_CFG = ("with classifier-free guidance, scale not stated by the README (sampler default 1.5); 50k samples "
              "generated at 336, resized to 256 (bicubic), ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")
_PROTO_FREE = ("without guidance (README 'CFG-free' table); 50k samples generated at 336, resized to 256 (bicubic), "
               "ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")
_RFID_PROTO = ("ImageNet val 50k, center crop at 336, reconstruction and original resized to 256 (PIL bicubic), "
               "ADM evaluator")

_CFG = "cfg (scale not stated)"  # README: no scale given for any FID (the sampler's default is 1.5)


def _rfid(*, value: float, source: str) -> Published:
    return Published(value, source, _RFID_PROTO, guidance="none", eval_resolution=256, origin="readme")


BACKBONE = CheckpointFile("backbone", "dinov2_vitl14_reg4_pretrain.pth", _DINO_URL, None,
                          repo="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/", direct_url=_DINO_URL)

TOKENIZERS = (
    TokenizerCard(
        id="hita-v",
        family="hita",
        params=104_240_839,
        codebook_size=16384,
        code_dim=8,
        downsample=16,
        file=CheckpointFile("tokenizer", "vanilla/tokenizer/hita-tok.pt", _URL + "vanilla/tokenizer/hita-tok.pt", "ema",
                            repo=_HF),
        rfid=((336, _rfid(value=1.03, source="Hita README, tokenizer table, Hita-V rFID (rIS 198.5)")),),
        extra_files=(BACKBONE,),
        arch={"enable_vfm_recon": False},
        notes=("README link text 'hita-vanilla.pt'; the file is vanilla/tokenizer/hita-tok.pt. params = the file "
               "(encode + decode paths; 50,836,276 make tokens) without the DINOv2 ViT-L/14-reg4 backbone "
               "(304,372,736 params, extra file). 128 holistic (12-d codebook) + 21x21 patch (8-d codebook) tokens."),
    ),
    TokenizerCard(
        id="hita-u",
        family="hita",
        params=104_767_687,
        codebook_size=16384,
        code_dim=8,
        downsample=16,
        file=CheckpointFile("tokenizer", "ultra/tokenizer/hita-ultra.pt", _URL + "ultra/tokenizer/hita-ultra.pt", "ema",
                            repo=_HF),
        rfid=((336, _rfid(value=0.57, source="Hita README, tokenizer table, Hita-U rFID (rIS 221.8)")),),
        extra_files=(BACKBONE,),
        arch={"enable_vfm_recon": True},
        notes=("Hita-V plus a VFM-reconstruction head in the decoder (unused for tokens and images). params = the "
               "file without the DINOv2 ViT-L/14-reg4 backbone (304,372,736 params, extra file)."),
    ),
)

# GPT sizes as plain data (upstream GPT arguments; head_dim 64 except 60 for 2B) and their exact params
_GPT = {
    "B": {"n_layer": 12, "n_head": 12, "dim": 768},
    "L": {"n_layer": 24, "n_head": 16, "dim": 1024},
    "XL": {"n_layer": 36, "n_head": 20, "dim": 1280},
    "XXL": {"n_layer": 48, "n_head": 24, "dim": 1536},
    "2B": {"n_layer": 48, "n_head": 32, "dim": 1920},
}
_PARAMS = {"B": 136_152_576, "L": 376_596_480, "XL": 816_806_400, "XXL": 1_461_500_928, "2B": 2_251_549_440}


def _card(*, tok: str, size: str, epochs: int, fid: float, is_: float, free: tuple[float, float] | None = None,
          note: str = ""):
    d = "vanilla" if tok == "V" else "ultra"
    path = f"{d}/GPT-{size}/GPT-{size}-{epochs}e.pt"
    alt = ()
    if free is not None:
        alt = (Published(free[0], f"{_README_FREE}, Hita-U GPT-{size} {epochs} epochs (IS {free[1]})", _PROTO_FREE,
                         guidance="none", eval_resolution=256, origin="readme"),)
    rfid = 1.03 if tok == "V" else 0.57
    return ModelCard(
        id=f"hita-{tok.lower()}-{size.lower()}-{epochs}e",
        family="hita",
        family_label="Hita",
        size=f"GPT-{size} {epochs}e",
        params=_PARAMS[size],
        resolution=336,
        tokenizer_id=f"hita-{tok.lower()}",
        codebook_size=16384,
        tokens_per_image=569,
        files=(CheckpointFile("transformer", path, _URL + path, "ema", repo=_HF),),
        fid=Published(fid, f"{_README_CFG[tok]}, GPT-{size} {epochs} epochs (IS {is_})", _PROTO_CFG, guidance=_CFG,
                      eval_resolution=256, origin="readme"),
        rfid=_rfid(value=rfid, source=f"Hita README, tokenizer table, Hita-{tok} rFID"),
        alt_fid=alt,
        aliases=(f"Hita{tok}-{size}-{epochs}e", f"Hita-{tok} GPT-{size} {epochs}e"),
        group=f"Hita-{tok}-{epochs}e",
        arch=dict(_GPT[size]),
        notes=("BPP = bits / (3*336*336), the tokenizer's input side; 569 tokens = 128 holistic + 441 patch; "
               f"pairs with the Hita-{tok} tokenizer only (same file names exist for the other tokenizer)." + note),
    )


_TYPO_V300 = " README link text says '{}-50e.pt' but the URL is this 300-epoch file."
_TYPO_U2B = " README epochs column says 50 for this row but the link is GPT-2B-100e.pt (listed as 100)."

CARDS = (
    _card(tok="V", size="B", epochs=50, fid=5.85, is_=212.3),
    _card(tok="V", size="B", epochs=300, fid=4.33, is_=238.9, note=_TYPO_V300.format("HitaV-B")),
    _card(tok="V", size="L", epochs=50, fid=3.75, is_=262.1),
    _card(tok="V", size="L", epochs=300, fid=2.86, is_=267.3, note=_TYPO_V300.format("HitaV-L")),
    _card(tok="V", size="XL", epochs=50, fid=2.98, is_=253.4),
    _card(tok="V", size="XXL", epochs=50, fid=2.70, is_=274.8),
    _card(tok="V", size="2B", epochs=50, fid=2.59, is_=281.9),
    _card(tok="U", size="B", epochs=50, fid=4.21, is_=229.0, free=(8.32, 108.5)),
    _card(tok="U", size="B", epochs=250, fid=3.49, is_=237.5, free=(5.19, 138.9)),
    _card(tok="U", size="L", epochs=50, fid=2.97, is_=273.3, free=(3.96, 151.8)),
    _card(tok="U", size="L", epochs=250, fid=2.44, is_=274.6, free=(2.46, 188.9)),
    _card(tok="U", size="XL", epochs=50, fid=2.40, is_=276.3, free=(2.66, 178.9)),
    _card(tok="U", size="XL", epochs=100, fid=2.16, is_=275.3, free=(2.21, 195.8)),
    _card(tok="U", size="XXL", epochs=50, fid=2.07, is_=273.8, free=(2.21, 196.0)),
    _card(tok="U", size="XXL", epochs=100, fid=2.01, is_=276.4, free=(1.84, 217.2)),
    _card(tok="U", size="2B", epochs=50, fid=1.93, is_=286.0, free=(1.97, 208.6)),
    _card(tok="U", size="2B", epochs=100, fid=1.82, is_=282.9, free=(1.69, 233.0), note=_TYPO_U2B),
)
