"""AliTok cards: the AliTok tokenizer (273 tokens = 17 prefix + 16x16, 4096 codes), AliTok-B/L/XL and
the six ORT-project models on the same tokenizer (spec: shared/specs/alitok.md).

Not in the published table. AliTok's files are Google Drive files linked from the upstream README
(no other host; the repository states no licence, so they are fetched from the authors' links and
never re-hosted); the ORT files are on Hugging Face (donglixu/ORT) with the authors' SHA-256.
AliTok-B/L/XL form one fit group; the ORT models (another group's training recipes, FIDs reported
by their paper with per-row guidance not stated) form their own.
"""

from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_DRIVE = "https://drive.google.com/file/d/{id}/view?usp={usp}"  # the README's links, exactly
_README = "AliTok README (ali-vilab/alitok @093e957), model table, row {row}"
_PROTO = ("class-conditional ImageNet 256x256, 50k samples (50 per class), classifier-free guidance scale {g} on a "
          "power-cosine schedule (pow {pow}), temperature 1.0, seed {seed} (+ rank), TF32; ADM evaluator vs "
          "VIRTUAL_imagenet256_labeled.npz (sample_imagenet.py with configs/alitok_{size}.yaml)")
_ORT_HF = "hf:donglixu/ORT"
_ORT_URL = "https://huggingface.co/donglixu/ORT/resolve/main/"
_ORT_SRC = "ORT docs/MODELS.md (Xudangliatiger/ORT @0bf72e7), row {row}"
_ORT_PROTO = ("ImageNet 256x256 FID as reported by the ORT paper (Tables 2 and 7); per-row guidance scale and seed not "
              "stated, the authors have not re-evaluated the released file (\"checkpoint-to-result mapping not "
              "independently verified\")")
_ORT_BYTES = 2_661_983_138
_GROUP, _ORT_GROUP = "AliTok", "AliTok ORT-XL"


def _drive(role: str, filename: str, drive_id: str, usp: str) -> CheckpointFile:
    return CheckpointFile(role, filename, _DRIVE.format(id=drive_id, usp=usp), None, repo=f"gdrive:{drive_id}")


TOKENIZERS = (
    TokenizerCard(
        id="alitok-tokenizer",
        family="alitok",
        params=389_899_308,
        codebook_size=4096,
        code_dim=32,
        downsample=16,
        file=_drive("tokenizer", "AliTok.pth", "1Rir4QEJ_HTvZkhcnw9MTfWlSFemcGVIW", "drive_link"),
        arch={"encoder": {"width": 768, "num_layers": 12, "num_heads": 12, "mlp_ratio": 4.0},
              "decoder": {"width": 1024, "num_layers": 24, "num_heads": 16, "mlp_ratio": 4.0,
                          "class_embedding_tokens": 32}},
        notes=("ViT encoder with 273 latent queries (17 image-dependent prefix tokens, then the 16x16 grid row-major), "
               "plain-L2 VQ (4096 x 32), ViT pixel decoder (sigmoid); input in [0, 1]. Bare state dict, loaded "
               "strictly; only latent_tokens, the encoder and the codebook (86.4M values) make tokens. rFID: none "
               "published first-party (the README has none; a benchmark aggregator lists 0.84, unverified). The ORT "
               "authors give the file's SHA-256 as 154843c6ee4bdb9c04ba6db0a51cf68fc18f41f1bc28097e23f76d1aee4ef6a6 "
               "(third-party; recorded here, not enforced)."),
    ),
)


def _alitok(*, size: str, params: int, drive_id: str, usp: str, fid: float, g: float, pw: float, seed: int, arch: tuple) -> ModelCard:
    hidden, layers, heads = arch
    fname = f"alitok_{size.lower()}.bin"
    return ModelCard(
        id=f"alitok-{size.lower()}",
        family="alitok",
        family_label="AliTok",
        size=f"AliTok-{size}",
        params=params,
        resolution=256,
        tokenizer_id="alitok-tokenizer",
        codebook_size=4096,
        tokens_per_image=273,
        files=(_drive("transformer", fname, drive_id, usp),),
        fid=Published(fid, _README.format(row=f"AliTok-{size}"),
                      _PROTO.format(g=g, pow=pw, seed=seed, size=size.lower()), guidance=f"cfg {g}",
                      eval_resolution=256, origin="readme"),
        rfid=None,  # no first-party tokenizer rFID (see the tokenizer card)
        aliases=(f"AliTok-{size}", f"AliTok {size}", fname[:-4]),
        group=_GROUP,
        notes="RoPE decoder-only AR model over all 273 tokens (prefix included); no FID without guidance published",
        arch=dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads),
    )


