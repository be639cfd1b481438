"""Hita configs -> module configs.

The schema (:mod:`.schema`) is checked by ``FAMILY.parse_config``; :func:`model_configs` reads a
checked config into the dataclasses the modules are built from, checks the keys whose only
supported value is the released one (:data:`.schema.FIXED`) and the agreements between the
tokenizer and the GPT. Every problem is a :class:`~visbpp.core.errors.ConfigError` naming the
config (``where``) and the dotted field.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import ConfigError

from .gpt import HitaGPTConfig
from .holistic import HoloConfig
from .schema import FIXED
from .tokenizer import HitaVQConfig
from .vit import ViTConfig


def check_fixed(section: Mapping[str, Any], where: str, prefix: str) -> None:
    """Every key of :data:`FIXED` found in ``section`` (recursively) holds its one supported value."""
    for k, v in section.items():
        field = f"{prefix}.{k}"
        if isinstance(v, Mapping):
            check_fixed(v, where, field)
        elif k in FIXED and v != FIXED[k]:
            raise ConfigError(f"{where}: {field} = {v!r} is not supported (only {FIXED[k]!r})")


def _sec(parent: Mapping[str, Any], key: str, where: str, prefix: str) -> Mapping[str, Any]:
    sec = parent.get(key)
    if not isinstance(sec, Mapping):
        raise ConfigError(f"{where}: lacks the section {prefix}{key!r} (see the conformance config.json for the schema)")
    return sec


def _need(sec: Mapping[str, Any], key: str, where: str, prefix: str) -> Any:
    if key not in sec:
        raise ConfigError(f"{where}: lacks {prefix}.{key}")
    return sec[key]


def model_configs(config: Mapping[str, Any], where: str = "Hita config",
                  need_transformer: bool = True) -> tuple[HitaVQConfig, HitaGPTConfig | None]:
    """A schema-checked config -> (tokenizer config, GPT config or None when ``need_transformer`` is
    false and the config has no ``transformer``)."""
    if "image_size" not in config:
        raise ConfigError(f"{where}: lacks 'image_size' (the side S the tokenizer runs at, 336 for the release)")
    S = config["image_size"]
    t = _sec(config, "tokenizer", where, "")
    check_fixed(t, where, "tokenizer")
    tc = _sec(t, "transformer_config", where, "tokenizer.")
    enc = _sec(_sec(tc, "encoder_config", where, "tokenizer.transformer_config."), "params", where,
               "tokenizer.transformer_config.encoder_config.")
    dec = _sec(_sec(tc, "decoder_config", where, "tokenizer.transformer_config."), "params", where,
               "tokenizer.transformer_config.decoder_config.")
    ed = t.get("cnn_encoder_decoder_args") or {}
    bb = _sec(t, "backbone", where, "tokenizer.")
    p_bb = "tokenizer.backbone"
    vit = ViTConfig(embed_dim=_need(bb, "embed_dim", where, p_bb), depth=_need(bb, "depth", where, p_bb),
                    num_heads=_need(bb, "num_heads", where, p_bb), img_size=_need(bb, "img_size", where, p_bb),
                    patch_size=_need(bb, "patch_size", where, p_bb), mlp_ratio=float(bb.get("mlp_ratio", 4)),
                    num_register_tokens=bb.get("num_register_tokens", 4), in_chans=bb.get("in_chans", 3))
    if enc.get("in_channels", vit.embed_dim) != vit.embed_dim:
        raise ConfigError(f"{where}: tokenizer.transformer_config.encoder_config.params.in_channels "
                          f"{enc['in_channels']} != tokenizer.backbone.embed_dim {vit.embed_dim}")

    def holo_cfg(p: Mapping[str, Any], part: str, **extra: Any) -> HoloConfig:
        prefix = f"tokenizer.transformer_config.{part}.params"
        if p.get("image_size", S) != S:
            raise ConfigError(f"{where}: {prefix}.image_size {p['image_size']} != image_size {S}")
        side = S // _need(p, "patch_size", where, prefix)
        return HoloConfig(dim=_need(p, "dim", where, prefix), depth=_need(p, "depth", where, prefix),
                          num_head=_need(p, "num_head", where, prefix), dim_head=p.get("dim_head", 64),
                          mlp_dim=_need(p, "mlp_dim", where, prefix), n_carrier=_need(p, "n_carrier", where, prefix),
                          num_patches=side * side, **extra)

    vq = HitaVQConfig(
        codebook_size=_need(t, "codebook_size", where, "tokenizer"),
        codebook_embed_dim=_need(t, "codebook_embed_dim", where, "tokenizer"),
        codebook_slots_embed_dim=t.get("codebook_slots_embed_dim", 12),
        codebook_show_usage=t.get("codebook_show_usage", True),
        encoder_ch_mult=tuple(t.get("encoder_ch_mult", (1, 1, 2, 2, 4))),
        decoder_ch_mult=tuple(t.get("decoder_ch_mult", (1, 1, 2, 2, 4))),
        z_channels=t.get("z_channels", 512), ch=ed.get("ch", 128), num_res_blocks=ed.get("num_res_blocks", 2),
        in_channels=ed.get("in_channels", 3), out_channels=ed.get("out_channels", 3), image_size=S,
        encoder=holo_cfg(enc, "encoder_config"),
        decoder=holo_cfg(dec, "decoder_config", shift_k=dec.get("shift_k", 4),
                         enable_vfm_recon=dec.get("enable_vfm_recon", False)),
        vit=vit)
    if "transformer" not in config and not need_transformer:
        return vq, None
    g = _sec(config, "transformer", where, "")
    check_fixed(g, where, "transformer")
    p_g = "transformer"
    gpt = HitaGPTConfig(
        dim=_need(g, "dim", where, p_g), n_layer=_need(g, "n_layer", where, p_g), n_head=_need(g, "n_head", where, p_g),
        n_kv_head=g.get("n_kv_head"), vocab_size=_need(g, "vocab_size", where, p_g),
        num_classes=_need(g, "num_classes", where, p_g), class_dropout_prob=float(g.get("class_dropout_prob", 0.1)),
        block_size=_need(g, "block_size", where, p_g), multiple_of=g.get("multiple_of", 256),
        ffn_dim_multiplier=None if g.get("ffn_dim_multiplier") is None else float(g["ffn_dim_multiplier"]),
        rope_base=float(g.get("rope_base", 10000)), norm_eps=float(g.get("norm_eps", 1e-5)),
        num_slots=_need(g, "num_slots", where, p_g))
    try:
        gpt.validate()
    except ValueError as e:
        raise ConfigError(f"{where}: transformer: {e}") from None
    if gpt.block_size != vq.grid**2:
        raise ConfigError(f"{where}: transformer.block_size {gpt.block_size} does not match the tokenizer grid "
                          f"{vq.grid}x{vq.grid} = {vq.grid ** 2} patch tokens (image_size {S} / {vq.downsample})")
    if gpt.num_slots != vq.encoder.n_carrier:
        raise ConfigError(f"{where}: transformer.num_slots {gpt.num_slots} != tokenizer n_carrier {vq.encoder.n_carrier}")
    if gpt.vocab_size != vq.codebook_size:
        raise ConfigError(f"{where}: transformer.vocab_size {gpt.vocab_size} != tokenizer.codebook_size {vq.codebook_size}")
    return vq, gpt
