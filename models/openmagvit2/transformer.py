"""Open-MAGVIT2 class-conditional AR transformer with next sub-token prediction.

Each 2^(k1+k2) code index splits into pre = index mod 2^k1 and post = index div 2^k1.
The spatial stack reads [class, emb(t_0), ..., emb(t_{L-2})] with emb(t) = pre_emb[pre] +
post_emb[post]; for every position n a two-slot factorized stack reads [h_n, pre_emb[pre_n]]
(the true pre sub-token); slot 0 predicts pre_n, slot 1 predicts post_n. So
NLL(t_n) = NLL(pre_n) + NLL(post_n), an exact chain rule over the joint index.
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
    dim: int = 1024
    n_head: int = 16
    spatial_n_layer: int = 24
    factorized_n_layer: int = 2
    factorized_bits: tuple[int, int] = (6, 12)
    block_size: int = 256
    class_num: int = 1000
    cls_token_num: int = 1
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    norm_eps: float = 1e-5
    rope_base: float = 10000.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "GPTConfig":
        t = dict(config.get("transformer_defaults", {}))
        t.update(config["transformer"])
        if not t.get("token_factorization", True):
            raise ValueError("Open-MAGVIT2: only token_factorization=True (the released AR models) is supported")
        if t.get("n_kv_head") not in (None, t["n_head"]):
            raise ValueError("Open-MAGVIT2: n_kv_head different from n_head is not supported")
        if t.get("cls_token_num", 1) != 1:
            raise ValueError("Open-MAGVIT2: only cls_token_num = 1 is supported")
        return cls(dim=t["dim"], n_head=t["n_head"], spatial_n_layer=t["spatial_n_layer"],
                   factorized_n_layer=t["factorized_n_layer"], factorized_bits=tuple(t["factorized_bits"]),
                   block_size=t["block_size"], class_num=t["class_num"], multiple_of=t.get("multiple_of", 256),
                   ffn_dim_multiplier=t.get("ffn_dim_multiplier"), norm_eps=t.get("norm_eps", 1e-5),
                   rope_base=t.get("rope_base", 10000.0))


class FactorizedGPT(nn.Module):
    family = "openmagvit2"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        k1, k2 = cfg.factorized_bits
        hidden = swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier)
        self.pre_emb = nn.Embedding(2 ** k1, cfg.dim)
        self.post_emb = nn.Embedding(2 ** k2, cfg.dim)
        self.class_emb = ClassEmbedder(cfg.class_num, cfg.dim)
        self.spatial_blocks = nn.ModuleList(
            Block(cfg.dim, cfg.n_head, hidden, cfg.norm_eps) for _ in range(cfg.spatial_n_layer))
        self.factorized_blocks = nn.ModuleList(
            Block(cfg.dim, cfg.n_head, hidden, cfg.norm_eps) for _ in range(cfg.factorized_n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.head = nn.ModuleList([nn.Linear(cfg.dim, 2 ** k1, bias=False), nn.Linear(cfg.dim, 2 ** k2, bias=False)])
        self.tokens_per_image = cfg.block_size
        self.grid = math.isqrt(cfg.block_size)
        if self.grid * self.grid != cfg.block_size:
            raise ValueError(f"Open-MAGVIT2: block_size {cfg.block_size} is not a square token grid")
        self.rope = Rope2D(self.grid, cfg.dim // cfg.n_head, cfg.rope_base)  # cached per device/dtype
        self.pre_vocab, self.post_vocab = 2 ** k1, 2 ** k2
        self.vocab_size = 2 ** (k1 + k2)
        self.num_classes = cfg.class_num
        self.token_layout = TokenLayout("subtokens", (self.grid, self.grid), parts=2, part_names=("pre", "post"))
        self.null_class = cfg.class_num  # the class table's last row

    def split(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) code indices -> (pre, post) sub-tokens, index = pre + 2^k1 * post."""
        return tokens % self.pre_vocab, tokens // self.pre_vocab

    def hidden_states(self, pre: torch.Tensor, post: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced forward -> (slot-0, slot-1) hidden states (B, L, D) each, before the final norm."""
        B, L = pre.shape
        dev = pre.device
        rope = self.rope(dev)  # (1+L, Dh/2) complex
        cls = self.class_emb(labels)  # (B, 1, D)
        tok = self.pre_emb(pre[:, :-1]) + self.post_emb(post[:, :-1])  # (B, L-1, D)
        h = torch.cat([cls.to(tok.dtype), tok], dim=1)  # (B, L, D)
        for blk in self.spatial_blocks:
            h = blk(h, rope[:L])
        # intra-token pair per position: [h_n, pre_emb(pre_n)] as a batch of B*L sequences of length 2
        pair = torch.stack([h, self.pre_emb(pre).to(h.dtype)], dim=2).reshape(B * L, 2, -1)  # (B*L, 2, D)
        for blk in self.factorized_blocks:
            pair = blk(pair, rope[:2])
        pair = pair.view(B, L, 2, -1)
        return pair[:, :, 0], pair[:, :, 1]

    @torch.inference_mode()
    def subtoken_nll(self, tokens: torch.Tensor, labels: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """(B, L) code indices, (B,) labels -> (B, L, 2) float32 nats: NLL(pre), NLL(post | pre)."""
        tokens = check_tokens(tokens, self.tokens_per_image, self.vocab_size)
        labels = check_labels(labels.to(tokens.device), self.num_classes, tokens.shape[0], self.null_class)
        pre, post = self.split(tokens)
        h0, h1 = self.hidden_states(pre, post, labels)
        B = tokens.shape[0]
        c0 = chunk or default_chunk(B, self.pre_vocab)
        c1 = chunk or default_chunk(B, self.post_vocab)
        n0 = chunked_nll(h0, self.head[0], pre, c0, pre=self.norm)
        n1 = chunked_nll(h1, self.head[1], post, c1, pre=self.norm)
        return torch.stack([n0, n1], dim=-1)

    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """(B, L) code indices -> (B, L) float32 nats per image token = NLL(pre) + NLL(post)."""
        return self.subtoken_nll(tokens, labels, chunk).sum(-1)

    @torch.inference_mode()
    def logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full float32 logits (B, L, 2^k1), (B, L, 2^k2); for tests and inspection of small inputs."""
        tokens = check_tokens(tokens, self.tokens_per_image, self.vocab_size)
        labels = check_labels(labels.to(tokens.device), self.num_classes, tokens.shape[0], self.null_class)
        h0, h1 = self.hidden_states(*self.split(tokens), labels)
        return self.head[0](self.norm(h0)).float(), self.head[1](self.norm(h1)).float()