def _ort(*, name: str, size: str, row: str, fid: float, sha256: str, recipe: str) -> ModelCard:
    fname = f"{name}.bin"
    return ModelCard(
        id=name,
        family="alitok",
        family_label="AliTok",
        size=size,
        params=665_462_016,
        resolution=256,
        tokenizer_id="alitok-tokenizer",
        codebook_size=4096,
        tokens_per_image=273,
        files=(CheckpointFile("transformer", fname, _ORT_URL + fname, None, repo=_ORT_HF, sha256=sha256,
                              size_bytes=_ORT_BYTES),),
        fid=Published(fid, _ORT_SRC.format(row=row), _ORT_PROTO, guidance="cfg (scale not stated)", eval_resolution=256,
                      origin="readme"),
        aliases=(size,),
        group=_ORT_GROUP,
        notes=(f"{recipe}; trained from scratch by the ORT authors on AliTok tokens (not a fine-tune of AliTok-XL). "
               f"AliTok-XL's architecture plus learned absolute and target-aware position tables; scored in raster order."),
        arch=dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, type="ort"),
    )


# arch = (hidden_size, num_hidden_layers, num_attention_heads); guidance (scale, pow, seed) from configs/alitok_*.yaml
CARDS = (
    _alitok(size="B", params=177_048_064, drive_id="1PNVX9wqePxRjuOKpt4iw6CpIYLlyJWlX", usp="sharing",
            fid=1.50, g=16.0, pw=1.8, seed=42, arch=(768, 24, 16)),
    _alitok(size="L", params=317_851_648, drive_id="1tmwAa724pNY4FgUsLne2VJVGoK_TBuMa", usp="drive_link",
            fid=1.42, g=6.0, pw=0.7, seed=42, arch=(1024, 24, 16)),
    _alitok(size="XL", params=662_141_696, drive_id="1Vu0UsQfqzZ8HMKFqE2tIGdAcJ6zPXvFd", usp="drive_link",
            fid=1.35, g=13.0, pw=1.4, seed=2, arch=(1280, 32, 16)),
    _ort(name="ort-e-alitok-xl-400", size="ORT-E-XL (400 ep)", row="ORT-E / AliTok-XL, 400 epochs", fid=1.18,
         sha256="9fec7c815728ab9bec5f41c39151c4da6786d1f7ed4eb916f98a555c7b0d1094",
         recipe="ORT-E: random-to-raster order curriculum, ordinal loss weights (1, 0) in the random phase, 400 epochs"),
    _ort(name="ort-e-alitok-xl-300", size="ORT-E-XL (300 ep)", row="ORT-E / AliTok-XL, 300 epochs", fid=1.26,
         sha256="4a99f02de89bd35ca4629a3df61a6f85484a1bd9139e5ac3512a7136fba1dc3c",
         recipe="ORT-E: random-to-raster order curriculum, ordinal loss weights (1, 0) in the random phase, 300 epochs"),
    _ort(name="ort-l-alitok-xl-400", size="ORT-L-XL (400 ep)", row="ORT-L / AliTok-XL, 400 epochs", fid=1.31,
         sha256="3fba113df943ed8dd21cb1d1b2ddaa4d061356285378ddb908f5f9196c83ba37",
         recipe="ORT-L: random-to-raster order curriculum, ordinal loss weights (0.75, 1.25), 400 epochs"),
    _ort(name="ort-l-alitok-xl-300", size="ORT-L-XL (300 ep)", row="ORT-L / AliTok-XL, 300 epochs", fid=1.34,
         sha256="ddfc6561d9c344ea0ff9415cfb48c433715a0db0d152aa50ae3fea72f7f38c34",
         recipe="ORT-L: random-to-raster order curriculum, ordinal loss weights (0.75, 1.25), 300 epochs"),
    _ort(name="alitok-xl-baseline-400", size="AliTok*-XL (400 ep)", row="AliTok-XL* baseline, 400 epochs", fid=1.35,
         sha256="276d4e5771865aeeb9f22941ba8214efc213b42faf200859ab3ca9bf1b03f3af",
         recipe="AliTok*-XL: the ORT authors' random-to-raster (RAR-style) baseline, uniform loss weights, 400 epochs"),
    _ort(name="alitok-xl-baseline-300", size="AliTok*-XL (300 ep)", row="AliTok-XL* baseline, 300 epochs", fid=1.42,
         sha256="bcfb13aecda05026d09c4235102f3b234c02737c45761c2a9bde0e20f15bbaa6",
         recipe="AliTok*-XL: the ORT authors' random-to-raster (RAR-style) baseline, uniform loss weights, 300 epochs"),
)
