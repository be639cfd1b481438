"""VFMTok configs -> module configs.

The schema (:mod:`.schema`) is checked by ``FAMILY.parse_config``; :func:`model_configs` reads a
checked config into the dataclasses the modules are built from, checks the keys whose only
supported value is the released one and the agreements between the parts (tokenizer width,
DINOv2 width and taps, pixel-decoder grid, GPT sequence and vocabulary). Every problem is a
:class:`~visbpp.core.errors.ConfigError` naming the config (``where``) and the field.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import ConfigError

from ..hita.config import check_fixed
from ..hita.vit import ViTConfig
from ..llamagen.family import gpt_config
from ..llamagen.gpt import GPTConfig
from .deformable import RegionConfig
from .official import DINO_INPUT_SIDE, DINO_LEVELS
from .tokenizer import VFMTokConfig
from .transformers import TokenDecoderConfig


def _sec(parent: Mapping[str, Any], key: str, where: str, prefix: str) -> Mapping[str, Any]:
    sec = parent.get(key)
    if not isinstance(sec, Mapping):
        raise ConfigError(f"{where}: lacks the section {prefix}{key!r} (see the conformance config.json for the schema)")
    return sec


def _need(sec: Mapping[str, Any], key: str, where: str, prefix: str) -> Any:
    if key not in sec:
        raise ConfigError(f"{where}: lacks {prefix}.{key}")
    return sec[key]


def tokenizer_config(config: Mapping[str, Any], where: str = "VFMTok config") -> VFMTokConfig:
    """The tokenizer part of a schema-checked config -> :class:`VFMTokConfig`."""
    if "image_size" not in config:
        raise ConfigError(f"{where}: lacks 'image_size' (the side S the tokenizer runs at, 336 for the release)")
    S = config["image_size"]
    t = _sec(config, "tokenizer", where, "")
    check_fixed(t, where, "tokenizer")
    tc = _sec(t, "transformer_config", where, "tokenizer.")
    p_enc, p_dec = "tokenizer.transformer_config.encoder_config.params", "tokenizer.transformer_config.decoder_config.params"
    enc = _sec(_sec(tc, "encoder_config", where, "tokenizer.transformer_config."), "params", where,
               "tokenizer.transformer_config.encoder_config.")
    dec = _sec(_sec(tc, "decoder_config", where, "tokenizer.transformer_config."), "params", where,
               "tokenizer.transformer_config.decoder_config.")
    bb, p_bb = _sec(t, "backbone", where, "tokenizer."), "tokenizer.backbone"
    vit = ViTConfig(embed_dim=_need(bb, "embed_dim", where, p_bb), depth=_need(bb, "depth", where, p_bb),
                    num_heads=_need(bb, "num_heads", where, p_bb), img_size=_need(bb, "img_size", where, p_bb),
                    patch_size=_need(bb, "patch_size", where, p_bb), mlp_ratio=float(bb.get("mlp_ratio", 4)),
                    num_register_tokens=bb.get("num_register_tokens", 4), in_chans=bb.get("in_chans", 3))
    z = t.get("z_channels", 256)
    region = RegionConfig(dim=_need(enc, "dim", where, p_enc), depth=_need(enc, "depth", where, p_enc),
                          n_carrier=_need(enc, "n_carrier", where, p_enc), n_points=enc.get("enc_n_points", 4),
                          in_channels=enc.get("in_channels", 1024))
    if region.in_channels != vit.embed_dim:
        raise ConfigError(f"{where}: {p_enc}.in_channels {region.in_channels} != tokenizer.backbone.embed_dim {vit.embed_dim}")
    if region.grid**2 != region.n_carrier:
        raise ConfigError(f"{where}: {p_enc}.n_carrier {region.n_carrier} is not a square number (a G x G carrier grid)")
    for name, p in (("encoder_config", enc), ("decoder_config", dec)):
        if _need(p, "dim", where, f"tokenizer.transformer_config.{name}.params") != z:
            raise ConfigError(f"{where}: tokenizer.transformer_config.{name}.params.dim {p['dim']} != "
                              f"tokenizer.z_channels {z}")
    if dec.get("image_size", S) != S:
        raise ConfigError(f"{where}: {p_dec}.image_size {dec['image_size']} != image_size {S}")
    patch = _need(dec, "patch_size", where, p_dec)
    mult = tuple(t.get("decoder_ch_mult", (1, 1, 2, 2, 4)))
    if S % patch or (S // patch) * 2 ** (len(mult) - 1) != S:
        raise ConfigError(f"{where}: image_size {S} must be {p_dec}.patch_size {patch} times the pixel decoder's "
                          f"upsampling 2^{len(mult) - 1} (tokenizer.decoder_ch_mult {list(mult)})")
    decoder = TokenDecoderConfig(dim=_need(dec, "dim", where, p_dec), depth=_need(dec, "depth", where, p_dec),
                                 num_head=_need(dec, "num_head", where, p_dec), mlp_dim=_need(dec, "mlp_dim", where, p_dec),
                                 n_carrier=dec.get("n_carrier", region.n_carrier), grid=S // patch)
    if decoder.n_carrier != region.n_carrier:
        raise ConfigError(f"{where}: {p_dec}.n_carrier {decoder.n_carrier} != {p_enc}.n_carrier {region.n_carrier}")
    levels = config.get("dino_levels", DINO_LEVELS)
    if len(levels) != 4 or min(levels[:-1]) < 0 or max(levels[:-1]) >= vit.depth - 1:
        raise ConfigError(f"{where}: dino_levels {levels} must be three block indices below the last block "
                          f"({vit.depth - 1} of tokenizer.backbone.depth {vit.depth}) and the last block")
    side = config.get("dino_input_side", DINO_INPUT_SIDE)
    if side % vit.patch_size:
        raise ConfigError(f"{where}: dino_input_side {side} is not a multiple of tokenizer.backbone.patch_size "
                          f"{vit.patch_size}")
    cnn = t.get("cnn_decoder_args") or {}
    return VFMTokConfig(
        image_size=S, codebook_size=_need(t, "codebook_size", where, "tokenizer"),
        slots_dim=t.get("codebook_slots_embed_dim", 12), codebook_show_usage=t.get("codebook_show_usage", True),
        z_channels=z, decoder_ch_mult=mult, ch=cnn.get("ch", 128), num_res_blocks=cnn.get("num_res_blocks", 1),
        out_channels=cnn.get("out_channels", 3), dino_side=side,
        dino_taps=tuple(levels[:-1]), encoder=region, decoder=decoder, vit=vit)


def transformer_config(config: Mapping[str, Any], tok: VFMTokConfig, where: str = "VFMTok config") -> GPTConfig:
    """The GPT part -> LlamaGen's :class:`GPTConfig`, checked against the tokenizer's carriers and codebook."""
    g = _sec(config, "transformer", where, "")
    check_fixed(g, where, "transformer")
    try:
        gpt = gpt_config({"transformer": g})  # LlamaGen's reader, the section alone (no LlamaGen tokenizer here)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    if gpt.block_size != tok.encoder.n_carrier:
        raise ConfigError(f"{where}: transformer.block_size {gpt.block_size} != the tokenizer's "
                          f"{tok.encoder.n_carrier} carrier tokens (n_carrier)")
    if gpt.vocab_size != tok.codebook_size:
        raise ConfigError(f"{where}: transformer.vocab_size {gpt.vocab_size} != tokenizer.codebook_size {tok.codebook_size}")
    return gpt
