"""RQ-Transformer cards: RQ-VAE 8x8x4 + RQ-Transformer (spec: shared/specs/rqtransformer.md).

Each upstream archive ``<name>.tar.gz`` holds ``<name>/stage1/model.pt`` (the RQ-VAE) and
``<name>/stage2/model.pt`` (the transformer), both ``{"state_dict": sd}``. The 480M / 821M /
1.4B archives carry the same 10-epoch RQ-VAE architecture (rows of the published table). The
two ``*_rqvae_50e`` archives carry a different RQ-VAE (same architecture, trained 50 epochs):
their codes are another token stream, so each has its own tokenizer card (the file of its own
archive) and the two form their own fit group.
"""

from visbpp.core.registry.cards import PUBLISHED_TABLE, TABLE_RFID_PROTOCOL
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_BASE = "https://twg.kakaocdn.net/brainrepo/models/RQVAE/"
_ARCHIVES = {
    "imagenet_480M": _BASE + "7518a004fe39120fcffbba76005dc6c3/imagenet_480M.tar.gz",
    "imagenet_821M": _BASE + "dcd39292319104da5577dec3956bfdcc/imagenet_821M.tar.gz",
    "imagenet_1.4B": _BASE + "f5cf4e5f3f0b5088d52cbb5e85c1077f/imagenet_1.4B.tar.gz",
    "imagenet_1.4B_rqvae_50e": _BASE + "6714b47bb9382076923590eff08b1ee5/imagenet_1.4B_rqvae_50e.tar.gz",
    "imagenet_3.8B_rqvae_50e": _BASE + "e1ee2fef2928f7fd31f53a8348f08b88/imagenet_3.8B_rqvae_50e.tar.gz",
}

_README = "rq-vae-transformer README, 'Checkpoints Used in the Original Paper', ImageNet (cIN) row, FID"
_PROTO = "50k samples vs ImageNet training-set statistics, top-k/top-p sampling of the released config, no guidance"
_PROTO_RS = "5% rejection sampling via a pretrained ResNet-101 (README brackets); " + _PROTO
_GROUP_50E = "RQ-Transformer (RQ-VAE 50e)"
_RQVAE_PARAMS = 104_402_051


def _file(role: str, archive: str, stage: str) -> CheckpointFile:
    url = _ARCHIVES[archive]
    return CheckpointFile(role, "model.pt", url, "state_dict", repo=url, archive_member=f"{archive}/{stage}/model.pt")


def _tokenizer(tid: str, archive: str, rfid: tuple = (), notes: str = "") -> TokenizerCard:
    return TokenizerCard(
        id=tid,
        family="rqtransformer",
        params=_RQVAE_PARAMS,
        codebook_size=16384,
        code_dim=256,
        downsample=32,
        file=_file("tokenizer", archive, "stage1"),
        rfid=rfid,
        notes=notes,
    )


TOKENIZERS = (
    _tokenizer(
        "rq-vae-8x8x4", "imagenet_480M",
        rfid=((256, Published(4.73, PUBLISHED_TABLE, TABLE_RFID_PROTOCOL)),),
        notes="RQ-VAE 8x8x4 (10 epochs); the 821M and 1.4B archives carry a stage1/model.pt of the same architecture.",
    ),
    _tokenizer(
        "rq-vae-8x8x4-50e-1.4b", "imagenet_1.4B_rqvae_50e",
        rfid=((256, Published(3.20, "FVQ (ICLR 2026) Table 4, 'RQ-VAE trained for 50 epochs' (unverified against the RQ paper)",
                                  "ImageNet val reconstructions, 256x256, as reported by a third party")),),
        notes="50-epoch RQ-VAE of the imagenet_1.4B_rqvae_50e archive; codes differ from rq-vae-8x8x4.",
    ),
    _tokenizer(
        "rq-vae-8x8x4-50e-3.8b", "imagenet_3.8B_rqvae_50e",
        rfid=((256, Published(3.20, "FVQ (ICLR 2026) Table 4, 'RQ-VAE trained for 50 epochs' (unverified against the RQ paper)",
                                  "ImageNet val reconstructions, 256x256, as reported by a third party")),),
        notes="50-epoch RQ-VAE of the imagenet_3.8B_rqvae_50e archive (probably identical to the 1.4B_rqvae_50e one; not verified).",
    ),
)


