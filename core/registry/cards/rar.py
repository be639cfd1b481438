"""RAR cards: RAR-B/L/XL/XXL on the MaskGIT-VQGAN tokenizer, reAR-S/B/L (the same generator trained
with reAR's regularisation, on the same tokenizer), and the same generator (B, L) on RobusTok's
tokenizer (spec: shared/specs/rar.md, section 9 for RobusTok; shared/specs/alitok.md 9.2 for reAR).

Not in the published table. FIDs are the upstream READMEs' (with classifier-free guidance, the
settings in each protocol). The RobusTok generator files share their names with the RAR release
(``rar_b.bin``), so every file names its own hub repository. A model card's ``arch`` holds the
generator sizes (upstream ``model.generator`` argument names), a tokenizer card's ``arch`` the
config variant (``"rar"``: MaskGIT-VQGAN, ``"rar-robusttok"``: RobusTok) the family builds from.
"""

from visbpp.core.registry.catalog import CheckpointFile, ModelCard, Published, TokenizerCard

_RAR_HF = "hf:yucornetto/RAR"
_RAR_URL = "https://huggingface.co/yucornetto/RAR/resolve/main/"
_ROBUS_HF = "hf:qiuk6/RobusTok"
_ROBUS_URL = "https://huggingface.co/qiuk6/RobusTok/resolve/main/"
_TITOK_URL = "https://huggingface.co/fun-research/TiTok/resolve/main/"
_REAR_HF = "hf:qyoo/reAR"
_REAR_URL = "https://huggingface.co/qyoo/reAR/resolve/main/"

_RAR_SRC = "RAR README (README_RAR.md, 1d-tokenizer), Model Zoo table and 'Testing on ImageNet-1K', row {row}"
_RAR_PROTO = ("class-conditional ImageNet 256x256, 50k samples, classifier-free guidance scale {g} with power-cosine "
              "schedule pow {pow}, temperature {t}; ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")
_ROBUS_SRC = "RobusTok README, Model Zoo table and 'Inference Code', row {row}, {tok} tokenizer"
_ROBUS_PROTO = ("class-conditional ImageNet 256x256, classifier-free guidance scale {g}, pow {pow}, temperature {t}, "
                "decoded with the {tok} tokenizer; ADM evaluator vs VIRTUAL_imagenet256_labeled.npz")

_RAR_RFID = Published(
    2.28, "TiTok / RAR papers as reported by a benchmark aggregator (third-party; not in the upstream README)",
    "MaskGIT-VQGAN reconstruction, ImageNet val 256x256, 256 tokens", guidance="none", eval_resolution=256,
    origin="third-party")

TOKENIZERS = (
    TokenizerCard(
        id="rar-maskgit-vqgan",
        family="rar",
        params=54_515_587,
        codebook_size=1024,
        code_dim=256,
        downsample=16,
        file=CheckpointFile("tokenizer", "maskgit-vqgan-imagenet-f16-256.bin",
                            _TITOK_URL + "maskgit-vqgan-imagenet-f16-256.bin", None, repo="hf:fun-research/TiTok"),
        rfid=((256, _RAR_RFID),),
        arch={"variant": "rar"},
        notes="MaskGIT-VQGAN (bare state dict, loaded strictly); plain L2 argmin, input in [0, 1]. MaskBit's README "
              "gives rFID 1.96 for its own converted copy of this tokenizer (a different file).",
    ),
    TokenizerCard(
        id="robusttok-main-train",
        family="rar",
        params=172_288_064,
        codebook_size=4096,
        code_dim=64,
        downsample=16,
        file=CheckpointFile("tokenizer", "main-train.pt", _ROBUS_URL + "main-train.pt", "ema", repo=_ROBUS_HF),
        notes="Training checkpoint {model, ema, optimizer, discriminator, steps, args (argparse.Namespace)}; the EMA "
              "weights are the tokenizer. params = inference modules (the file also holds a frozen DINOv2 "
              "semantic_model, 258,151,232 parameters in all). Used for tokens and BPP. rFID not published.",
        arch={"variant": "rar-robusttok"},
    ),
    TokenizerCard(
        id="robusttok-post-train",
        family="rar",
        params=172_288_064,
        codebook_size=4096,
        code_dim=64,
        downsample=16,
        file=CheckpointFile("tokenizer", "post-train.pt", _ROBUS_URL + "post-train.pt", "ema", repo=_ROBUS_HF),
        notes="Post-trained RobusTok (decoder re-trained on generated images; latent tokens, quant_conv and codebook "
              "trainable too, so its tokens may differ). Listed for its FIDs; not used for BPP. rFID not published.",
        arch={"variant": "rar-robusttok"},
    ),
)


def _rar(*, size: str, params: int, fid: float, cfg: tuple, arch: tuple, aliases: tuple[str, ...]) -> ModelCard:
    g, pw, t = cfg
    hidden, layers, heads, inter = arch
    fname = f"rar_{size.lower()}.bin"
    return ModelCard(
        id=f"rar-{size.lower()}",
        family="rar",
        family_label="RAR",
        size=f"RAR-{size}",
        params=params,
        resolution=256,
        tokenizer_id="rar-maskgit-vqgan",
        codebook_size=1024,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", fname, _RAR_URL + fname, None, repo=_RAR_HF),),
        fid=Published(fid, _RAR_SRC.format(row=f"RAR-{size}"), _RAR_PROTO.format(g=g, pow=pw, t=t), guidance=f"cfg {g}",
                      eval_resolution=256, origin="readme"),
        rfid=_RAR_RFID,
        aliases=(f"RAR-{size}", f"RAR {size}") + aliases,
        notes="raster-order model (random-order ratio annealed to 0 in training); no FID without guidance published",
        arch=dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=inter),
    )


