"""IBQ class-conditional AR transformer: llama blocks with AdaLN modulation by the class embedding.

Sequence [e_y, tok_emb(t_0), ..., tok_emb(t_{L-2})]; e_y = class embedding, which is also the
AdaLN condition of every block and of the head. Output position n scores t_n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from visbpp.core.interfaces import TokenLayout
from visbpp.core.nll import chunked_nll, default_chunk

from ..common import RMSNorm, swiglu_hidden
from ..llama import Block, Rope2D
from ..seedvoken_common import ClassEmbedder, check_labels, check_tokens


@dataclass
class GPTConfig:
    n_embd: int = 1024
    n_head: int = 16
    n_layer: int = 16
    vocab_size: int = 16384
    block_size: int = 256
    class_num: int = 1000
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5
    head_norm_eps: float = 1e-5
    rope_base: float = 10000.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "GPTConfig":
        t = dict(config.get("transformer_defaults", {}))
        t.update(config["transformer"])
        if t.get("n_kv_head") not in (None, t["n_head"]):
            raise ValueError("IBQ: n_kv_head different from n_head is not supported")
        if t.get("cls_token_num", 1) != 1 or t.get("shared_aln", False):
            raise ValueError("IBQ: only cls_token_num = 1 and shared_aln = False are supported")
        if t.get("cond_dim", t["n_embd"]) != t["n_embd"]:
            raise ValueError("IBQ: cond_dim must equal n_embd")
        return cls(n_embd=t["n_embd"], n_head=t["n_head"], n_layer=t["n_layer"], vocab_size=t["vocab_size"],
                   block_size=t["block_size"], class_num=t["class_num"], multiple_of=t.get("multiple_of", 256),
                   ffn_dim_multiplier=t.get("ffn_dim_multiplier"), norm_eps=t.get("norm_eps", 1e-5),
                   head_norm_eps=t.get("head_nm_rmsnorm_eps", 1e-5), rope_base=t.get("rope_base", 10000.0))


class AdaLNHead(nn.Module):
    """``rmsnorm`` then (1 + scale) and shift from ``ada_lin`` = (SiLU, nn.Linear(D, 2D)), chunks (scale, shift)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.rmsnorm = RMSNorm(dim, eps)
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada_lin(cond).chunk(2, dim=-1)  # (B, 1, D) each
        return self.rmsnorm(h) * (1 + scale) + shift


class AdaLNGPT(nn.Module):
    family = "ibq"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        hidden = swiglu_hidden(cfg.n_embd, cfg.multiple_of, cfg.ffn_dim_multiplier)
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.class_emb = ClassEmbedder(cfg.class_num, cfg.n_embd)
        self.blocks = nn.ModuleList(
            Block(cfg.n_embd, cfg.n_head, hidden, cfg.norm_eps, adaln=True) for _ in range(cfg.n_layer))
        self.head_nm = AdaLNHead(cfg.n_embd, cfg.head_norm_eps)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.tokens_per_image = cfg.block_size
        self.grid = math.isqrt(cfg.block_size)
        if self.grid * self.grid != cfg.block_size:
            raise ValueError(f"IBQ: block_size {cfg.block_size} is not a square token grid")
        self.rope = Rope2D(self.grid, cfg.n_embd // cfg.n_head, cfg.rope_base)  # cached per device/dtype
        self.vocab_size = cfg.vocab_size
        self.num_classes = cfg.class_num
        self.token_layout = TokenLayout("raster", (self.grid, self.grid))
        self.null_class = cfg.class_num  # the class table's last row

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced forward -> (last block output (B, L, D), condition (B, 1, D))."""
        B, L = tokens.shape
        rope = self.rope(tokens.device)
        cond = self.class_emb(labels)  # (B, 1, D)
        tok = self.tok_emb(tokens[:, :-1])  # (B, L-1, D)
        h = torch.cat([cond.to(tok.dtype), tok], dim=1)  # (B, L, D)
        for blk in self.blocks:
            h = blk(h, rope[:L], cond)
        return h, cond

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L) float32 nats, -ln p(t_n | y, t_<n)."""
        tokens = check_tokens(tokens, self.tokens_per_image, self.vocab_size)
        labels = check_labels(labels.to(tokens.device), self.num_classes, tokens.shape[0], self.null_class)
        h, cond = self.hidden_states(tokens, labels)
        step = chunk or default_chunk(tokens.shape[0], self.vocab_size)
        return chunked_nll(h, self.head, tokens, step, pre=lambda x: self.head_nm(x, cond))

    @torch.inference_mode()
    def logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Full float32 logits (B, L, V); for tests and inspection of small inputs."""
        tokens = check_tokens(tokens, self.tokens_per_image, self.vocab_size)
        labels = check_labels(labels.to(tokens.device), self.num_classes, tokens.shape[0], self.null_class)
        h, cond = self.hidden_states(tokens, labels)
        return self.head(self.head_nm(h, cond)).float()
