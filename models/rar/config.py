"""RAR configs: one parser for both tokenizer variants; keys and types are checked against the
variant's schema (``schema.py``, ``core/config_schema.check_config``), then the sizes for consistency.

A config is a mapping in the conformance ``config.json`` schema (upstream argument names).
Its ``family`` field names the variant:

- ``"rar"``: MaskGIT-VQGAN tokenizer (``tokenizer`` = Encoder/Decoder arguments,
  ``tokenizer_quantizer`` = VectorQuantizer arguments), input in [0, 1];
- ``"rar-robusttok"``: RobusTok ViT tokenizer (``tokenizer.ModelArgs`` plus the ViT
  arguments), input in [-1, 1].

``transformer`` holds the generator arguments under ``"model.generator"`` and the code count
under ``"model.vq_model.codebook_size"`` (the names of the upstream YAML keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from visbpp.core.errors import ConfigError
from visbpp.core.registry.config_schema import check_config

from .schema import SCHEMAS

VARIANTS = {"rar": "maskgit", "rar-robusttok": "robusttok"}


@dataclass(frozen=True)
class MaskGITConfig:
    hidden_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    num_channels: int = 3
    codebook_size: int = 1024
    image_size: int = 256

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def grid(self) -> int:
        return self.image_size // self.downsample


@dataclass(frozen=True)
class RobusTokConfig:
    codebook_size: int = 4096
    codebook_embed_dim: int = 64
    num_latent_tokens: int = 256
    img_size: int = 256
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0

    @property
    def num_patches(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def grid(self) -> int:
        g = int(round(self.num_latent_tokens ** 0.5))
        return g

    @property
    def image_size(self) -> int:
        return self.img_size


@dataclass(frozen=True)
class RARConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    image_seq_len: int = 256
    condition_num_classes: int = 1000
    codebook_size: int = 1024
    class_label_dropout: float = 0.1  # > 0: trained with label dropout, the null row is the CFG class

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def mlp_hidden(self) -> int:
        """The MLP width as upstream computes it: ``int(D * mlp_ratio)`` with ``mlp_ratio = intermediate_size / D``
        (float arithmetic; it can round below ``intermediate_size``, e.g. D 44, intermediate 98 -> 97)."""
        return int(self.hidden_size * (self.intermediate_size / self.hidden_size))

    @property
    def embedding_rows(self) -> int:  # codes, mask token, classes, null class
        return self.codebook_size + 1 + self.condition_num_classes + 1


@dataclass(frozen=True)
class ParsedConfig:
    variant: str                                 # "maskgit" or "robusttok"
    tokenizer: MaskGITConfig | RobusTokConfig
    generator: RARConfig
    image_size: int


# ViT sizes of the timm names the RobusTok tokenizer is built from
_VIT_NAMES = {"vit_base_patch14_dinov2.lvd142m": dict(embed_dim=768, depth=12, num_heads=12)}


def _get(section: Mapping[str, Any], key: str, where: str, path: str) -> Any:
    if key not in section:
        field = f"{where}.{key}" if where else key
        raise ConfigError(f"{path}: RAR config lacks {field!r}")
    return section[key]


def _maskgit(config: Mapping[str, Any], image_size: int, path: str) -> MaskGITConfig:
    tok = _get(config, "tokenizer", "", path)
    quant = _get(config, "tokenizer_quantizer", "", path)
    mult = tuple(_get(tok, "channel_mult", "tokenizer", path))
    cfg = MaskGITConfig(
        hidden_channels=_get(tok, "hidden_channels", "tokenizer", path),
        channel_mult=mult,
        num_res_blocks=_get(tok, "num_res_blocks", "tokenizer", path),
        z_channels=_get(tok, "z_channels", "tokenizer", path),
        num_channels=tok.get("num_channels", 3),
        codebook_size=_get(quant, "num_embeddings", "tokenizer_quantizer", path),
        image_size=image_size,
    )
    if "num_resolutions" in tok and tok["num_resolutions"] != len(mult):
        raise ConfigError(f"{path}: tokenizer.num_resolutions {tok['num_resolutions']} != len(tokenizer.channel_mult) "
                          f"{len(mult)}")
    if quant.get("embedding_dim", cfg.z_channels) != cfg.z_channels:
        raise ConfigError(f"{path}: tokenizer_quantizer.embedding_dim {quant['embedding_dim']} != tokenizer.z_channels "
                          f"{cfg.z_channels}")
    if tok.get("dropout", 0.0) != 0.0:
        raise ConfigError(f"{path}: tokenizer.dropout must be 0 (scoring is deterministic), got {tok['dropout']}")
    if image_size % cfg.downsample:
        raise ConfigError(f"{path}: image_size {image_size} is not a multiple of the downsampling {cfg.downsample}")
    widths = sorted({cfg.hidden_channels * m for m in mult if cfg.hidden_channels * m % 32})
    if widths:  # every width is normalised by GroupNorm(32 groups)
        raise ConfigError(f"{path}: tokenizer widths hidden_channels * channel_mult must be multiples of 32 (GroupNorm "
                          f"with 32 groups), got {widths}")
    return cfg


def _robusttok(config: Mapping[str, Any], image_size: int, path: str) -> RobusTokConfig:
    tok = _get(config, "tokenizer", "", path)
    args = _get(tok, "ModelArgs", "tokenizer", path)
    for key, want in (("enc_type", "dinov2"), ("dec_type", "dinov2"), ("codebook_l2_norm", True), ("product_quant", 1),
                      ("lfq", False), ("abs_pos_embed", True)):
        if key in args and args[key] != want:
            raise ConfigError(f"{path}: tokenizer.ModelArgs.{key} = {args[key]!r} is not supported (only {want!r})")
    vit: dict[str, Any] = {}
    for key in ("encoder_model", "decoder_model"):
        name = args.get(key, "vit_base_patch14_dinov2.lvd142m")
        if name not in _VIT_NAMES:
            raise ConfigError(f"{path}: tokenizer.ModelArgs.{key} {name!r} is not supported (known: {', '.join(_VIT_NAMES)})")
        vit.update(_VIT_NAMES[name])
    for key in ("hard_coded_in_VQModel_real", "fixture_vit_override"):  # later entries win
        if key in tok:
            vit.update({k: v for k, v in tok[key].items() if k not in ("drop_path_rate", "pretrained")})
    cfg = RobusTokConfig(
        codebook_size=_get(args, "codebook_size", "tokenizer.ModelArgs", path),
        codebook_embed_dim=_get(args, "codebook_embed_dim", "tokenizer.ModelArgs", path),
        num_latent_tokens=_get(args, "num_latent_tokens", "tokenizer.ModelArgs", path),
        img_size=vit.get("img_size", 256),
        patch_size=vit.get("patch_size", 16),
        embed_dim=vit["embed_dim"],
        depth=vit["depth"],
        num_heads=vit["num_heads"],
    )
    if cfg.grid ** 2 != cfg.num_latent_tokens or cfg.num_latent_tokens != cfg.num_patches:
        raise ConfigError(f"{path}: tokenizer.ModelArgs.num_latent_tokens {cfg.num_latent_tokens} must be a square equal "
                          f"to the patch count (img_size {cfg.img_size} / patch_size {cfg.patch_size})^2 = "
                          f"{cfg.num_patches}")
    if cfg.patch_size ** 2 != cfg.num_patches:  # upstream sizes the level-embedding index by patch_size^2 + 1
        raise ConfigError(f"{path}: the RobusTok tokenizer needs (img_size / patch_size)^2 = patch_size^2 (its level "
                          f"index has patch_size^2 + 1 image-side entries); img_size {cfg.img_size}, patch_size "
                          f"{cfg.patch_size} give {cfg.num_patches} patches")
    if "v_patch_nums" in args and list(args["v_patch_nums"]) != [cfg.grid]:
        raise ConfigError(f"{path}: tokenizer.ModelArgs.v_patch_nums {args['v_patch_nums']} must be [{cfg.grid}] "
                          f"(single scale)")
    if cfg.img_size != image_size:
        raise ConfigError(f"{path}: image_size {image_size} != the tokenizer's img_size {cfg.img_size}")
    if cfg.embed_dim % cfg.num_heads:
        raise ConfigError(f"{path}: tokenizer embed_dim {cfg.embed_dim} is not divisible by num_heads {cfg.num_heads}")
    return cfg


def _generator(config: Mapping[str, Any], path: str) -> RARConfig:
    tr = _get(config, "transformer", "", path)
    gen = _get(tr, "model.generator", "transformer", path)
    where = "transformer.model.generator"
    cfg = RARConfig(
        hidden_size=_get(gen, "hidden_size", where, path),
        num_hidden_layers=_get(gen, "num_hidden_layers", where, path),
        num_attention_heads=_get(gen, "num_attention_heads", where, path),
        intermediate_size=_get(gen, "intermediate_size", where, path),
        image_seq_len=_get(gen, "image_seq_len", where, path),
        condition_num_classes=_get(gen, "condition_num_classes", where, path),
        class_label_dropout=float(gen.get("class_label_dropout", 0.1)),
        codebook_size=_get(tr, "model.vq_model.codebook_size", "transformer", path),
    )
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ConfigError(f"{path}: {where}.hidden_size {cfg.hidden_size} is not divisible by num_attention_heads "
                          f"{cfg.num_attention_heads}")
    return cfg


def typed_config(config: Mapping[str, Any], path: str = "RAR config") -> ParsedConfig:
    """Check a RAR config (either variant) against its schema and return the typed sizes.

    Unknown keys, wrong types, missing fields and inconsistent sizes are :class:`ConfigError`s
    naming ``path`` and the dotted field.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"{path}: a RAR config must be a JSON object, got {type(config).__name__}")
    family = config.get("family")
    if family not in SCHEMAS:
        raise ConfigError(f"{path}: RAR config needs 'family': 'rar' (MaskGIT-VQGAN tokenizer) or 'rar-robusttok' "
                          f"(RobusTok tokenizer), got {family!r}")
    check_config(config, SCHEMAS[family], path)
    variant = VARIANTS[family]
    image_size = _get(config, "image_size", "", path)
    tok = _maskgit(config, image_size, path) if variant == "maskgit" else _robusttok(config, image_size, path)
    gen = _generator(config, path)
    if gen.codebook_size != tok.codebook_size:
        raise ConfigError(f"{path}: transformer.model.vq_model.codebook_size {gen.codebook_size} != tokenizer codebook "
                          f"size {tok.codebook_size}")
    if tok.grid ** 2 != gen.image_seq_len:
        raise ConfigError(f"{path}: transformer.model.generator.image_seq_len {gen.image_seq_len} does not match the "
                          f"tokenizer grid {tok.grid}x{tok.grid} at image_size {image_size}")
    if "seq_len" in config and config["seq_len"] != gen.image_seq_len:
        raise ConfigError(f"{path}: seq_len {config['seq_len']} != image_seq_len {gen.image_seq_len}")
    if "num_classes" in config and config["num_classes"] != gen.condition_num_classes:
        raise ConfigError(f"{path}: num_classes {config['num_classes']} != condition_num_classes "
                          f"{gen.condition_num_classes}")
    return ParsedConfig(variant, tok, gen, image_size)
