"""IBQ cards: 16384-code IBQ tokenizer + class-conditional AdaLN AR B/L/XL/XXL at 256 (spec: shared/specs/ibq.md).

Not in the published table: FID/rFID come from the SEED-Voken docs. The AR files have the same
names as Open-MAGVIT2's (``AR_256_B.ckpt``...), so every file names its own hub repository.
"""

from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_HF = "https://huggingface.co/TencentARC/{repo}/resolve/main/{file}"
_DOCS_AR = "SEED-Voken docs/IBQ.md, Stage II 'Performance and Models' table, row {row}"
_DOCS_TOK = "SEED-Voken docs/IBQ.md, Stage I 'Performance and Models' table, row 'IBQ | 16x16 | 16384 | 1.37'"
_PROTO_AR = "ImageNet 256x256 class-conditional generation, FID as reported by the SEED-Voken docs (their sampling settings)"
_PROTO_TOK = "ImageNet 256x256 reconstruction (ImageNet val), EMA tokenizer weights"


def _file(role: str, repo: str, filename: str, with_tokenizer: bool = False) -> CheckpointFile:
    return CheckpointFile(role, filename, _HF.format(repo=repo, file=filename), "state_dict",
                          repo=f"hf:TencentARC/{repo}", contains_tokenizer=with_tokenizer)


_RFID = Published(1.37, _DOCS_TOK, _PROTO_TOK, guidance="none", eval_resolution=256)

TOKENIZERS = (
    TokenizerCard(
        id="ibq-16384",
        family="ibq",
        params=110_982_019,
        codebook_size=16_384,
        code_dim=256,
        downsample=16,
        file=_file("tokenizer", "IBQ-Tokenizer-16384", "imagenet256_16384.ckpt"),
        rfid=((256, _RFID),),
        notes="Code = argmax of the dot product with the codebook. The AR files carry this tokenizer (its EMA "
              "weights) under first_stage_model.*, which is what scoring uses.",
    ),
)


def _card(*, mid: str, size: str, params: int, repo: str, fname: str, fid: float, row: str, aliases: tuple[str, ...],
          arch: dict) -> ModelCard:
    return ModelCard(
        id=mid,
        family="ibq",
        family_label="IBQ",
        size=size,
        params=params,
        resolution=256,
        tokenizer_id="ibq-16384",
        codebook_size=16_384,
        tokens_per_image=256,
        files=(_file("transformer", repo, fname, with_tokenizer=True),),
        fid=Published(fid, _DOCS_AR.format(row=row), _PROTO_AR, eval_resolution=256, origin="readme"),
        rfid=_RFID,
        reference_bpp=None,
        aliases=aliases,
        in_published_table=False,
        arch=arch,
    )


CARDS = (
    _card(mid="ibq-b-256", size="342M (B)", params=342_994_944, repo="IBQ-AR-B", fname="AR_256_B.ckpt", fid=2.88,
          row="AR_256_B", aliases=("IBQ B", "IBQ-B-256", "IBQ 342M"),
          arch={"n_embd": 1024, "n_head": 16, "n_layer": 16, "alng": 0.001}),
    _card(mid="ibq-l-256", size="649M (L)", params=649_640_960, repo="IBQ-AR-L", fname="AR_256_L.ckpt", fid=2.45,
          row="AR_256_L", aliases=("IBQ L", "IBQ-L-256", "IBQ 649M"),
          arch={"n_embd": 1280, "n_head": 20, "n_layer": 20, "alng": 0.001}),
    _card(mid="ibq-xl-256", size="1.1B (XL)", params=1_076_103_168, repo="IBQ-AR-XL", fname="AR_256_XL.ckpt", fid=2.14,
          row="AR_256_XL", aliases=("IBQ XL", "IBQ-XL-256", "IBQ 1.1B"),
          arch={"n_embd": 1536, "n_head": 24, "n_layer": 24, "alng": 0.0001}),
    _card(mid="ibq-xxl-256", size="2.1B (XXL)", params=2_063_331_840, repo="IBQ-AR-XXL", fname="AR_256_XXL.ckpt", fid=2.05,
          row="AR_256_XXL", aliases=("IBQ XXL", "IBQ-XXL-256", "IBQ 2.1B"),
          arch={"n_embd": 1920, "n_head": 30, "n_layer": 30, "alng": 1e-05}),
)
