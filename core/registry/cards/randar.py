"""RandAR cards: RandAR-L and RandAR-XL on LlamaGen's VQ-16 tokens, and RandAR-L on the MaskGIT-VQGAN
tokens (one architecture on two tokenizers), all at 256 (spec: shared/specs/randar.md).

Not in the published table. FIDs: the README "Pre-trained Models" table (the released cosine-LR
retrains; guidance rising linearly from 1 to the row's "optimal CFG" over the tokens, 88 parallel
steps, the script default). The MaskGIT row's tokenizer is RAR's file with RandAR's own
preprocessing (ADM crop, [0, 1] input): its own tokenizer card, so its tokens never mix with RAR's.
"""

from dataclasses import replace

from visbpp.core.registry.cards.llamagen import COMPARE_VQ16_256
from visbpp.core.registry.cards.llamagen import TOKENIZERS as _LLAMAGEN_TOKENIZERS
from visbpp.core.registry.cards.rar import TOKENIZERS as _RAR_TOKENIZERS
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published

_HF = "hf:ziqipang/RandAR"
_URL = "https://huggingface.co/ziqipang/RandAR/resolve/main/"
_VQ16 = _LLAMAGEN_TOKENIZERS[0]
_MASKGIT = next(t for t in _RAR_TOKENIZERS if t.id == "rar-maskgit-vqgan")
_SRC = "RandAR README, Pre-trained Models table, row RandAR-{size} ({tok} tokenizer, cosine LR schedule)"
_PROTO = ("class-conditional ImageNet 256x256, 50k samples, guidance scale searched 2.0-8.0 on 10k samples, rising "
          "linearly from 1 to {cfg} over the tokens, 88 parallel decoding steps (script default), temperature 1, bf16; "
          "ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")

TOKENIZERS = (
    replace(_MASKGIT, id="randar-maskgit-vqgan", family="randar",
            notes="RAR's MaskGIT-VQGAN file (bare state dict, plain L2 argmin) fed RandAR's preprocessing: ADM "
                  "center_crop_arr, [0, 1] input (RAR's resize + centre crop changes tokens)."),
)
_RFID = {_VQ16.id: dict(_VQ16.rfid)[256], "randar-maskgit-vqgan": dict(TOKENIZERS[0].rfid)[256]}

# sizes as plain data (upstream RandARTransformer arguments)
_ARCH = {"L": {"n_layer": 24, "n_head": 16, "dim": 1024}, "XL": {"n_layer": 36, "n_head": 20, "dim": 1280}}


def _card(*, mid: str, size: str, tok: str, params: int, fname: str, fid: float, cfg: float, group: str,
          aliases: tuple[str, ...], compare: tuple[str, ...] = (), notes: str = "") -> ModelCard:
    maskgit = tok == "randar-maskgit-vqgan"
    return ModelCard(
        id=mid,
        family="randar",
        family_label="RandAR",
        size=f"RandAR-{size} ({'MaskGIT' if maskgit else 'LlamaGen'})",
        params=params,
        resolution=256,
        tokenizer_id=tok,
        codebook_size=1024 if maskgit else 16384,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", fname, _URL + fname, None, repo=_HF),),
        fid=Published(fid, _SRC.format(size=size, tok="MaskGIT" if maskgit else "LLaMAGen"), _PROTO.format(cfg=cfg),
                      guidance=f"cfg {cfg}", eval_resolution=256, origin="readme"),
        rfid=_RFID[tok],
        aliases=(fname.removesuffix(".safetensors"),) + aliases,
        group=group,
        notes=("random-order model (position-instruction tokens); scored per order: --order raster | perm:K (default "
               "perm:4, the mean over 4 seeded permutations, raster beside it). " + notes).strip(),
        arch=dict(_ARCH[size]),
        compare=compare,
    )


CARDS = (
    _card(mid="randar-l-llamagen", size="L", tok=_VQ16.id, params=342_912_000,
          fname="randar_0.3b_llamagen_360k_bs_1024_lr_0.0004.safetensors", fid=2.65, cfg=3.4, group="RandAR-LlamaGen",
          aliases=("RandAR-L", "RandAR-L-LlamaGen", "RandAR 0.3B"), compare=(COMPARE_VQ16_256,),
          notes="The paper's RandAR-L (linear LR, FID 2.55) is not released."),
    _card(mid="randar-xl", size="XL", tok=_VQ16.id, params=774_700_800,
          fname="randar_0.7b_llamagen_360k_bs_1024_lr_0.0004.safetensors", fid=2.27, cfg=4.0, group="RandAR-LlamaGen",
          aliases=("RandAR-XL", "RandAR-XL-LlamaGen", "RandAR 0.7B"), compare=(COMPARE_VQ16_256,),
          notes="The paper's RandAR-XL (linear LR, FID 2.25) is not released."),
    _card(mid="randar-l-maskgit", size="L", tok="randar-maskgit-vqgan", params=311_454_720,
          fname="randar_0.3b_maskgit_360k_bs_1024_lr_0.0004.safetensors", fid=2.47, cfg=4.0, group="RandAR-MaskGIT",
          aliases=("RandAR-L-MaskGIT", "RandAR 0.3B MaskGIT"),
          notes="Pair with the MaskGIT file, not vq_ds16_c2i.pt (the upstream config still names the latter)."),
)
