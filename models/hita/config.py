"""Hita configs: the schema of the conformance fixtures' ``config.json`` (upstream argument names).

``tokenizer`` = VQModel ModelArgs + ``transformer_config`` (the structure of the upstream yaml
files) + ``cnn_encoder_decoder_args`` + ``backbone`` (DINOv2 ViT args); ``transformer`` = GPT
ModelArgs; ``image_size``; containers. :func:`parse_config` is the one reader: every key is
either used, checked against the one supported value, or documentation; any other key is an
error that names it.
"""

from __future__ import annotations

from typing import Any, Mapping

from .gpt import HitaGPTConfig
from .holistic import HoloConfig
from .tokenizer import HitaVQConfig
from .vit import ViTConfig


class ConfigError(ValueError):
    """A Hita config that cannot describe a supported model."""


# keys that only document (ignored); everything else is read or checked
_DOC_TOP = {"family", "model_id", "set", "upstream", "labels", "seed", "downsample", "patch_grid", "num_holistic_tokens",
            "seq_len", "token_order", "derived", "tokenizer_file_excludes", "backbone_file", "dtype",
            "input_normalisation", "dino_preprocess", "primary_nll", "notes", "num_classes", "token_grid"}
_TOP = {"tokenizer", "transformer", "image_size", "tokenizer_container", "transformer_container", "extra_files",
        "tokenizer_id"}
_TRAIN_ONLY = {"commit_loss_beta", "entropy_loss_ratio", "dropout_p", "dropout", "initializer_range", "token_dropout_p",
               "attn_dropout_p", "resid_dropout_p", "ffn_dropout_p", "drop_path_rate", "caption_dim",
               "max_batch_size", "max_seq_len", "target", "is_trainable", "class", "block_fn", "init_values",
               "block_chunks", "real_counterpart", "pretrained_enc_arch", "pretrained_enc_path", "proj_dim"}
# key -> the only supported value
_FIXED = {"model_type": "c2i", "cls_token_num": 1, "layer_type": "normal", "norm_type": "group", "resamp_with_conv": True,
          "ffn_layer": "mlp", "interpolate_antialias": True, "interpolate_offset": 0.0, "qkv_bias": True,
          "proj_bias": True, "ffn_bias": True, "pretrained_enc_withproj": False, "codebook_l2_norm": True}


def _section(parent: Mapping[str, Any], key: str, where: str, allowed: set[str]) -> dict[str, Any]:
    sec = parent.get(key)
    if not isinstance(sec, Mapping):
        raise ConfigError(f"Hita config lacks the {where}{key!r} section (see the conformance config.json for the schema)")
    out = {}
    for k, v in sec.items():
        if k in _FIXED:
            if v != _FIXED[k]:
                raise ConfigError(f"Hita config {where}{key}.{k} = {v!r} is not supported (only {_FIXED[k]!r})")
        elif k in _TRAIN_ONLY:
            pass
        elif k in allowed:
            out[k] = v
        else:
            raise ConfigError(f"unknown key {where}{key}.{k} in the Hita config (known: {', '.join(sorted(allowed))})")
    return out


