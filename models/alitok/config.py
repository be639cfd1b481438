"""An AliTok config (``schema.py``) -> typed tokenizer and AR-model configs, checked for consistency.

Every size upstream hard-codes (patch, grid, prefix count, code dimension, ViT widths, the RoPE
table's prefix positions / grid / start, its base, the FFN rounding multiple) is read from the
config; nothing is assumed. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from visbpp.core.errors import ConfigError
from visbpp.core.registry.config_schema import check_config

from ..widths import swiglu_hidden
from .schema import SCHEMA

# tokenizer input views: the single-crop pretokenisation path (default) and the ten-crop path's centre view
PREPROCESS = ("center", "tencrop-center")
ORT = "ort"  # model.generator.type of the ORT variant
_PREFIX = "aux_tokens (prefix tokens)"
_CODE_DIM = "token_size (code dim)"
_ROPE_PREFIX = "rope_prefix_positions (1-D, = aux_tokens)"
_ROPE_START = "rope_2d_start (= aux_tokens)"


@dataclass(frozen=True)
class ViTSize:
    width: int
    num_layers: int
    num_heads: int
    mlp_width: int


@dataclass(frozen=True)
class TokenizerConfig:
    image_size: int
    patch_size: int
    prefix_tokens: int           # the image-dependent prefix tokens before the grid
    code_dim: int
    codebook_size: int
    encoder: ViTSize
    decoder: ViTSize
    decoder_class_tokens: int    # the decoder's register-like tokens (never quantised)
    ln_eps: float = 1e-5
    preprocess: str = "center"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.prefix_tokens + self.grid * self.grid


@dataclass(frozen=True)
class ARConfig:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    image_seq_len: int
    condition_num_classes: int
    codebook_size: int
    rope_prefix: int             # 1-D RoPE positions 0..rope_prefix-1 (the prefix tokens)
    rope_grid: int               # 2-D RoPE grid side
    rope_start: int              # first 2-D coordinate
    rope_base: float
    ffn_multiple_of: int
    norm_eps: float
    class_label_dropout: float = 0.1  # > 0: trained with label dropout, the null row is the CFG class
    ort: bool = False            # the ORT variant: learned absolute + target-aware position tables

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def ffn_hidden(self) -> int:
        return swiglu_hidden(self.hidden_size, self.ffn_multiple_of)

    @property
    def embedding_rows(self) -> int:  # codes, mask id, classes, null class
        return self.codebook_size + 1 + self.condition_num_classes + 1


@dataclass(frozen=True)
class AliTokConfig:
    tokenizer: TokenizerConfig | None
    transformer: ARConfig | None


def _get(section: Mapping[str, Any], key: str, field: str, where: str) -> Any:
    if key not in section:
        raise ConfigError(f"{where}: {field}.{key} is missing (see the conformance config.json for the layout)")
    return section[key]


def _vit(section: Mapping[str, Any], field: str, where: str) -> ViTSize:
    width, layers, heads = (_get(section, k, field, where) for k in ("width", "num_layers", "num_heads"))
    mlp = int(width * float(section.get("mlp_ratio", 4.0)))
    if section.get("mlp_width", mlp) != mlp:
        raise ConfigError(f"{where}: {field}.mlp_width {section['mlp_width']} != int(width * mlp_ratio) = {mlp}")
    if width % heads:
        raise ConfigError(f"{where}: {field}.width {width} is not divisible by num_heads {heads}")
    return ViTSize(width, layers, heads, mlp)


def _tokenizer(config: Mapping[str, Any], where: str) -> TokenizerConfig:
    t = config["tokenizer"]
    if t.get("use_l2_norm", False):
        raise ConfigError(f"{where}: tokenizer.use_l2_norm = true is not supported (the released tokenizer uses a "
                          f"plain L2 quantiser)")
    preprocess = config.get("preprocess", "center")
    if preprocess not in PREPROCESS:
        raise ConfigError(f"{where}: preprocess {preprocess!r} is not one of {', '.join(PREPROCESS)}")
    cfg = TokenizerConfig(
        image_size=_get(t, "image_size", "tokenizer", where),
        patch_size=_get(t, "patch_size", "tokenizer", where),
        prefix_tokens=_get(t, _PREFIX, "tokenizer", where),
        code_dim=_get(t, _CODE_DIM, "tokenizer", where),
        codebook_size=_get(t, "codebook_size", "tokenizer", where),
        encoder=_vit(_get(t, "encoder", "tokenizer", where), "tokenizer.encoder", where),
        decoder=_vit(_get(t, "decoder", "tokenizer", where), "tokenizer.decoder", where),
        decoder_class_tokens=_get(t["decoder"], "class_embedding_tokens", "tokenizer.decoder", where),
        ln_eps=float(t.get("layernorm_eps", 1e-5)),
        preprocess=preprocess,
    )
    if cfg.image_size % cfg.patch_size:
        raise ConfigError(f"{where}: tokenizer.image_size {cfg.image_size} is not a multiple of patch_size {cfg.patch_size}")
    checks = [("grid_size", cfg.grid, "image_size / patch_size"), ("num_latent_tokens", cfg.num_tokens,
                                                                      "prefix tokens + grid^2")]
    for key, want, rule in checks:
        if t.get(key, want) != want:
            raise ConfigError(f"{where}: tokenizer.{key} {t[key]} != {rule} = {want}")
    if config.get("image_size", cfg.image_size) != cfg.image_size:
        raise ConfigError(f"{where}: image_size {config['image_size']} != tokenizer.image_size {cfg.image_size}")
    return cfg


def _transformer(config: Mapping[str, Any], where: str) -> ARConfig:
    t = config["transformer"]
    gen = _get(t, "model.generator", "transformer", where)
    hard = _get(t, "hardcoded", "transformer", where)
    g, h = "transformer.model.generator", "transformer.hardcoded"
    kind = gen.get("type", "")
    if kind not in ("", ORT):
        raise ConfigError(f"{where}: {g}.type {kind!r} is not supported (AliTok's ARModel: leave it out; the ORT "
                          f"variant: {ORT!r})")
    cfg = ARConfig(
        hidden_size=_get(gen, "hidden_size", g, where),
        num_hidden_layers=_get(gen, "num_hidden_layers", g, where),
        num_attention_heads=_get(gen, "num_attention_heads", g, where),
        image_seq_len=_get(gen, "image_seq_len", g, where),
        condition_num_classes=_get(gen, "condition_num_classes", g, where),
        codebook_size=_get(t, "model.vq_model.codebook_size", "transformer", where),
        rope_prefix=_get(hard, _ROPE_PREFIX, h, where),
        rope_grid=_get(hard, "rope_2d_grid", h, where),
        rope_start=_get(hard, _ROPE_START, h, where),
        rope_base=float(_get(hard, "rope_base", h, where)),
        ffn_multiple_of=_get(hard, "ffn_multiple_of", h, where),
        norm_eps=float(_get(hard, "rmsnorm_eps", h, where)),
        class_label_dropout=float(gen.get("class_label_dropout", 0.1)),
        ort=kind == ORT,
    )
    if cfg.hidden_size % cfg.num_attention_heads or cfg.head_dim % 4:
        raise ConfigError(f"{where}: {g}.hidden_size {cfg.hidden_size} / num_attention_heads {cfg.num_attention_heads} "
                          f"must give a head_dim divisible by 4 (1-D and 2-D RoPE)")
    table = cfg.rope_prefix + cfg.rope_grid ** 2
    if table != cfg.image_seq_len:
        raise ConfigError(f"{where}: the RoPE table covers {cfg.rope_prefix} prefix + {cfg.rope_grid}^2 grid = {table} "
                          f"tokens ({h}) but {g}.image_seq_len is {cfg.image_seq_len}")
    return cfg


def _agree(config: Mapping[str, Any], tok: TokenizerConfig | None, ar: ARConfig | None, where: str) -> None:
    """The descriptive top-level entries and the two sections describe one model."""
    seq = tok.num_tokens if tok is not None else ar.image_seq_len if ar is not None else None
    pairs = []
    if tok is not None and ar is not None:
        pairs += [("transformer.model.generator.image_seq_len", ar.image_seq_len, tok.num_tokens),
                  ("transformer.model.vq_model.codebook_size", ar.codebook_size, tok.codebook_size)]
    if tok is not None:
        pairs += [("prefix_tokens", config.get("prefix_tokens", tok.prefix_tokens), tok.prefix_tokens),
                  ("token_grid", list(config.get("token_grid", [tok.grid, tok.grid])), [tok.grid, tok.grid])]
    if ar is not None:
        pairs += [("num_classes", config.get("num_classes", ar.condition_num_classes), ar.condition_num_classes)]
    if seq is not None:
        pairs += [("seq_len", config.get("seq_len", seq), seq)]
    for field, got, want in pairs:
        if got != want:
            raise ConfigError(f"{where}: {field} is {got} but the model it describes has {want}")


def alitok_config(config: Mapping[str, Any], where: str = "AliTok config") -> AliTokConfig:
    """Check ``config`` (schema, sizes, the two sections' agreement) and return the typed configs;
    a part is None when its section is absent."""
    check_config(config, SCHEMA, where)
    tok = _tokenizer(config, where) if "tokenizer" in config else None
    ar = _transformer(config, where) if "transformer" in config else None
    _agree(config, tok, ar, where)
    return AliTokConfig(tok, ar)
