"""The official VAR configuration of every registered size, as plain data (no torch).

The schema is the conformance fixtures' ``config.json``: the VQVAE arguments (``tokenizer``), the
VAR arguments (``transformer``), ``image_size``, ``patch_nums``, ``num_classes``,
``tokens_per_image`` and ``vocab_size``; the card's ``arch`` gives ``depth``, ``patch_nums`` and
``shared_aln``. ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

CH_MULT = (1, 1, 2, 2, 4)  # fixed inside the official VQVAE (LDM "vq-f16" layout)
DOWNSAMPLE = 2 ** (len(CH_MULT) - 1)  # 16


def _official_config(depth: int, patch_nums: tuple[int, ...], shared_aln: bool) -> dict[str, Any]:
    pn = list(patch_nums)
    tokenizer = dict(vocab_size=4096, z_channels=32, ch=160, dropout=0.0, beta=0.25, using_znorm=False,
                     quant_conv_ks=3, quant_resi=0.5, share_quant_resi=4, default_qresi_counts=0,
                     v_patch_nums=pn, test_mode=True)
    transformer = dict(num_classes=1000, depth=depth, embed_dim=64 * depth, num_heads=depth, mlp_ratio=4.0,
                       drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1 * depth / 24, norm_eps=1e-6,
                       shared_aln=shared_aln, cond_drop_rate=0.0, attn_l2_norm=True, patch_nums=pn,
                       flash_if_available=False, fused_if_available=False)
    L = sum(p * p for p in pn)
    return dict(tokenizer=tokenizer, transformer=transformer, image_size=pn[-1] * DOWNSAMPLE, num_classes=1000,
                patch_nums=pn, tokens_per_image=L, vocab_size=4096)


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """The official config of a size: the card's architecture (depth, patch_nums, shared_aln) in the
    family's base config."""
    return _official_config(card.arch["depth"], tuple(card.arch["patch_nums"]), bool(card.arch["shared_aln"]))
