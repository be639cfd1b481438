"""LlamaGen cards: VQ-16 tokenizer + class-conditional GPT (spec: shared/specs/llamagen.md)."""

from visbpp.core.registry.cards import PUBLISHED_TABLE, TABLE_FID_PROTOCOL, TABLE_RFID_PROTOCOL
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_HF = "hf:FoundationVision/LlamaGen"
_URL = "https://huggingface.co/FoundationVision/LlamaGen/resolve/main/"
_README = "LlamaGen README, AR-models table, FID (256x256)"
_README_PROTO = "classifier-free guidance cfg {cfg}, sampled at {res}, evaluated at 256 (ADM evaluator, VIRTUAL_imagenet256_labeled.npz)"

# The ``compare`` set of the AR models on LlamaGen-256's tokens (same tokenizer file and preprocessing):
# LlamaGen's raster GPTs and the random-order ARPG / RandAR models (their cards name it too). One
# tokenizer, so no tokenizer comparison is fitted on it; its models meet in the same-tokenizer pairs.
COMPARE_VQ16_256 = "LlamaGen VQ-16 tokens @256: raster (LlamaGen) vs random-order (ARPG, RandAR)"

TOKENIZERS = (
    TokenizerCard(
        id="llamagen-vq16",
        family="llamagen",
        params=71_883_403,
        codebook_size=16384,
        code_dim=8,
        downsample=16,
        file=CheckpointFile("tokenizer", "vq_ds16_c2i.pt", _URL + "vq_ds16_c2i.pt", "model", repo=_HF),
        rfid=(
            (256, Published(2.19, "LlamaGen README, VQ-VAE table, rFID (256x256), 16x16 tokens", "ImageNet val, 256x256 input",
                            guidance="none", eval_resolution=256)),
            (384, Published(0.94, "LlamaGen README, VQ-VAE table, rFID (256x256), 24x24 tokens",
                            "ImageNet val, 384x384 input, rFID column at 256x256", guidance="none", eval_resolution=256)),
        ),
    ),
)


# GPT sizes as plain data (upstream GPT arguments); head_dim = dim / n_head (64, except 100 for 3B).
_GPT = {
    "B": {"n_layer": 12, "n_head": 12, "dim": 768},
    "L": {"n_layer": 24, "n_head": 16, "dim": 1024},
    "XL": {"n_layer": 36, "n_head": 20, "dim": 1280},
    "XXL": {"n_layer": 48, "n_head": 24, "dim": 1536},
    "3B": {"n_layer": 24, "n_head": 32, "dim": 3200},
}


def _same_tokens(gpt: str) -> tuple[str, ...]:
    """``compare``: this @384 model and the models scoring the same VQ-16 tokens with a GPT of the same
    size in another order (PAR's cards copy it from here)."""
    return (f"{gpt} GPT on VQ-16 @384 tokens",)


def _card(*, mid, gpt, size, params, res, fname, container, fid, rfid, bpp, readme_fid, cfg, aliases, published=True,
          alt_fid=(), **extra):
    grid = res // 16
    readme = Published(readme_fid, _README, _README_PROTO.format(cfg=cfg, res=res), guidance=f"cfg {cfg}",
                       eval_resolution=256, origin="readme")
    return ModelCard(
        id=mid,
        family="llamagen",
        family_label="LlamaGen",
        size=size,
        params=params,
        resolution=res,
        tokenizer_id="llamagen-vq16",
        codebook_size=16384,
        tokens_per_image=grid * grid,
        files=(CheckpointFile("transformer", fname, _URL + fname, container, repo=_HF),),
        fid=Published(fid, PUBLISHED_TABLE, TABLE_FID_PROTOCOL) if fid is not None else Published(
            readme_fid, f"LlamaGen README, cfg {cfg} (AR-models table, FID (256x256))", _README_PROTO.format(cfg=cfg, res=res),
            guidance=f"cfg {cfg}", eval_resolution=256, origin="readme",
        ),
        rfid=Published(rfid, PUBLISHED_TABLE, TABLE_RFID_PROTOCOL) if published else Published(
            rfid, f"LlamaGen README, VQ-VAE table, rFID (256x256), {grid}x{grid} tokens",
            f"ImageNet val, {res}x{res} input, rFID column at 256x256", guidance="none", eval_resolution=256),
        alt_fid=((readme,) if fid is not None else ()) + alt_fid,
        reference_bpp=bpp,
        aliases=aliases,
        in_published_table=published,
        arch=dict(_GPT[gpt]),
        **extra,
    )


