"""VAR cards: multi-scale VQVAE + next-scale transformer (spec: shared/specs/var.md)."""

from visbpp.core.registry.cards import PUBLISHED_TABLE
from visbpp.core.registry.catalog import BppProvenance, CheckpointFile, ModelCard, Published, TokenizerCard

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
        rfid=((256, Published(1.78, PUBLISHED_TABLE, "may be the VAR paper's 'validation data' FID row, not a tokenizer rFID",
                              guidance="none")),),
    ),
)


PN_256 = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)   # patch_nums (token grid side per scale) at 256
PN_512 = (1, 2, 3, 4, 6, 9, 13, 18, 24, 32)  # at 512
_CFG = "cfg (scale not stated)"
# The published table's VAR BPPs were scored by its code with the builder's default cond_drop_rate 0.1, which
# VAR's forward applies in every mode: about 10% of images (random per batch) scored with the null class.
TABLE_BPP_PROVENANCE = BppProvenance(
    source=PUBLISHED_TABLE,
    label_dropout=0.1,
    note="scored by the published table's code with 10% label dropout (VAR's cond_drop_rate 0.1, applied in eval "
         "mode too): about 10% of images scored with the null class, so not the class-conditional BPP `visbpp run` "
         "measures, and not exactly reproducible (random stream)",
)


def _card(*, depth, size, params, fid, bpp, readme_fid, extra_alt=()):
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
        fid=Published(fid, PUBLISHED_TABLE, "VAR paper 256x256 numbers, with classifier-free guidance", guidance=_CFG,
                      eval_resolution=256),
        rfid=Published(1.78, PUBLISHED_TABLE, "equals the VAR paper's 'validation data' FID row; may not be a tokenizer rFID",
                       guidance="none"),
        alt_fid=(Published(readme_fid, _README, "README zoo FID, 256x256", eval_resolution=256, origin="readme"),) + tuple(extra_alt),
        reference_bpp=bpp,
        reference_bpp_provenance=TABLE_BPP_PROVENANCE,
        aliases=(f"VAR {size}", f"VAR {size.split()[0]}", f"VAR-d{depth}", f"d{depth}"),
        in_published_table=True,
        arch={"depth": depth, "patch_nums": PN_256, "shared_aln": False},  # per-block AdaLN
    )


CARDS = (
    _card(depth=16, size="310M (d16)", params=310_283_520, fid=3.30, bpp=0.0303021, readme_fid=3.55),
    _card(depth=20, size="600M (d20)", params=600_917_136, fid=2.57, bpp=0.0296986, readme_fid=2.95),
    _card(depth=24, size="1B (d24)", params=1_033_399_360, fid=2.09, bpp=0.0293080, readme_fid=2.33),
    _card(depth=30, size="2B (d30)", params=2_010_020_356, fid=1.92, bpp=0.0297070, readme_fid=1.97, extra_alt=(
        Published(1.80, _README + ", row 'VAR-d30-re' (links the same var_d30.pth)", "same weights, another sampling/evaluation setting"),
        Published(1.73, "VAR paper 256x256 table, row 'VAR-d30-re'", "same weights, another sampling/evaluation setting",
                  eval_resolution=256),
    )),
)

# Extra released checkpoint, not in the published table (spec "Extra released checkpoints").
_D36_FID_SOURCE = ("VAR README model zoo row 'VAR-d36 | 512 | 2.63 | - | 2.3B' (added 2024-12-22, upstream commit "
                   "019df58); VAR paper Table 2 (ImageNet 512x512, 'VAR-d36-s', FID 2.63)")
_D36_FID_PROTOCOL = ("512x512 samples vs the 512 reference batch (VIRTUAL_imagenet512.npz), with classifier-free "
                     "guidance; another resolution and reference set than the 256 rows")

CARDS += (
    ModelCard(
        id="var-d36",
        family="var",
        family_label="VAR",
        size="2.3B (d36-s, 512)",
        params=2_353_893_904,
        resolution=512,
        tokenizer_id="var-vqvae",
        codebook_size=4096,
        tokens_per_image=2240,
        files=(CheckpointFile("transformer", "var_d36.pth", _URL + "var_d36.pth", None, repo=_HF),),
        fid=Published(2.63, _D36_FID_SOURCE, _D36_FID_PROTOCOL, guidance=_CFG, eval_resolution=512, origin="readme"),
        rfid=None,  # no rFID of the VQVAE at 512 is published
        reference_bpp=None,
        aliases=("VAR-d36", "VAR-d36-s", "d36", "VAR 2.3B"),
        in_published_table=False,
        arch={"depth": 36, "patch_nums": PN_512, "shared_aln": True},  # the 512px "d36-s" model: shared AdaLN
        notes="shared AdaLN (saln=1); 10 scales (1,2,3,4,6,9,13,18,24,32) = 2240 tokens; same tokenizer file "
              "vae_ch160v4096z32.pth run at 512; BPP at 512 is not comparable with the 256 rows",
    ),
)
