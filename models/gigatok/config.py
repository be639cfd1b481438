"""The GigaTok config (upstream argument names) -> typed module configs, with the released values enforced.

A config is the schema of the conformance fixtures' ``config.json`` (``schema.py``): ``tokenizer``
(every ``VQVitModelPlusArgs`` field), optional ``tokenizer_size_overrides`` (``cnn``: ch,
num_res_blocks; ``s2to1encoder`` / ``s1to2decoder``: width, num_layers, num_heads), ``transformer``
(every ``ModelArgs`` field of the 1-D GPT), ``image_size``, containers and descriptive entries.
Unknown keys and wrong types are errors (``core/config_schema``); upstream switches that no
released model uses must keep their released value (a config that needs another code path is
refused, not run wrongly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from visbpp.core.errors import ConfigError
from visbpp.core.registry.config_schema import check_config

from .gpt import GPTConfig
from .schema import SCHEMA
from .tokenizer import TokenizerConfig, ViTSize

# Upstream ViT size names (hard-wired in the official ViTEncoder/ViTDecoder): width, layers, heads.
VIT_SIZES = {
    "tiny": (256, 4, 4), "small": (512, 6, 8), "base": (768, 12, 12), "large": (1024, 24, 16),
    "xl": (1280, 36, 20), "xxl": (1536, 48, 24), "xxxl": (2560, 48, 40),
}

# Switches that select another code path upstream: the value every released model uses (the only one built here).
_RELEASED: dict[str, dict[str, Any]] = {
    "tokenizer": {
        "use_lfq": False, "simvq": False, "codebook_transform": None, "model_size": None, "use_rope": False,
        "use_qk_norm": False, "multi_level_query_init": True, "learnable_1d_query_init": False, "rope_1d": False,
        "last_level_2d_query_init": False, "multi_level_2d_query_init": False, "learnable_2d_query_init": False,
        "adaptive_gn": True, "d2s_up": True, "res_up_down_sample": False, "downsample_match_channel": False,
        "upsample_match_channel": False, "res_codebook_updown_sample": False, "downsample_improve": False,
        "use_attn": False, "rope_2d": False, "stochastic": False, "encoder_2d_distill": False,
        "with_prior_model": False, "prior_model_config": None,
    },
    "transformer": {
        "rope": False, "use_qk_norm": False, "use_adaLN": False, "use_simple_adaLN": False, "no_adaLN_before": None,
        "model_type": "c2i",
    },
}
_TOKENIZER_REQUIRED = ("codebook_size", "codebook_embed_dim", "num_latent_tokens", "z_channels")
_TRANSFORMER_REQUIRED = ("dim", "n_layer", "n_head", "vocab_size", "num_classes", "block_size")


@dataclass(frozen=True)
class GigaTokConfig:
    tokenizer: TokenizerConfig | None
    transformer: GPTConfig | None


def _check_released(section: Mapping[str, Any], name: str, where: str) -> None:
    for key, want in _RELEASED[name].items():
        if key in section and section[key] != want:
            raise ConfigError(f"{where}: {name}.{key} = {section[key]!r} is not supported (the released models use "
                              f"{want!r}); this implementation builds only the released architecture")


def _require(section: Mapping[str, Any], keys: tuple[str, ...], name: str, where: str) -> None:
    for k in keys:
        if k not in section:
            raise ConfigError(f"{where}: {name}.{k} is missing (see the conformance config.json for the schema)")


def _vit(section: Mapping[str, Any], overrides: Mapping[str, Any], name_key: str, part: str, where: str) -> ViTSize:
    if part in overrides:
        o = overrides[part]
        _require(o, ("width", "num_layers", "num_heads"), f"tokenizer_size_overrides.{part}", where)
        return ViTSize(o["width"], o["num_layers"], o["num_heads"])
    name = section.get(name_key)
    if name not in VIT_SIZES:
        raise ConfigError(f"{where}: tokenizer.{name_key} = {name!r} is not a ViT size ({', '.join(VIT_SIZES)})")
    return ViTSize(*VIT_SIZES[name])


def _tokenizer_config(config: Mapping[str, Any], where: str) -> TokenizerConfig:
    t = config["tokenizer"]
    _require(t, _TOKENIZER_REQUIRED, "tokenizer", where)
    _check_released(t, "tokenizer", where)
    if "image_size" not in config:
        raise ConfigError(f"{where}: image_size is missing (the side S the tokenizer runs at)")
    ov = config.get("tokenizer_size_overrides") or {}
    cnn = ov.get("cnn") or {}
    tok = TokenizerConfig(
        codebook_size=t["codebook_size"],
        codebook_embed_dim=t["codebook_embed_dim"],
        codebook_l2_norm=t.get("codebook_l2_norm", True),
        codebook_show_usage=t.get("codebook_show_usage", True),
        encoder_ch_mult=tuple(t.get("encoder_ch_mult", (1, 1, 2, 2, 4))),
        decoder_ch_mult=tuple(t.get("decoder_ch_mult", (1, 1, 2, 2, 4))),
        z_channels=t["z_channels"],
        num_latent_tokens=t["num_latent_tokens"],
        ch=cnn.get("ch", 128),
        num_res_blocks=cnn.get("num_res_blocks", 2),
        encoder_vit=_vit(t, ov, "encoder_size", "s2to1encoder", where),
        decoder_vit=_vit(t, ov, "decoder_size", "s1to2decoder", where),
        distill_depth=t.get("distill_depth", 3),
        out_inner_dim=t.get("out_inner_dim", 768),
        image_size=config["image_size"],
    )
    if len(tok.encoder_ch_mult) != len(tok.decoder_ch_mult):
        raise ConfigError(f"{where}: tokenizer.encoder_ch_mult and tokenizer.decoder_ch_mult must have the same "
                          f"number of levels, got {list(tok.encoder_ch_mult)} and {list(tok.decoder_ch_mult)}")
    if tok.image_size % tok.downsample:
        raise ConfigError(f"{where}: image_size {tok.image_size} is not a multiple of the downsampling factor "
                          f"{tok.downsample}")
    n = tok.num_latent_tokens
    if n & (n - 1):  # the multi-level query init builds groups 1, 1, 2, 4, ...: a power of two in all
        raise ConfigError(f"{where}: tokenizer.num_latent_tokens {n} is not a power of two (the multi-level "
                          f"query init builds 1 + 1 + 2 + 4 + ... tokens)")
    return tok


def _gpt_config(config: Mapping[str, Any], where: str) -> GPTConfig:
    t = config["transformer"]
    _require(t, _TRANSFORMER_REQUIRED, "transformer", where)
    _check_released(t, "transformer", where)
    gpt = GPTConfig(
        dim=t["dim"], n_layer=t["n_layer"], n_head=t["n_head"], n_kv_head=t.get("n_kv_head"),
        vocab_size=t["vocab_size"], num_classes=t["num_classes"],
        class_dropout_prob=float(t.get("class_dropout_prob", 0.1)), cls_token_num=t.get("cls_token_num", 1),
        block_size=t["block_size"], multiple_of=t.get("multiple_of", 256),
        ffn_dim_multiplier=None if t.get("ffn_dim_multiplier") is None else float(t["ffn_dim_multiplier"]),
        norm_eps=float(t.get("norm_eps", 1e-5)),
    )
    try:
        gpt.validate()
    except ValueError as e:
        raise ConfigError(f"{where}: transformer: {e}") from None
    return gpt


def gigatok_config(config: Mapping[str, Any], where: str = "GigaTok config") -> GigaTokConfig:
    """Check ``config`` (schema, released values, tokenizer/transformer agreement) and return the typed
    (TokenizerConfig, GPTConfig); either part is None when its section is absent."""
    check_config(config, SCHEMA, where)
    tok = _tokenizer_config(config, where) if "tokenizer" in config else None
    gpt = _gpt_config(config, where) if "transformer" in config else None
    if tok is not None and gpt is not None:
        if tok.num_latent_tokens != gpt.block_size:
            raise ConfigError(f"{where}: transformer.block_size {gpt.block_size} != tokenizer.num_latent_tokens "
                              f"{tok.num_latent_tokens} (the GPT scores one position per latent token)")
        if tok.codebook_size != gpt.vocab_size:
            raise ConfigError(f"{where}: transformer.vocab_size {gpt.vocab_size} != tokenizer.codebook_size "
                              f"{tok.codebook_size}")
    return GigaTokConfig(tok, gpt)