def _arch(*, embed_dim: int, body_layers: int, head_layers: int, n_head: int) -> dict:
    """Stage-2 sizes as plain data; the head count is not visible in the weights."""
    return {"embed_dim": embed_dim, "body_layers": body_layers, "head_layers": head_layers, "n_head": n_head}


def _fid(value: float, protocol: str = _PROTO, source: str = _README) -> Published:
    return Published(value, source, protocol, guidance="none", origin="readme" if (source, protocol) == (_README, _PROTO) else "")


def _card(*, mid, size, archive, params, tokenizer_id, fid, arch, alt=(), bpp=None, rfid=None, group=None, aliases=(),
          notes=""):
    return ModelCard(
        id=mid,
        family="rqtransformer",
        family_label="RQ-Transformer",
        size=size,
        params=params,
        resolution=256,
        tokenizer_id=tokenizer_id,
        codebook_size=16384,
        tokens_per_image=256,
        files=(_file("transformer", archive, "stage2"),),
        fid=fid,
        rfid=rfid,
        alt_fid=alt,
        reference_bpp=bpp,
        aliases=aliases + (archive,),
        group=group,
        in_published_table=bpp is not None,
        notes=notes,
        arch=arch,
    )


def _table(*, size, mid, archive, params, fid, bpp, arch, alt=()):
    return _card(
        mid=mid, size=size, archive=archive, params=params, tokenizer_id="rq-vae-8x8x4",
        fid=_fid(fid, "README FID without rejection sampling; " + _PROTO, PUBLISHED_TABLE), arch=arch,
        alt=alt, bpp=bpp, rfid=Published(4.73, PUBLISHED_TABLE, TABLE_RFID_PROTOCOL, guidance="none"),
        aliases=(f"RQ-Transformer {size}", f"RQ-{size}"),
    )


CARDS = (
    _table(size="481M", mid="rq-481m", archive="imagenet_480M", params=480_921_088, fid=15.72, bpp=0.0116929,
           arch=_arch(embed_dim=1536, body_layers=12, head_layers=4, n_head=24)),
    _table(size="821M", mid="rq-821m", archive="imagenet_821M", params=820_899_328, fid=13.11, bpp=0.0116453,
           arch=_arch(embed_dim=1536, body_layers=24, head_layers=4, n_head=24)),
    _table(size="1.4B", mid="rq-1.4b", archive="imagenet_1.4B", params=1_387_529_728, fid=11.56, bpp=0.0116167,
           arch=_arch(embed_dim=1536, body_layers=42, head_layers=6, n_head=24), alt=(_fid(4.45, _PROTO_RS),)),
    _card(
        mid="rq-1.4b-rqvae50e", size="1.4B (RQ-VAE 50e)", archive="imagenet_1.4B_rqvae_50e", params=1_387_529_728,
        tokenizer_id="rq-vae-8x8x4-50e-1.4b", fid=_fid(8.71), alt=(_fid(3.89, _PROTO_RS),), group=_GROUP_50E,
        arch=_arch(embed_dim=1536, body_layers=42, head_layers=6, n_head=24),
        aliases=("RQ-Transformer 1.4B (RQ-VAE 50e)", "RQ-1.4B-50e"),
        notes="Same architecture as rq-1.4b, other weights; scored on codes of its own archive's 50-epoch RQ-VAE.",
    ),
    _card(
        mid="rq-3.8b-rqvae50e", size="3.8B (RQ-VAE 50e)", archive="imagenet_3.8B_rqvae_50e", params=3_822_488_064,
        tokenizer_id="rq-vae-8x8x4-50e-3.8b", fid=_fid(7.55), alt=(_fid(3.80, _PROTO_RS),), group=_GROUP_50E,
        arch=_arch(embed_dim=2560, body_layers=42, head_layers=6, n_head=40),
        aliases=("RQ-Transformer 3.8B (RQ-VAE 50e)", "RQ-3.8B-50e", "RQ-3.8B"),
        notes="embed_dim 2560, 42 + 6 layers, 40 heads (not visible in the weights); about 15.3 GB in float32.",
    ),
)
