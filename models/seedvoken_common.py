"""Pieces shared by the two SEED-Voken families (Open-MAGVIT2 and IBQ).

- the 2-D rotary table with an all-zero row per class position, and its application;
- the llama block (``attention.wqkv/wo``, ``feed_forward.w1/w2/w3``, ``attention_norm``,
  ``ffn_norm``), optionally AdaLN-modulated (``ada_lin.1``) as IBQ uses it;
- the class embedding (``class_emb.embedding_table``);
- checkpoint helpers: Lightning ``{"state_dict": sd}`` files that carry the tokenizer
  either alone (raw ``encoder.*`` + EMA copies ``model_ema.<key without dots>``) or under
  ``first_stage_model.*`` of an AR file.
"""

from __future__ import annotations

import copy
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.checkpoint_io import CheckpointError, read_checkpoint, strict_load, unwrap

from .common import FeedForward, RMSNorm, swiglu_hidden

# --------------------------------------------------------------------------- 2-D RoPE


def rope_2d_table(head_dim: int, grid: int, n_cls: int = 1, base: float = 10000.0,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """(n_cls + grid*grid, head_dim/2, 2) float32 table of (cos, sin) per position and angle pair.

    Pair i < half/2 turns by row*f_i, the rest by col*f_(i-half/2), f_i = base^(-2i/half),
    half = head_dim/2. The first ``n_cls`` rows are all zero (cos = sin = 0): the class
    position's q and k vanish.
    """
    half = head_dim // 2
    freqs = 1.0 / (base ** (torch.arange(0, half, 2, device=device)[: half // 2].float() / half))  # (half/2,)
    t = torch.arange(grid, device=device, dtype=torch.float32)
    ang = torch.outer(t, freqs)  # (grid, half/2)
    grid_ang = torch.cat([
        ang[:, None, :].expand(grid, grid, -1),  # row angles
        ang[None, :, :].expand(grid, grid, -1),  # column angles
    ], dim=-1).reshape(grid * grid, half)  # (grid*grid, half)
    table = torch.stack([torch.cos(grid_ang), torch.sin(grid_ang)], dim=-1)  # (grid*grid, half, 2)
    zeros = torch.zeros(n_cls, half, 2, device=device)
    return torch.cat([zeros, table], dim=0)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """x (B, T, H, Dh), table (T, Dh/2, 2) -> x rotated pairwise (2i, 2i+1), in float32, cast back."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)  # (B, T, H, Dh/2, 2)
    tab = table[None, :, None]  # (1, T, 1, Dh/2, 2)
    cos, sin = tab[..., 0], tab[..., 1]
    x0, x1 = xf[..., 0], xf[..., 1]
    out = torch.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], dim=-1)
    return out.flatten(3).type_as(x)


# --------------------------------------------------------------------------- llama block


class Attention(nn.Module):
    """Causal multi-head self-attention with fused ``wqkv`` and output ``wo`` (no biases), 2-D RoPE."""

    def __init__(self, dim: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.head_dim = dim // n_head
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.wqkv(x).split(D, dim=-1)
        q = apply_rope(q.view(B, T, self.n_head, self.head_dim), rope)  # (B, T, H, Dh)
        k = apply_rope(k.view(B, T, self.n_head, self.head_dim), rope)
        v = v.view(B, T, self.n_head, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, Dh)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, Dh)
        return self.wo(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """Pre-norm llama block; with ``adaln`` the IBQ modulation from ``ada_lin`` = (SiLU, Linear(D, 6D)).

    AdaLN chunks are (gamma1, gamma2, scale1, scale2, shift1, shift2):
    h = x + g1 * attn(norm(x) * (1 + s1) + b1); out = h + g2 * ffn(norm(h) * (1 + s2) + b2).
    """

    def __init__(self, dim: int, n_head: int, ffn_hidden: int, norm_eps: float = 1e-5, adaln: bool = False):
        super().__init__()
        self.attention = Attention(dim, n_head)
        self.feed_forward = FeedForward(dim, ffn_hidden)
        self.attention_norm = RMSNorm(dim, norm_eps)
        self.ffn_norm = RMSNorm(dim, norm_eps)
        if adaln:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, rope: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is None:
            h = x + self.attention(self.attention_norm(x), rope)
            return h + self.feed_forward(self.ffn_norm(h))
        g1, g2, s1, s2, b1, b2 = self.ada_lin(cond).chunk(6, dim=-1)  # each (B, 1, D)
        h = x + g1 * self.attention(self.attention_norm(x) * (1 + s1) + b1, rope)
        return h + g2 * self.feed_forward(self.ffn_norm(h) * (1 + s2) + b2)


class ClassEmbedder(nn.Module):
    """``embedding_table`` with ``num_classes + 1`` rows (the last is the unused null class)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)[:, None]  # (B, 1, D)


def check_labels(labels: torch.Tensor, num_classes: int, batch: int) -> torch.Tensor:
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"class labels must lie in [0, {num_classes}); got min {int(labels.min())}, "
                         f"max {int(labels.max())}")
    return labels.long()


def check_tokens(tokens: torch.Tensor, length: int, vocab: int) -> torch.Tensor:
    if tokens.dim() != 2 or tokens.shape[1] != length:
        raise ValueError(f"tokens must have shape (B, {length}), got {tuple(tokens.shape)}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ValueError(f"token values must lie in [0, {vocab}); got min {int(tokens.min())}, max {int(tokens.max())}")
    return tokens.long()


# --------------------------------------------------------------------------- checkpoints

AR_TOKENIZER_PREFIX = "first_stage_model."
EMA_PREFIX = "model_ema."


def read_state_dict(path: str) -> dict:
    """The state dict of a SEED-Voken Lightning checkpoint (``{"state_dict": sd}``; a bare dict is accepted)."""
    return unwrap(read_checkpoint(path), ("state_dict", None), str(path))


def tokenizer_state_dict(sd: Mapping[str, torch.Tensor], module: nn.Module, path: str, use_ema: bool,
                         family_label: str) -> tuple[dict, str]:
    """Pick the tokenizer weights out of an AR file or a tokenizer file.

    AR file (keys ``first_stage_model.*``): those, prefix removed. Tokenizer file: the EMA
    copies (``model_ema.`` + module key without dots) when ``use_ema``, else the raw
    module keys; ``loss.*`` and the other copy are dropped. Returns (state dict, source).
    """
    if any(k.startswith(AR_TOKENIZER_PREFIX) for k in sd):
        n = len(AR_TOKENIZER_PREFIX)
        return {k[n:]: v for k, v in sd.items() if k.startswith(AR_TOKENIZER_PREFIX)}, "ar-file first_stage_model"
    own = list(module.state_dict().keys())
    if use_ema:
        if not any(k.startswith(EMA_PREFIX) for k in sd):
            raise CheckpointError(
                f"{path}: no {EMA_PREFIX}* weights and no {AR_TOKENIZER_PREFIX}* weights: not a {family_label} "
                f"tokenizer or AR file (first keys: {', '.join(list(sd)[:5])})")
        out, missing = {}, []
        for k in own:
            ek = EMA_PREFIX + k.replace(".", "")
            if ek in sd:
                out[k] = sd[ek]
            else:
                missing.append(ek)
        if missing:
            raise CheckpointError(f"{path}: {len(missing)} EMA tokenizer tensor(s) missing, first: "
                                  f"{', '.join(missing[:5])}. Is this the {family_label} tokenizer file?")
        return out, "tokenizer-file ema"
    return ({k: v for k, v in sd.items() if not k.startswith((EMA_PREFIX, "loss."))}, "tokenizer-file raw")


def load_module(module: nn.Module, sd: Mapping[str, torch.Tensor], path: str) -> nn.Module:
    strict_load(module, sd, str(path))
    return module.float().eval()


def transformer_state_dict(sd: Mapping[str, torch.Tensor], path: str, family_label: str) -> dict:
    """``transformer.*`` of an AR file, prefix removed; a clear error when there is none."""
    out = {k[len("transformer."):]: v for k, v in sd.items() if k.startswith("transformer.")}
    if not out:
        raise CheckpointError(
            f"{path}: no transformer.* weights: not a {family_label} AR checkpoint (a tokenizer file or another "
            f"family's file?); first keys: {', '.join(list(sd)[:5])}")
    return out


class SeedVokenFamily:
    """Family object shared by the SEED-Voken families (Open-MAGVIT2, IBQ): Lightning files, the
    tokenizer readable from its own file (raw or EMA copies) or from an AR file's ``first_stage_model.*``.

    Subclasses set the class attributes below and ``config_for``.
    """

    name: str
    label: str
    tokenizer_id: str
    default_use_ema: bool                # which tokenizer copy the official AR configuration uses
    tokenizer_cls: type                  # (TokenizerConfig) -> module, with ``TokenizerConfig.from_config``
    tokenizer_config_cls: type
    transformer_cls: type
    transformer_config_cls: type

    base_config: dict                    # official config of the family in the fixture schema, sizes aside
    size_fields: tuple[str, ...]         # transformer arguments that differ per size, in SIZES tuple order
    sizes: dict                          # card id -> values of ``size_fields``
    codebook_size: int

    def config_for(self, model_id: str) -> dict:
        """Official configuration of a size id (or of the tokenizer id: the first size), fixture schema."""
        if model_id == self.tokenizer_id:
            model_id = next(iter(self.sizes))
        if model_id not in self.sizes:
            raise KeyError(f"unknown {self.label} size id {model_id!r}; known: {', '.join(self.sizes)}")
        values = dict(zip(self.size_fields, self.sizes[model_id]))
        dim = values[self.size_fields[0]]
        cfg = copy.deepcopy(self.base_config)
        cfg["transformer"].update(values, cond_dim=dim)
        cfg["derived"] = {"head_dim": dim // values["n_head"], "ffn_hidden_dim": swiglu_hidden(dim, 256),
                          "class_embedding_rows": 1001, "null_class_index": 1000, "codebook_size": self.codebook_size}
        cfg["model_id"] = model_id
        return cfg

    def build_tokenizer(self, config: Mapping) -> nn.Module:
        return self.tokenizer_cls(self.tokenizer_config_cls.from_config(config)).eval()

    def build_transformer(self, config: Mapping, tokenizer: object = None) -> nn.Module:
        return self.transformer_cls(self.transformer_config_cls.from_config(config)).eval()

    def load_tokenizer(self, path: str, config: Mapping) -> nn.Module:
        """From the tokenizer file (raw or EMA weights per ``use_ema``) or an AR file (``first_stage_model.*``)."""
        path = str(path)
        sd = read_state_dict(path)
        with torch.device("meta"):
            tok = self.build_tokenizer(config)
        use_ema = bool(config["tokenizer"].get("use_ema", self.default_use_ema))
        sub, source = tokenizer_state_dict(sd, tok, path, use_ema, self.label)
        load_module(tok, sub, path)
        tok.weights_source = source
        return tok

    def load_transformer(self, path: str, config: Mapping, tokenizer: object = None) -> nn.Module:
        """From an AR file (``transformer.*``; its ``first_stage_model.*`` is the tokenizer's business)."""
        path = str(path)
        sub = transformer_state_dict(read_state_dict(path), path, self.label)
        with torch.device("meta"):
            model = self.build_transformer(config)
        return load_module(model, sub, path)
