"""GigaTok class-conditional GPT: LlamaGen's c2i transformer with a learned absolute position table.

Differences from ``visbpp.models.llamagen.gpt``: no rotary embedding at all; instead
``positional_embedding`` (cls_token_num + block_size, dim) is added once to the input sequence
(row 0 to the class embedding, row k to the embedding of token t_{k-1}); attention is
position-free; ``block_size`` need not be a square. Teacher forcing as in LlamaGen: the
output at position j predicts t_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import check_label_range
from visbpp.core.nll import chunked_nll, default_chunk

from ..common import RMSNorm, swiglu_hidden
from ..llama import Block
from ..llamagen.gpt import LabelEmbedder


@dataclass(frozen=True)
class GPTConfig:
    dim: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int | None = None
    vocab_size: int = 16384
    num_classes: int = 1000
    class_dropout_prob: float = 0.1  # > 0 adds the null-class row (never scored)
    cls_token_num: int = 1
    block_size: int = 256            # number of 1-D image tokens (= the tokenizer's num_latent_tokens)
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


def TransformerBlock(cfg: GPTConfig) -> Block:
    """LlamaGen's pre-norm block (the shared :class:`~visbpp.models.llama.Block`), called without RoPE."""
    hidden = swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier)
    return Block(cfg.dim, cfg.n_head, hidden, cfg.norm_eps, n_kv_head=cfg.kv_heads)


class GPT(nn.Module):
    """GigaTok c2i transformer (implements ``visbpp.core.interfaces.ARModel``)."""

    family = "gigatok"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.tokens_per_image = cfg.block_size
        self.vocab_size = cfg.vocab_size
        self.num_classes = cfg.num_classes
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.cls_token_num + cfg.block_size, cfg.dim))
        self.cls_embedding = LabelEmbedder(cfg.num_classes, cfg.dim, cfg.class_dropout_prob > 0)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.token_layout = TokenLayout("raster", (1, cfg.block_size))  # one row of 1-D latent tokens
        self.null_class = cfg.num_classes if cfg.class_dropout_prob > 0 else None  # the null row exists

    def _check(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"tokens must be an integer (B, L) tensor, got {tokens.dtype} {tuple(tokens.shape)}")
        B, L = tokens.shape
        if not 1 <= L <= self.cfg.block_size:
            raise ValueError(f"token sequence length {L} outside 1..{self.cfg.block_size} (this model's block_size)")
        if labels.shape != (B,):
            raise ValueError(f"labels must have shape ({B},), got {tuple(labels.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"token values must lie in [0, {self.vocab_size}); got {int(tokens.min())}..{int(tokens.max())}")
        check_label_range(labels, self.num_classes, self.null_class)

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L, dim) final-normed states; row j predicts tokens[:, j]."""
        L = tokens.shape[1]
        x = torch.cat([self.cls_embedding(labels), self.tok_embeddings(tokens[:, : L - 1])], dim=1)  # (B, L, dim)
        x = x + self.positional_embedding[:L].to(x.dtype)
        for layer in self.layers:
            x = layer(x, None)  # attention is position-free: no rotary table
        return self.norm(x)

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