def _robusttok(*, size: str, params: int, fid_main: float, fid_post: float, cfg: tuple, arch: tuple) -> ModelCard:
    g, pw, t = cfg
    hidden, layers, heads, inter = arch
    fname = f"rar_{size.lower()}.bin"
    proto = dict(g=g, pow=pw, t=t)
    typed = dict(guidance=f"cfg {g}", eval_resolution=256, origin="readme")
    return ModelCard(
        id=f"robusttok-rar-{size.lower()}",
        family="rar",
        family_label="RAR",
        size=f"RobusTok RAR-{size}",
        params=params,
        resolution=256,
        tokenizer_id="robusttok-main-train",
        codebook_size=4096,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", fname, _ROBUS_URL + fname, None, repo=_ROBUS_HF),),
        fid=Published(fid_main, _ROBUS_SRC.format(row=f"RAR-{size}", tok="main-train"),
                      _ROBUS_PROTO.format(tok="main-train (no post-training)", **proto), **typed),
        rfid=None,  # not published for either RobusTok file
        alt_fid=(Published(fid_post, _ROBUS_SRC.format(row=f"RAR-{size}", tok="post-train"),
                           _ROBUS_PROTO.format(tok="post-train", **proto), **typed),),
        aliases=(f"RobusTok RAR-{size}", f"RobusTok-RAR-{size}", f"RobusTok {size}"),
        group="RobusTok-RAR",
        notes="RAR generator on RobusTok's 4096-code ViT tokenizer; tokens and BPP from main-train.pt (EMA weights)",
        arch=dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=inter),
    )


def _rear(*, size: str, params: int, arch: tuple, fid: Published | None = None) -> ModelCard:
    hidden, layers, heads, inter = arch
    fname = f"reAR-{size}.safetensors"
    return ModelCard(
        id=f"rear-{size.lower()}",
        family="rar",
        family_label="RAR",
        size=f"reAR-{size}",
        params=params,
        resolution=256,
        tokenizer_id="rar-maskgit-vqgan",
        codebook_size=1024,
        tokens_per_image=256,
        files=(CheckpointFile("transformer", fname, _REAR_URL + fname, None, repo=_REAR_HF),),
        fid=fid,
        rfid=_RAR_RFID,
        aliases=(f"reAR-{size}", f"reAR {size}"),
        group="reAR",  # another training recipe (and FID protocol) on RAR's tokenizer: its own fit group
        notes="RAR generator trained with reAR's generator-tokenizer consistency regularisation (raster order); the "
              "file also holds two training-only alignment heads (encode/decode_align_mlp, dropped on loading; params "
              "counts the scored generator)" + ("" if fid else "; FID not published"),
        arch=dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=inter),
    )


_REAR_L_FID = Published(
    1.86, "reAR README (QY-H00/reAR @61cc871), overview: 'reAR boosts AR on vanilla VQGAN to 1.86 (461M)'",
    "class-conditional ImageNet 256x256, ADM evaluator vs VIRTUAL_imagenet256_labeled.npz (README evaluation section); "
    "guidance scale not stated with the figure (configs/rear_l.yaml: guidance_scale 15.0, pow 2.5, temperature 1.0)",
    guidance="cfg (scale not stated)", eval_resolution=256, origin="readme")

# cfg = (guidance scale, power-cosine pow, temperature); arch = (hidden, layers, heads, intermediate)
CARDS = (
    _rar(size="B", params=260_923_648, fid=1.95, cfg=(16.0, 2.75, 1.0), arch=(768, 24, 16, 3072), aliases=("RAR 261M",)),
    _rar(size="L", params=461_668_352, fid=1.70, cfg=(15.5, 2.5, 1.02), arch=(1024, 24, 16, 4096),
         aliases=("RAR 461M",)),
    _rar(size="XL", params=955_425_024, fid=1.50, cfg=(6.9, 1.5, 1.02), arch=(1280, 32, 16, 5120),
         aliases=("RAR 955M",)),
    _rar(size="XXL", params=1_498_520_704, fid=1.48, cfg=(8.0, 1.2, 1.02), arch=(1408, 40, 16, 6144),
         aliases=("RAR 1.5B",)),
    _rear(size="S", params=218_397_184, arch=(768, 20, 16, 3072)),
    _rear(size="B", params=260_923_648, arch=(768, 24, 16, 3072)),
    _rear(size="L", params=461_668_352, arch=(1024, 24, 16, 4096), fid=_REAR_L_FID),
    _robusttok(size="B", params=265_645_312, fid_main=1.83, fid_post=1.60, cfg=(6.0, 1.15, 1.02),
               arch=(768, 24, 16, 3072)),
    _robusttok(size="L", params=467_962_880, fid_main=1.60, fid_post=1.36, cfg=(6.75, 1.01, 1.04),
               arch=(1024, 24, 16, 4096)),
)
