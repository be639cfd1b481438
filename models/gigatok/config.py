"""The GigaTok config schema (upstream argument names) and its one parser.

A config is the schema of the conformance fixtures' ``config.json``: ``tokenizer`` (every
``VQVitModelPlusArgs`` field), optional ``tokenizer_size_overrides`` (``cnn``: ch,
num_res_blocks; ``s2to1encoder`` / ``s1to2decoder``: width, num_layers, num_heads), ``transformer``
(every ``ModelArgs`` field of the 1-D GPT), ``image_size``, containers and descriptive entries.
Unknown keys are an error naming the key; upstream switches that no released model uses must
keep their released value (a config that needs another code path is refused, not run wrongly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .gpt import GPTConfig
from .tokenizer import TokenizerConfig, ViTSize


class ConfigError(ValueError):
    """A GigaTok config that this implementation cannot build exactly."""


# Upstream ViT size names (hard-wired in the official ViTEncoder/ViTDecoder): width, layers, heads.
VIT_SIZES = {
    "tiny": (256, 4, 4), "small": (512, 6, 8), "base": (768, 12, 12), "large": (1024, 24, 16),
    "xl": (1280, 36, 20), "xxl": (1536, 48, 24), "xxxl": (2560, 48, 40),
}

_ANY = object()  # a field whose value does not change inference
# tokenizer field -> required value (_ANY = free; a type = value of that type used below)
_TOKENIZER_FIELDS: dict[str, Any] = {
    "codebook_size": int, "codebook_embed_dim": int, "codebook_l2_norm": bool, "codebook_show_usage": bool,
    "commit_loss_beta": _ANY, "entropy_loss_ratio": _ANY, "use_lfq": False, "bernoulli_sample": _ANY,
    "eval_deterministic": _ANY, "simvq": False, "codebook_transform": None, "freeze_codebook": _ANY,
    "encoder_ch_mult": list, "decoder_ch_mult": list, "model_size": None, "encoder_size": str, "decoder_size": str,
    "num_latent_tokens": int, "z_channels": int, "dropout_p": _ANY, "use_rope": False, "use_qk_norm": False,
    "use_flash_attn": _ANY, "multi_level_query_init": True, "learnable_1d_query_init": False, "rope_1d": False,
    "last_level_2d_query_init": False, "multi_level_2d_query_init": False, "learnable_2d_query_init": False,
    "adaptive_gn": True, "d2s_up": True, "res_up_down_sample": False, "downsample_match_channel": False,
    "upsample_match_channel": False, "res_codebook_updown_sample": False, "downsample_improve": False,
    "use_attn": False, "rope_2d": False, "rot": _ANY, "stochastic": False, "stochastic_temperature": _ANY,
    "distill_depth": int, "encoder_2d_distill": False, "out_inner_dim": int, "fea_rec_loss_type": _ANY,
    "fea_rec_loss_weight": _ANY, "with_prior_model": False, "prior_model_config": None,
}
_TRANSFORMER_FIELDS: dict[str, Any] = {
    "dim": int, "n_layer": int, "n_head": int, "n_kv_head": _ANY, "multiple_of": int, "ffn_dim_multiplier": _ANY,
    "norm_eps": float, "initializer_range": _ANY, "token_dropout_p": _ANY, "attn_dropout_p": _ANY,
    "resid_dropout_p": _ANY, "ffn_dropout_p": _ANY, "drop_path_rate": _ANY, "rope": False, "use_qk_norm": False,
    "use_flash_attn": _ANY, "use_adaLN": False, "use_simple_adaLN": False, "no_adaLN_before": None,
    "num_classes": int, "caption_dim": _ANY, "class_dropout_prob": float, "model_type": "c2i", "vocab_size": int,
    "cls_token_num": int, "block_size": int, "max_batch_size": _ANY, "max_seq_len": _ANY,
}
_TOKENIZER_REQUIRED = ("codebook_size", "codebook_embed_dim", "num_latent_tokens", "z_channels")
_TRANSFORMER_REQUIRED = ("dim", "n_layer", "n_head", "vocab_size", "num_classes", "block_size")
_OVERRIDE_FIELDS = {"cnn": ("ch", "num_res_blocks"), "s2to1encoder": ("width", "num_layers", "num_heads"),
                    "s1to2decoder": ("width", "num_layers", "num_heads")}
_TOP_LEVEL = {
    "tokenizer", "tokenizer_size_overrides", "transformer", "image_size", "tokenizer_container",
    "transformer_container",
    # descriptive entries (written by config_for or the fixture generator; not read)
    "family", "model_id", "tokenizer_id", "upstream", "num_classes", "seed", "downsample", "cnn_grid", "num_tokens",
    "seq_len", "labels", "derived", "dtype", "input_normalisation", "notes",
}


@dataclass(frozen=True)
class GigaTokConfig:
    tokenizer: TokenizerConfig | None
    transformer: GPTConfig | None


def _check_fields(section: Mapping[str, Any], fields: Mapping[str, Any], where: str) -> None:
    for key, value in section.items():
        if key not in fields:
            raise ConfigError(f"GigaTok config: unknown key {where}.{key!r} (known: {', '.join(sorted(fields))})")
        want = fields[key]
        if want is _ANY or isinstance(want, type):
            continue
        if value != want:
            raise ConfigError(
                f"GigaTok config: {where}.{key} = {value!r} is not supported (the released models use {want!r})")


def _vit(section: Mapping[str, Any], overrides: Mapping[str, Any], name_key: str, part: str) -> ViTSize:
    if part in overrides:
        o = overrides[part]
        return ViTSize(int(o["width"]), int(o["num_layers"]), int(o["num_heads"]))
    name = section.get(name_key)
    if name not in VIT_SIZES:
        raise ConfigError(f"GigaTok config: tokenizer.{name_key} = {name!r} is not a ViT size ({', '.join(VIT_SIZES)})")
    return ViTSize(*VIT_SIZES[name])


def parse_config(config: Mapping[str, Any]) -> GigaTokConfig:
    """Config -> (TokenizerConfig, GPTConfig); either part is None when its section is absent."""
    for key in config:
        if key not in _TOP_LEVEL:
            raise ConfigError(f"GigaTok config: unknown top-level key {key!r} (known: {', '.join(sorted(_TOP_LEVEL))})")
    tok = gpt = None
    if "tokenizer" in config:
        t = config["tokenizer"]
        _check_fields(t, _TOKENIZER_FIELDS, "tokenizer")
        for k in _TOKENIZER_REQUIRED:
            if k not in t:
                raise ConfigError(f"GigaTok config lacks tokenizer.{k}")
        if "image_size" not in config:
            raise ConfigError("GigaTok config lacks 'image_size' (the side S the tokenizer runs at)")
        ov = config.get("tokenizer_size_overrides") or {}
        for part, sub in ov.items():
            if part not in _OVERRIDE_FIELDS:
                raise ConfigError(f"GigaTok config: unknown key tokenizer_size_overrides.{part!r}")
            for k in sub:
                if k not in _OVERRIDE_FIELDS[part]:
                    raise ConfigError(f"GigaTok config: unknown key tokenizer_size_overrides.{part}.{k!r}")
        cnn = ov.get("cnn", {})
        tok = TokenizerConfig(
            codebook_size=int(t["codebook_size"]),
            codebook_embed_dim=int(t["codebook_embed_dim"]),
            codebook_l2_norm=bool(t.get("codebook_l2_norm", True)),
            codebook_show_usage=bool(t.get("codebook_show_usage", True)),
            encoder_ch_mult=tuple(int(m) for m in t.get("encoder_ch_mult", (1, 1, 2, 2, 4))),
            decoder_ch_mult=tuple(int(m) for m in t.get("decoder_ch_mult", (1, 1, 2, 2, 4))),
            z_channels=int(t["z_channels"]),
            num_latent_tokens=int(t["num_latent_tokens"]),
            ch=int(cnn.get("ch", 128)),
            num_res_blocks=int(cnn.get("num_res_blocks", 2)),
            encoder_vit=_vit(t, ov, "encoder_size", "s2to1encoder"),
            decoder_vit=_vit(t, ov, "decoder_size", "s1to2decoder"),
            distill_depth=int(t.get("distill_depth", 3)),
            out_inner_dim=int(t.get("out_inner_dim", 768)),
            image_size=int(config["image_size"]),
        )
        if len(tok.encoder_ch_mult) != len(tok.decoder_ch_mult):
            raise ConfigError("GigaTok config: encoder_ch_mult and decoder_ch_mult must have the same number of levels")
        if tok.image_size % tok.downsample:
            raise ConfigError(f"GigaTok config: image_size {tok.image_size} is not a multiple of {tok.downsample}")
    if "transformer" in config:
        t = config["transformer"]
        _check_fields(t, _TRANSFORMER_FIELDS, "transformer")
        for k in _TRANSFORMER_REQUIRED:
            if k not in t:
                raise ConfigError(f"GigaTok config lacks transformer.{k}")
        gpt = GPTConfig(
            dim=int(t["dim"]), n_layer=int(t["n_layer"]), n_head=int(t["n_head"]),
            n_kv_head=None if t.get("n_kv_head") is None else int(t["n_kv_head"]),
            vocab_size=int(t["vocab_size"]), num_classes=int(t["num_classes"]),
            class_dropout_prob=float(t.get("class_dropout_prob", 0.1)), cls_token_num=int(t.get("cls_token_num", 1)),
            block_size=int(t["block_size"]), multiple_of=int(t.get("multiple_of", 256)),
            ffn_dim_multiplier=None if t.get("ffn_dim_multiplier") is None else float(t["ffn_dim_multiplier"]),
            norm_eps=float(t.get("norm_eps", 1e-5)),
        )
        try:
            gpt.validate()
        except ValueError as e:
            raise ConfigError(f"GigaTok transformer config: {e}") from None
    if tok is not None and gpt is not None:
        if tok.num_latent_tokens != gpt.block_size:
            raise ConfigError(f"transformer block_size {gpt.block_size} != tokenizer num_latent_tokens {tok.num_latent_tokens}")
        if tok.codebook_size != gpt.vocab_size:
            raise ConfigError(f"transformer vocab_size {gpt.vocab_size} != tokenizer codebook_size {tok.codebook_size}")
    return GigaTokConfig(tok, gpt)
