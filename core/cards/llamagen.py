"""LlamaGen cards: VQ-16 tokenizer + class-conditional GPT (spec: shared/specs/llamagen.md)."""

from ..registry import CheckpointFile, ModelCard, Published, TokenizerCard
from . import PUBLISHED_TABLE, TABLE_FID_PROTOCOL, TABLE_RFID_PROTOCOL

_HF = "hf:FoundationVision/LlamaGen"
_URL = "https://huggingface.co/FoundationVision/LlamaGen/resolve/main/"
_README = "LlamaGen README, AR-models table, FID (256x256)"
_README_PROTO = "classifier-free guidance cfg {cfg}, sampled at {res}, evaluated at 256 (ADM evaluator, VIRTUAL_imagenet256_labeled.npz)"

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
            (256, Published(2.19, "LlamaGen README, VQ-VAE table, rFID (256x256), 16x16 tokens", "ImageNet val, 256x256 input")),
            (384, Published(0.94, "LlamaGen README, VQ-VAE table, rFID (256x256), 24x24 tokens", "ImageNet val, 384x384 input, rFID column at 256x256")),
        ),
    ),
)


def _card(mid, size, params, res, fname, container, fid, rfid, bpp, readme_fid, cfg, aliases, published=True, alt_fid=(), **extra):
    grid = res // 16
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
            readme_fid, f"LlamaGen README, cfg {cfg} (AR-models table, FID (256x256))", _README_PROTO.format(cfg=cfg, res=res)
        ),
        rfid=Published(rfid, PUBLISHED_TABLE, TABLE_RFID_PROTOCOL) if published else Published(
            rfid, f"LlamaGen README, VQ-VAE table, rFID (256x256), {grid}x{grid} tokens",
            f"ImageNet val, {res}x{res} input, rFID column at 256x256"),
        alt_fid=((Published(readme_fid, _README, _README_PROTO.format(cfg=cfg, res=res)),) if fid is not None else ()) + alt_fid,
        reference_bpp=bpp,
        aliases=aliases,
        in_published_table=published,
        **extra,
    )


CARDS = (
    _card("llamagen-b-256", "111M_256 (B)", 110_888_448, 256, "c2i_B_256.pt", "model", 8.69, 2.19, 0.0143224, 5.46, 2.0,
          ("LlamaGen 111M_256", "111M_256", "LlamaGen-B-256", "GPT-B-256")),
    _card("llamagen-b-384", "111M_384 (B)", 110_888_448, 384, "c2i_B_384.pt", "model", 12.89, 0.94, 0.0137373, 6.09, 2.0,
          ("LlamaGen 111M_384", "111M_384", "LlamaGen-B-384", "GPT-B-384")),
    _card("llamagen-l-256", "343M_256 (L)", 342_910_976, 256, "c2i_L_256.pt", "model", 4.21, 2.19, 0.0139988, 3.80, 2.0,
          ("LlamaGen 343M_256", "343M_256", "LlamaGen-L-256", "GPT-L-256")),
    _card("llamagen-l-384", "343M_384 (L)", 342_910_976, 384, "c2i_L_384.pt", "model", 5.01, 0.94, 0.0133479, 3.07, 2.0,
          ("LlamaGen 343M_384", "343M_384", "LlamaGen-L-384", "GPT-L-384")),
    _card("llamagen-xl-384", "775M_384 (XL)", 774_699_520, 384, "c2i_XL_384.pt", "model", 3.42, 0.94, 0.0131801, 2.62, 1.75,
          ("LlamaGen 775M_384", "775M_384", "LlamaGen-XL-384", "GPT-XL-384")),
    _card("llamagen-xxl-384", "1.4B_384 (XXL)", 1_410_972_672, 384, "c2i_XXL_384.pt", None, 2.89, 0.94, 0.0131356, 2.34, 1.75,
          ("LlamaGen 1.4B_384", "1.4B_384", "LlamaGen-XXL-384", "GPT-XXL-384")),
    # Extra released checkpoint, not in the published table (spec: "Extra released checkpoints").
    # Its only upstream FID is the README's, sampled with CFG 1.65: kept out of the published-table
    # fit groups (explicit group) so it is never mixed silently with that table's FID column.
    _card("llamagen-3b-384", "3.1B_384 (3B)", 3_096_659_200, 384, "c2i_3B_384.pt", None, None, 0.94, None, 2.18, 1.65,
          ("LlamaGen 3.1B_384", "3.1B_384", "LlamaGen-3B-384", "GPT-3B-384", "LlamaGen-3B"), published=False,
          alt_fid=(Published(9.38, "Chen et al. 2024, CCA (arXiv 2410.09347), Table 2", "without guidance (third party)"),),
          group="LlamaGen-384-readme-cfg",
          notes="head_dim 100 (n_head 32 fixed: not readable from the weights); bare state dict (FSDP run)."),
)
