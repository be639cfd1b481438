"""RQ-Transformer cards: RQ-VAE 8x8x4 + RQ-Transformer (spec: shared/specs/rqtransformer.md)."""

from ..registry import CheckpointFile, ModelCard, Published, TokenizerCard
from . import PUBLISHED_TABLE

_BASE = "https://twg.kakaocdn.net/brainrepo/models/RQVAE/"
_ARCHIVES = {
    "481M": _BASE + "7518a004fe39120fcffbba76005dc6c3/imagenet_480M.tar.gz",
    "821M": _BASE + "dcd39292319104da5577dec3956bfdcc/imagenet_821M.tar.gz",
    "1.4B": _BASE + "f5cf4e5f3f0b5088d52cbb5e85c1077f/imagenet_1.4B.tar.gz",
}
_ARCHIVE_DIR = {"481M": "imagenet_480M", "821M": "imagenet_821M", "1.4B": "imagenet_1.4B"}

TOKENIZERS = (
    TokenizerCard(
        id="rq-vae-8x8x4",
        family="rqtransformer",
        params=104_402_051,
        codebook_size=16384,
        code_dim=256,
        downsample=32,
        file=CheckpointFile(
            "tokenizer", "model.pt", _ARCHIVES["481M"], "state_dict",
            repo=_ARCHIVES["481M"], archive_member="imagenet_480M/stage1/model.pt",
        ),
        rfid=((256, Published(4.73, PUBLISHED_TABLE)),),
    ),
)


def _card(size, mid, params, fid, bpp):
    d = _ARCHIVE_DIR[size]
    return ModelCard(
        id=mid,
        family="rqtransformer",
        family_label="RQ-Transformer",
        size=size,
        params=params,
        resolution=256,
        tokenizer_id="rq-vae-8x8x4",
        codebook_size=16384,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", "model.pt", _ARCHIVES[size], "state_dict",
                              repo=_ARCHIVES[size], archive_member=f"{d}/stage2/model.pt"),),
        fid=Published(fid, PUBLISHED_TABLE, "README FID without rejection sampling"),
        rfid=Published(4.73, PUBLISHED_TABLE),
        reference_bpp=bpp,
        aliases=(f"RQ-Transformer {size}", f"RQ-{size}", d),
        in_published_table=True,
    )


CARDS = (
    _card("481M", "rq-481m", 480_921_088, 15.72, 0.0116929),
    _card("821M", "rq-821m", 820_899_328, 13.11, 0.0116453),
    _card("1.4B", "rq-1.4b", 1_387_529_728, 11.56, 0.0116167),
)
