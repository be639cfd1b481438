"""Open-MAGVIT2 cards: LFQ tokenizer (2^18 codes) + class-conditional AR B/L/XL at 256 (spec: shared/specs/openmagvit2.md).

Not in the published table: FID/rFID come from the SEED-Voken docs. The AR files have the same
names as IBQ's (``AR_256_B.ckpt``...), so every file names its own hub repository.
"""

from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_HF = "https://huggingface.co/TencentARC/{repo}/resolve/main/{file}"
_DOCS_AR = "SEED-Voken docs/Open-MAGVIT2.md, Stage II 'Performance and Models' table, row {row}"
_DOCS_TOK = "SEED-Voken docs/Open-MAGVIT2.md, Stage I tokenizer table, row 'Open-MAGVIT2 | 2D | 16x16 | 256x256 ImageNet | 262144'"
_PROTO_AR = "ImageNet 256x256 class-conditional generation, FID as reported by the SEED-Voken docs (their sampling settings)"
_PROTO_TOK = "ImageNet 256x256 reconstruction (ImageNet val), EMA tokenizer weights"


def _file(role: str, repo: str, filename: str, with_tokenizer: bool = False) -> CheckpointFile:
    return CheckpointFile(role, filename, _HF.format(repo=repo, file=filename), "state_dict",
                          repo=f"hf:TencentARC/{repo}", contains_tokenizer=with_tokenizer)


_RFID = Published(1.17, _DOCS_TOK, _PROTO_TOK, guidance="none", eval_resolution=256)

TOKENIZERS = (
    TokenizerCard(
        id="omg-lfq-256",
        family="openmagvit2",
        params=115_127_829,
        codebook_size=262_144,
        code_dim=18,
        downsample=16,
        file=_file("tokenizer", "Open-MAGVIT2-Tokenizer-256-resolution", "imagenet_256_L.ckpt"),
        rfid=((256, _RFID),),
        notes="Lookup-free quantiser, 18 bits per token. The AR files carry this tokenizer (raw, non-EMA weights) "
              "under first_stage_model.*, which is what scoring uses; rFID 1.17 was measured with the EMA weights.",
    ),
)


def _card(*, mid: str, size: str, params: int, repo: str, fname: str, fid: float, row: str, aliases: tuple[str, ...],
          arch: dict) -> ModelCard:
    return ModelCard(
        id=mid,
        family="openmagvit2",
        family_label="Open-MAGVIT2",
        size=size,
        params=params,
        resolution=256,
        tokenizer_id="omg-lfq-256",
        codebook_size=262_144,
        tokens_per_image=256,
        files=(_file("transformer", repo, fname, with_tokenizer=True),),
        fid=Published(fid, _DOCS_AR.format(row=row), _PROTO_AR, eval_resolution=256, origin="readme"),
        rfid=_RFID,
        reference_bpp=None,
        aliases=aliases,
        in_published_table=False,
        arch=arch,
        notes="Each token is predicted as two sub-tokens (6 + 12 bits); token NLL = NLL(first) + NLL(second).",
    )


CARDS = (
    _card(mid="omg-b-256", size="343M (B)", params=343_570_432, repo="Open-MAGVIT2-AR-B-256-resolution", fname="AR_256_B.ckpt", fid=3.08,
          row="AR_256_B", aliases=("Open-MAGVIT2 B", "Open-MAGVIT2-B-256", "Open-MAGVIT2 343M", "OMG-B"),
          arch={"dim": 1024, "n_head": 16, "spatial_n_layer": 24, "factorized_n_layer": 2}),
    _card(mid="omg-l-256", size="804M (L)", params=804_362_240, repo="Open-MAGVIT2-AR-L-256-resolution", fname="AR_256_L.ckpt", fid=2.51,
          row="AR_256_L", aliases=("Open-MAGVIT2 L", "Open-MAGVIT2-L-256", "Open-MAGVIT2 804M", "OMG-L"),
          arch={"dim": 1280, "n_head": 20, "spatial_n_layer": 36, "factorized_n_layer": 3}),
    _card(mid="omg-xl-256", size="1.5B (XL)", params=1_486_679_040, repo="Open-MAGVIT2-AR-XL-256-resolution", fname="AR_256_XL.ckpt", fid=2.33,
          row="AR_256_XL", aliases=("Open-MAGVIT2 XL", "Open-MAGVIT2-XL-256", "Open-MAGVIT2 1.5B", "OMG-XL"),
          arch={"dim": 1536, "n_head": 24, "spatial_n_layer": 48, "factorized_n_layer": 4}),
)
