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

from ..common import swiglu_hidden
from ..llama import Block
from ..llamagen.gpt import C2IConfig, C2IScorer


@dataclass(frozen=True)
class GPTConfig(C2IConfig):
    """LlamaGen's trunk config; ``block_size`` = the tokenizer's num_latent_tokens (any count, no RoPE)."""


def TransformerBlock(cfg: GPTConfig) -> Block:
    """LlamaGen's pre-norm block (the shared :class:`~visbpp.models.llama.Block`), called without RoPE."""
    hidden = swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier)
    return Block(cfg.dim, cfg.n_head, hidden, cfg.norm_eps, n_kv_head=cfg.kv_heads)


class GPT(C2IScorer):
    """GigaTok c2i transformer (implements ``visbpp.core.interfaces.ARModel``)."""

    family = "gigatok"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        cfg.validate()
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.cls_token_num + cfg.block_size, cfg.dim))
        self._init_trunk(cfg, lambda: TransformerBlock(cfg))  # LlamaGen's trunk, the same keys
        self.token_layout = TokenLayout("raster", (1, cfg.block_size))  # one row of 1-D latent tokens

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L, dim) final-normed states; row j predicts tokens[:, j]."""
        L = tokens.shape[1]
        x = torch.cat([self.cls_embedding(labels), self.tok_embeddings(tokens[:, : L - 1])], dim=1)  # (B, L, dim)
        x = x + self.positional_embedding[:L].to(x.dtype)
        for layer in self.layers:
            x = layer(x, None)  # attention is position-free: no rotary table
        return self.norm(x)