def _need(sec: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in sec:
        raise ConfigError(f"Hita config lacks {where}.{key}")
    return sec[key]


def parse_config(config: Mapping[str, Any], need_transformer: bool = True) -> tuple[HitaVQConfig, HitaGPTConfig | None]:
    """The whole config -> (tokenizer config, GPT config or None when ``need_transformer`` is false
    and the config has no ``transformer``). Raises :class:`ConfigError` naming the bad key."""
    for k in config:
        if k not in _TOP and k not in _DOC_TOP:
            raise ConfigError(f"unknown top-level key {k!r} in the Hita config")
    if "image_size" not in config:
        raise ConfigError("Hita config lacks 'image_size' (the side S the tokenizer runs at, 336 for the release)")
    S = int(config["image_size"])
    t = _section(config, "tokenizer", "", {"codebook_size", "codebook_embed_dim", "codebook_slots_embed_dim",
                                           "codebook_show_usage", "encoder_ch_mult", "decoder_ch_mult", "z_channels",
                                           "transformer_config", "cnn_encoder_decoder_args", "backbone"})
    tc = _section(t, "transformer_config", "tokenizer.", {"encoder_config", "decoder_config"})
    holo = {"image_size", "patch_size", "dim", "depth", "num_head", "mlp_dim", "dim_head", "n_carrier"}
    enc = _section(_section(tc, "encoder_config", "tokenizer.transformer_config.", {"params"}), "params",
                   "tokenizer.transformer_config.encoder_config.", holo | {"in_channels", "visual_encoder_config"})
    if "visual_encoder_config" in enc:
        vis = _section(enc, "visual_encoder_config", "tokenizer.transformer_config.encoder_config.params.", {"params"})
        _section(vis, "params", "tokenizer.transformer_config.encoder_config.params.visual_encoder_config.", set())
    dec = _section(_section(tc, "decoder_config", "tokenizer.transformer_config.", {"params"}), "params",
                   "tokenizer.transformer_config.decoder_config.", holo | {"enable_vfm_recon", "shift_k"})
    ed = _section(t, "cnn_encoder_decoder_args", "tokenizer.", {"ch", "num_res_blocks", "in_channels", "out_channels"}) \
        if "cnn_encoder_decoder_args" in t else {}
    bb = _section(t, "backbone", "tokenizer.", {"embed_dim", "depth", "num_heads", "img_size", "patch_size", "mlp_ratio",
                                                "num_register_tokens", "in_chans"})
    try:
        vit = ViTConfig(embed_dim=int(bb["embed_dim"]), depth=int(bb["depth"]), num_heads=int(bb["num_heads"]),
                        img_size=int(bb["img_size"]), patch_size=int(bb["patch_size"]),
                        mlp_ratio=float(bb.get("mlp_ratio", 4)), num_register_tokens=int(bb.get("num_register_tokens", 4)),
                        in_chans=int(bb.get("in_chans", 3)))
        if int(enc.get("in_channels", vit.embed_dim)) != vit.embed_dim:
            raise ConfigError(f"encoder_config in_channels {enc['in_channels']} != backbone embed_dim {vit.embed_dim}")

        def holo_cfg(p: Mapping[str, Any], where: str, **extra: Any) -> HoloConfig:
            if int(p.get("image_size", S)) != S:
                raise ConfigError(f"{where}.image_size {p['image_size']} != image_size {S}")
            side = S // int(_need(p, "patch_size", where))
            return HoloConfig(dim=int(_need(p, "dim", where)), depth=int(_need(p, "depth", where)),
                              num_head=int(_need(p, "num_head", where)), dim_head=int(p.get("dim_head", 64)),
                              mlp_dim=int(_need(p, "mlp_dim", where)), n_carrier=int(_need(p, "n_carrier", where)),
                              num_patches=side * side, **extra)

        vq = HitaVQConfig(
            codebook_size=int(t["codebook_size"]), codebook_embed_dim=int(t["codebook_embed_dim"]),
            codebook_slots_embed_dim=int(t.get("codebook_slots_embed_dim", 12)),
            codebook_show_usage=bool(t.get("codebook_show_usage", True)),
            encoder_ch_mult=tuple(int(m) for m in t.get("encoder_ch_mult", (1, 1, 2, 2, 4))),
            decoder_ch_mult=tuple(int(m) for m in t.get("decoder_ch_mult", (1, 1, 2, 2, 4))),
            z_channels=int(t.get("z_channels", 512)), ch=int(ed.get("ch", 128)),
            num_res_blocks=int(ed.get("num_res_blocks", 2)), in_channels=int(ed.get("in_channels", 3)),
            out_channels=int(ed.get("out_channels", 3)), image_size=S,
            encoder=holo_cfg(enc, "encoder_config.params"),
            decoder=holo_cfg(dec, "decoder_config.params", shift_k=int(dec.get("shift_k", 4)),
                             enable_vfm_recon=bool(dec.get("enable_vfm_recon", False))),
            vit=vit)
    except KeyError as e:
        raise ConfigError(f"Hita tokenizer config lacks {e.args[0]!r}") from None
    if "transformer" not in config and not need_transformer:
        return vq, None
    g = _section(config, "transformer", "", {"dim", "n_layer", "n_head", "n_kv_head", "multiple_of", "ffn_dim_multiplier",
                                             "rope_base", "norm_eps", "num_classes", "class_dropout_prob", "vocab_size",
                                             "block_size", "num_slots"})
    try:
        gpt = HitaGPTConfig(
            dim=int(g["dim"]), n_layer=int(g["n_layer"]), n_head=int(g["n_head"]),
            n_kv_head=None if g.get("n_kv_head") is None else int(g["n_kv_head"]),
            vocab_size=int(g["vocab_size"]), num_classes=int(g["num_classes"]),
            class_dropout_prob=float(g.get("class_dropout_prob", 0.1)), block_size=int(g["block_size"]),
            multiple_of=int(g.get("multiple_of", 256)),
            ffn_dim_multiplier=None if g.get("ffn_dim_multiplier") is None else float(g["ffn_dim_multiplier"]),
            rope_base=float(g.get("rope_base", 10000)), norm_eps=float(g.get("norm_eps", 1e-5)),
            num_slots=int(g["num_slots"]))
        gpt.validate()
    except KeyError as e:
        raise ConfigError(f"Hita transformer config lacks {e.args[0]!r}") from None
    except ValueError as e:
        raise ConfigError(f"Hita transformer config: {e}") from None
    if gpt.block_size != vq.grid**2:
        raise ConfigError(f"transformer block_size {gpt.block_size} does not match the tokenizer grid "
                          f"{vq.grid}x{vq.grid} = {vq.grid ** 2} patch tokens (image_size {S} / {vq.downsample})")
    if gpt.num_slots != vq.encoder.n_carrier:
        raise ConfigError(f"transformer num_slots {gpt.num_slots} != tokenizer n_carrier {vq.encoder.n_carrier}")
    if gpt.vocab_size != vq.codebook_size:
        raise ConfigError(f"transformer vocab_size {gpt.vocab_size} != tokenizer codebook_size {vq.codebook_size}")
    return vq, gpt
