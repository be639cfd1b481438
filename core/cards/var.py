"""VAR cards: multi-scale VQVAE + next-scale transformer (spec: shared/specs/var.md)."""

from ..registry import CheckpointFile, ModelCard, Published, TokenizerCard
from . import PUBLISHED_TABLE

_HF = "hf:FoundationVision/var"
_URL = "https://huggingface.co/FoundationVision/var/resolve/main/"
_README = "VAR README, model zoo table"

TOKENIZERS = (
    TokenizerCard(
        id="var-vqvae",
        family="var",
        params=108_948_355,
        codebook_size=4096,
        code_dim=32,
        downsample=16,
        file=CheckpointFile("tokenizer", "vae_ch160v4096z32.pth", _URL + "vae_ch160v4096z32.pth", None, repo=_HF),
        rfid=((256, Published(1.78, PUBLISHED_TABLE, "may be the VAR paper's 'validation data' FID row, not a tokenizer rFID")),),
    ),
)


def _card(depth, size, params, fid, bpp, readme_fid):
    fname = f"var_d{depth}.pth"
    return ModelCard(
        id=f"var-d{depth}",
        family="var",
        family_label="VAR",
        size=size,
        params=params,
        resolution=256,
        tokenizer_id="var-vqvae",
        codebook_size=4096,
        tokens_per_image=680,
        files=(CheckpointFile("transformer", fname, _URL + fname, None, repo=_HF),),
        fid=Published(fid, PUBLISHED_TABLE, "VAR paper numbers"),
        rfid=Published(1.78, PUBLISHED_TABLE, "equals the VAR paper's 'validation data' FID row; may not be a tokenizer rFID"),
        alt_fid=(Published(readme_fid, _README, "README zoo FID"),),
        reference_bpp=bpp,
        aliases=(f"VAR {size}", f"VAR-d{depth}", f"d{depth}"),
        in_published_table=True,
    )


CARDS = (
    _card(16, "310M (d16)", 310_283_520, 3.30, 0.0303021, 3.55),
    _card(20, "600M (d20)", 600_917_136, 2.57, 0.0296986, 2.95),
    _card(24, "1B (d24)", 1_033_399_360, 2.09, 0.0293080, 2.33),
    _card(30, "2B (d30)", 2_010_020_356, 1.92, 0.0297070, 1.97),
)
