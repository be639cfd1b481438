"""LlamaGen class-conditional GPT ("c2i"): Llama-style decoder with 2-D rotary embeddings.

Teacher-forced sequence for tokens t_0..t_{L-1} and class y: position 0 holds the class
embedding, positions 1..L-1 the token embeddings of t_0..t_{L-2}; the output at
position j predicts t_j. Attribute names equal the official state-dict keys
(``cls_embedding.embedding_table``, ``tok_embeddings``, ``layers.i.attention.wqkv``...).
The module has no buffers: the RoPE table is computed per device on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import check_label_range
from visbpp.core.nll import chunked_nll, default_chunk

from ..common import RMSNorm, swiglu_hidden
from ..llama import Block, Rope2D, rope_2d_table
from .tokenizer import check_token_values


@dataclass(frozen=True)
class C2IConfig:
    """The class-conditional Llama trunk (LlamaGen's argument names); GigaTok's GPT uses it as is."""

    dim: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int | None = None   # None = n_head
    vocab_size: int = 16384
    num_classes: int = 1000
    class_dropout_prob: float = 0.1  # > 0 adds the null-class row (training only; never used for scoring)
    cls_token_num: int = 1
    block_size: int = 256            # number of image tokens
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    def validate(self) -> None:
        if self.dim % self.n_head:
            raise ValueError(f"dim {self.dim} is not divisible by n_head {self.n_head}")
        if self.n_head % self.kv_heads:
            raise ValueError(f"n_head {self.n_head} is not a multiple of n_kv_head {self.kv_heads}")
        if self.cls_token_num != 1:
            raise ValueError(f"class-conditional models use cls_token_num 1, got {self.cls_token_num}")


@dataclass(frozen=True)
class GPTConfig(C2IConfig):
    """LlamaGen: the trunk with 2-D RoPE; ``block_size`` = grid side squared."""

    rope_base: float = 10000

    @property
    def grid(self) -> int:
        return int(round(self.block_size**0.5))

    def validate(self) -> None:
        super().validate()
        if self.head_dim % 4:
            raise ValueError(f"2-D RoPE needs head_dim divisible by 4, got {self.head_dim}")
        if self.grid * self.grid != self.block_size:
            raise ValueError(f"block_size {self.block_size} is not a square number of tokens (grid side^2)")


# --------------------------------------------------------------------------- blocks

precompute_freqs_cis_2d = rope_2d_table  # the shared 2-D RoPE table, under LlamaGen's name


def TransformerBlock(cfg: GPTConfig) -> Block:
    """Pre-norm llama block of this config (the shared :class:`~visbpp.models.llama.Block`)."""
    hidden = swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier)
    return Block(cfg.dim, cfg.n_head, hidden, cfg.norm_eps, n_kv_head=cfg.kv_heads)


class LabelEmbedder(nn.Module):
    """Class table ``embedding_table`` (num_classes [+1 null row], dim). No label dropout here."""

    def __init__(self, num_classes: int, dim: int, with_null: bool):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + int(with_null), dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels).unsqueeze(1)  # (B, 1, dim)


# --------------------------------------------------------------------------- scoring


class C2IScorer(nn.Module):
    """Input checks, logits and ``token_nll`` of a class-conditional GPT whose ``hidden_states``
    row j predicts ``tokens[:, j]`` through ``output``; shared by LlamaGen, GigaTok and Hita.

    Subclasses set ``tokens_per_image``, ``vocab_size``, ``num_classes``, ``null_class`` and
    ``output``; ``length_note`` says what bounds the sequence length in the error message.
    """

    length_note = "this model's block_size"

    def _init_trunk(self, cfg: C2IConfig, block: Callable[[], nn.Module]) -> None:
        """The class-conditional Llama trunk of ``cfg``, in order: ``cls_embedding``, ``tok_embeddings``,
        ``layers`` (``n_layer`` x ``block()``), ``norm``, ``output``; the null row exists when
        ``class_dropout_prob > 0``. One image is ``block_size`` tokens."""
        self.cfg = cfg
        self.tokens_per_image = cfg.block_size
        self.vocab_size = cfg.vocab_size
        self.num_classes = cfg.num_classes
        self.cls_embedding = LabelEmbedder(cfg.num_classes, cfg.dim, cfg.class_dropout_prob > 0)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(block() for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.null_class = cfg.num_classes if cfg.class_dropout_prob > 0 else None

    def _check(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"tokens must be an integer (B, L) tensor, got {tokens.dtype} {tuple(tokens.shape)}")
        B, L = tokens.shape
        if not 1 <= L <= self.tokens_per_image:
            raise ValueError(f"token sequence length {L} outside 1..{self.tokens_per_image} ({self.length_note})")
        if labels.shape != (B,):
            raise ValueError(f"labels must have shape ({B},), got {tuple(labels.shape)}")
        check_token_values(tokens, self.vocab_size)
        check_label_range(labels, self.num_classes, self.null_class)

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forced float32 logits (B, L, vocab); row j is the distribution of tokens[:, j]."""
        self._check(tokens, labels)
        return self.output(self.hidden_states(tokens, labels)).float()

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L) float32 nats, one forward, chunked fp32 log-softmax."""
        self._check(tokens, labels)
        tokens, labels = tokens.long(), labels.long()
        h = self.hidden_states(tokens, labels)
        return chunked_nll(h, self.output, tokens, chunk or default_chunk(tokens.shape[0], self.vocab_size))


# --------------------------------------------------------------------------- model


class GPT(C2IScorer):
    """LlamaGen c2i transformer (implements ``visbpp.core.interfaces.ARModel``)."""

    family = "llamagen"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        cfg.validate()
        self._init_trunk(cfg, lambda: TransformerBlock(cfg))
        self.rope = Rope2D(cfg.grid, cfg.head_dim, cfg.rope_base, cfg.cls_token_num)  # cached per device/dtype
        self.token_layout = TokenLayout("raster", (cfg.grid, cfg.grid))

    def freqs_cis(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The (cls_token_num + block_size, head_dim/2, 2) (cos, sin) RoPE table on ``device`` (cached)."""
        return torch.view_as_real(self.rope(device))

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L, dim) final-normed states; row j predicts tokens[:, j]."""
        L = tokens.shape[1]
        x = torch.cat([self.cls_embedding(labels), self.tok_embeddings(tokens[:, : L - 1])], dim=1)  # (B, L, dim)
        freqs = self.rope(x.device)[:L]
        for layer in self.layers:
            x = layer(x, freqs)
        return self.norm(x)
