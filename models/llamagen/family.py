"""The LlamaGen Family: official configs per registered size, building and strict loading.

Configs use the schema of the conformance fixtures' ``config.json`` (upstream argument
names): ``tokenizer`` (VQ model args), ``tokenizer_encoder_decoder_args`` (encoder/decoder
width and depth; the released VQ-16 hard-wires ch=128, num_res_blocks=2),
``transformer`` (GPT model args), ``image_size``, ``tokenizer_container`` and
``transformer_container``. Registered sizes and user-provided files go through the same
code path.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.catalog import model_cards
from visbpp.core.registry.config_schema import check_config

from .. import config_for
from .gpt import GPT, GPTConfig
from .official import GPT_COMMON, VQ16_ENCODER_DECODER, VQ16_TOKENIZER  # noqa: F401 - re-exported
from .schema import SCHEMA
from .tokenizer import VQConfig, VQTokenizer

# Containers the official loaders accept, in their order of preference (None = bare state dict).
_CONTAINERS = ("model", "module", "state_dict", None)




def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in config or not isinstance(config[key], Mapping):
        raise ConfigError(f"LlamaGen config lacks the {key!r} section (see the conformance config.json for the schema)")
    return config[key]


def vq_config(config: Mapping[str, Any]) -> VQConfig:
    """The tokenizer part of a config -> :class:`VQConfig`."""
    t = _section(config, "tokenizer")
    ed = config.get("tokenizer_encoder_decoder_args") or {}
    if ed.get("norm_type", "group") != "group":
        raise ConfigError(f"unsupported tokenizer norm_type {ed['norm_type']!r} (only 'group')")
    if not ed.get("resamp_with_conv", True):
        raise ConfigError("unsupported tokenizer resamp_with_conv=false (only strided/upsampling convs)")
    if "image_size" not in config:
        raise ConfigError("LlamaGen config lacks 'image_size' (the side S the tokenizer runs at)")
    try:
        return VQConfig(
            codebook_size=int(t["codebook_size"]),
            codebook_embed_dim=int(t["codebook_embed_dim"]),
            codebook_l2_norm=bool(t.get("codebook_l2_norm", True)),
            codebook_show_usage=bool(t.get("codebook_show_usage", True)),
            encoder_ch_mult=tuple(int(m) for m in t.get("encoder_ch_mult", (1, 1, 2, 2, 4))),
            decoder_ch_mult=tuple(int(m) for m in t.get("decoder_ch_mult", (1, 1, 2, 2, 4))),
            z_channels=int(t.get("z_channels", 256)),
            ch=int(ed.get("ch", 128)),
            num_res_blocks=int(ed.get("num_res_blocks", 2)),
            in_channels=int(ed.get("in_channels", 3)),
            out_channels=int(ed.get("out_channels", 3)),
            image_size=int(config["image_size"]),
        )
    except KeyError as e:
        raise ConfigError(f"LlamaGen tokenizer config lacks {e.args[0]!r}") from None


def gpt_config(config: Mapping[str, Any]) -> GPTConfig:
    """The transformer part of a config -> :class:`GPTConfig` (checked against the tokenizer grid)."""
    t = _section(config, "transformer")
    if t.get("model_type", "c2i") != "c2i":
        raise ConfigError(f"only class-conditional LlamaGen models are supported (model_type 'c2i'), got {t['model_type']!r}")
    try:
        cfg = GPTConfig(
            dim=int(t["dim"]),
            n_layer=int(t["n_layer"]),
            n_head=int(t["n_head"]),
            n_kv_head=None if t.get("n_kv_head") is None else int(t["n_kv_head"]),
            vocab_size=int(t["vocab_size"]),
            num_classes=int(t["num_classes"]),
            class_dropout_prob=float(t.get("class_dropout_prob", 0.1)),
            cls_token_num=int(t.get("cls_token_num", 1)),
            block_size=int(t["block_size"]),
            multiple_of=int(t.get("multiple_of", 256)),
            ffn_dim_multiplier=None if t.get("ffn_dim_multiplier") is None else float(t["ffn_dim_multiplier"]),
            rope_base=float(t.get("rope_base", 10000)),
            norm_eps=float(t.get("norm_eps", 1e-5)),
        )
    except KeyError as e:
        raise ConfigError(f"LlamaGen transformer config lacks {e.args[0]!r}") from None
    try:
        cfg.validate()
    except ValueError as e:
        raise ConfigError(f"LlamaGen transformer config: {e}") from None
    if "image_size" in config and "tokenizer" in config:
        vq = vq_config(config)
        if vq.grid * vq.grid != cfg.block_size:
            raise ConfigError(
                f"transformer block_size {cfg.block_size} does not match the tokenizer grid: image_size "
                f"{vq.image_size} / downsample {vq.downsample} = {vq.grid}x{vq.grid} = {vq.grid ** 2} tokens"
            )
        if vq.codebook_size != cfg.vocab_size:
            raise ConfigError(f"transformer vocab_size {cfg.vocab_size} != tokenizer codebook_size {vq.codebook_size}")
    return cfg


def _containers(preferred: Any) -> tuple:
    order = [preferred] if preferred in _CONTAINERS else []
    return tuple(dict.fromkeys(order + list(_CONTAINERS)))


class LlamaGenFamily:
    """Builds and loads LlamaGen tokenizers and transformers (``visbpp.core.interfaces.Family``)."""

    name = "llamagen"

    def size_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in model_cards(self.name))

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "LlamaGen config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema (unknown keys and wrong types are errors)."""
        check_config(config, SCHEMA, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]) -> VQTokenizer:
        return VQTokenizer(vq_config(self.parse_config(config)))

    def build_transformer(self, config: Mapping[str, Any], tokenizer: VQTokenizer | None = None) -> GPT:
        cfg = gpt_config(self.parse_config(config))
        if tokenizer is not None and tokenizer.tokens_per_image != cfg.block_size:
            raise ConfigError(
                f"tokenizer gives {tokenizer.tokens_per_image} tokens per image but the transformer's block_size is {cfg.block_size}"
            )
        return GPT(cfg)

    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> VQTokenizer:
        cfg = vq_config(self.parse_config(config))
        return build_and_load(path, lambda: VQTokenizer(cfg),
                              containers=_containers(config.get("tokenizer_container", "model")))

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: VQTokenizer | None = None) -> GPT:
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer),
                              containers=_containers(config.get("transformer_container", "model")),
                              select=_refuse_other_families,
                              drop=("freqs_cis",))  # a stray RoPE table some files carry


def _refuse_other_families(sd: dict, module: Any, path: str) -> dict:
    """Refuse, never drop: a learned position table (GigaTok's 1-D GPT) or a special-token table (PAR's
    group-parallel order) makes a different model."""
    if "positional_embedding" in sd:
        raise CheckpointError(f"{path}: unexpected key positional_embedding: a GigaTok 1-D GPT (learned absolute "
                              f"positions), not a LlamaGen GPT (2-D RoPE); score it with --family gigatok")
    if "spe_tok_embeddings.special_embeddings.weight" in sd:
        raise CheckpointError(f"{path}: unexpected key spe_tok_embeddings.special_embeddings.weight: a PAR GPT "
                              f"(group-parallel token order), not a LlamaGen GPT (raster order); score it with --family par")
    return sd


FAMILY = LlamaGenFamily()