CARDS = (
    _card(mid="llamagen-b-256", gpt="B", size="111M_256 (B)", params=110_888_448, res=256, fname="c2i_B_256.pt",
          container="model", fid=8.69, rfid=2.19, bpp=0.0143224, readme_fid=5.46, cfg=2.0,
          aliases=("LlamaGen 111M_256", "111M_256", "LlamaGen-B-256", "GPT-B-256"), compare=(COMPARE_VQ16_256,)),
    _card(mid="llamagen-b-384", gpt="B", size="111M_384 (B)", params=110_888_448, res=384, fname="c2i_B_384.pt",
          container="model", fid=12.89, rfid=0.94, bpp=0.0137373, readme_fid=6.09, cfg=2.0,
          aliases=("LlamaGen 111M_384", "111M_384", "LlamaGen-B-384", "GPT-B-384")),
    _card(mid="llamagen-l-256", gpt="L", size="343M_256 (L)", params=342_910_976, res=256, fname="c2i_L_256.pt",
          container="model", fid=4.21, rfid=2.19, bpp=0.0139988, readme_fid=3.80, cfg=2.0,
          aliases=("LlamaGen 343M_256", "343M_256", "LlamaGen-L-256", "GPT-L-256"), compare=(COMPARE_VQ16_256,)),
    _card(mid="llamagen-l-384", gpt="L", size="343M_384 (L)", params=342_910_976, res=384, fname="c2i_L_384.pt",
          container="model", fid=5.01, rfid=0.94, bpp=0.0133479, readme_fid=3.07, cfg=2.0,
          aliases=("LlamaGen 343M_384", "343M_384", "LlamaGen-L-384", "GPT-L-384")),
    _card(mid="llamagen-xl-384", gpt="XL", size="775M_384 (XL)", params=774_699_520, res=384, fname="c2i_XL_384.pt",
          container="model", fid=3.42, rfid=0.94, bpp=0.0131801, readme_fid=2.62, cfg=1.75,
          aliases=("LlamaGen 775M_384", "775M_384", "LlamaGen-XL-384", "GPT-XL-384"), compare=_same_tokens("XL")),
    _card(mid="llamagen-xxl-384", gpt="XXL", size="1.4B_384 (XXL)", params=1_410_972_672, res=384,
          fname="c2i_XXL_384.pt", container=None, fid=2.89, rfid=0.94, bpp=0.0131356, readme_fid=2.34, cfg=1.75,
          aliases=("LlamaGen 1.4B_384", "1.4B_384", "LlamaGen-XXL-384", "GPT-XXL-384"), compare=_same_tokens("XXL")),
    # Extra released checkpoint, not in the published table (spec: "Extra released checkpoints").
    # Its only upstream FID is the README's, sampled with CFG 1.65: kept out of the published-table
    # fit groups (explicit group) so it is never mixed silently with that table's FID column.
    _card(mid="llamagen-3b-384", gpt="3B", size="3.1B_384 (3B)", params=3_096_659_200, res=384,
          fname="c2i_3B_384.pt", container=None, fid=None, rfid=0.94, bpp=None, readme_fid=2.18, cfg=1.65,
          aliases=("LlamaGen 3.1B_384", "3.1B_384", "LlamaGen-3B-384", "GPT-3B-384", "LlamaGen-3B"), published=False,
          alt_fid=(Published(9.38, "Chen et al. 2024, CCA (arXiv 2410.09347), Table 2", "without guidance (third party)",
                             guidance="none", origin="third-party"),),
          group="LlamaGen-384-readme-cfg", compare=_same_tokens("3B"),
          notes="head_dim 100 (n_head 32 fixed: not readable from the weights); bare state dict (FSDP run)."),
)
