"""Hita cards: two holistic+patch tokenizers (Hita-V, Hita-U) and the GPTs trained on each (spec: shared/specs/hita.md).

Every file the upstream README links (19): 2 tokenizers, 7 Hita-V and 10 Hita-U GPTs, on the hub
repository ``yexiguafu/hita-gen``. GPT file names repeat across ``vanilla/`` and ``ultra/``; each
card pairs a GPT with the tokenizer of its own directory. The DINOv2 ViT-L/14-reg4 backbone is not
inside the tokenizer files: it is an extra file of each tokenizer card.

BPP is bits / (3 * 336 * 336): the tokenizer's input is 336x336 (the FIDs are measured after
resizing samples to 256).
"""

from ..registry import CheckpointFile, ModelCard, Published, TokenizerCard

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
        rfid=((336, Published(1.03, "Hita README, tokenizer table, Hita-V rFID (rIS 198.5)", _RFID_PROTO)),),
        extra_files=(BACKBONE,),
        arch=(("enable_vfm_recon", False),),
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
        rfid=((336, Published(0.57, "Hita README, tokenizer table, Hita-U rFID (rIS 221.8)", _RFID_PROTO)),),
        extra_files=(BACKBONE,),
        arch=(("enable_vfm_recon", True),),
        notes=("Hita-V plus a VFM-reconstruction head in the decoder (unused for tokens and images). params = the "
               "file without the DINOv2 ViT-L/14-reg4 backbone (304,372,736 params, extra file)."),
    ),
)

# GPT size -> (exact params, n_layer, n_head, dim); head_dim 64 except 60 for 2B
_SIZES = {
    "B": (136_152_576, 12, 12, 768),
    "L": (376_596_480, 24, 16, 1024),
    "XL": (816_806_400, 36, 20, 1280),
    "XXL": (1_461_500_928, 48, 24, 1536),
    "2B": (2_251_549_440, 48, 32, 1920),
}


def _card(tok: str, size: str, epochs: int, fid: float, is_: float, free: tuple[float, float] | None = None, note: str = ""):
    d = "vanilla" if tok == "V" else "ultra"
    path = f"{d}/GPT-{size}/GPT-{size}-{epochs}e.pt"
    params, n_layer, n_head, dim = _SIZES[size]
    alt = ()
    if free is not None:
        alt = (Published(free[0], f"{_README_FREE}, Hita-U GPT-{size} {epochs} epochs (IS {free[1]})", _PROTO_FREE),)
    rfid = 1.03 if tok == "V" else 0.57
    return ModelCard(
        id=f"hita-{tok.lower()}-{size.lower()}-{epochs}e",
        family="hita",
        family_label="Hita",
        size=f"GPT-{size} {epochs}e",
        params=params,
        resolution=336,
        tokenizer_id=f"hita-{tok.lower()}",
        codebook_size=16384,
        tokens_per_image=569,
        files=(CheckpointFile("transformer", path, _URL + path, "ema", repo=_HF),),
        fid=Published(fid, f"{_README_CFG[tok]}, GPT-{size} {epochs} epochs (IS {is_})", _PROTO_CFG),
        rfid=Published(rfid, f"Hita README, tokenizer table, Hita-{tok} rFID", _RFID_PROTO),
        alt_fid=alt,
        aliases=(f"Hita{tok}-{size}-{epochs}e", f"Hita-{tok} GPT-{size} {epochs}e"),
        group=f"Hita-{tok}-{epochs}e",
        arch=(("n_layer", n_layer), ("n_head", n_head), ("dim", dim)),
        notes=("BPP = bits / (3*336*336), the tokenizer's input side; 569 tokens = 128 holistic + 441 patch; "
               f"pairs with the Hita-{tok} tokenizer only (same file names exist for the other tokenizer)." + note),
    )


_TYPO_V300 = " README link text says '{}-50e.pt' but the URL is this 300-epoch file."
_TYPO_U2B = " README epochs column says 50 for this row but the link is GPT-2B-100e.pt (listed as 100)."

CARDS = (
    _card("V", "B", 50, 5.85, 212.3),
    _card("V", "B", 300, 4.33, 238.9, note=_TYPO_V300.format("HitaV-B")),
    _card("V", "L", 50, 3.75, 262.1),
    _card("V", "L", 300, 2.86, 267.3, note=_TYPO_V300.format("HitaV-L")),
    _card("V", "XL", 50, 2.98, 253.4),
    _card("V", "XXL", 50, 2.70, 274.8),
    _card("V", "2B", 50, 2.59, 281.9),
    _card("U", "B", 50, 4.21, 229.0, (8.32, 108.5)),
    _card("U", "B", 250, 3.49, 237.5, (5.19, 138.9)),
    _card("U", "L", 50, 2.97, 273.3, (3.96, 151.8)),
    _card("U", "L", 250, 2.44, 274.6, (2.46, 188.9)),
    _card("U", "XL", 50, 2.40, 276.3, (2.66, 178.9)),
    _card("U", "XL", 100, 2.16, 275.3, (2.21, 195.8)),
    _card("U", "XXL", 50, 2.07, 273.8, (2.21, 196.0)),
    _card("U", "XXL", 100, 2.01, 276.4, (1.84, 217.2)),
    _card("U", "2B", 50, 1.93, 286.0, (1.97, 208.6)),
    _card("U", "2B", 100, 1.82, 282.9, (1.69, 233.0), note=_TYPO_U2B),
)
