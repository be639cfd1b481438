"""Taming class-conditional minGPT, scored teacher-forced.

Attribute names equal the official state-dict keys under ``transformer.*``: ``tok_emb``,
``pos_emb``, ``blocks.k.{ln1, ln2, attn.{key, query, value, proj, mask}, mlp.{0, 2}}``,
``ln_f``, ``head``.

Conditioning: the class id is looked up in the *same* ``tok_emb`` table as the image codes
(raw id, no offset) and sits at position 0. The GPT input for L image tokens is
``[label, t_0, ..., t_{L-2}]`` (L positions) and output i predicts ``t_i``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import check_label_range
from visbpp.core.nll import chunked_nll, default_chunk


@dataclass
class GPTConfig:
    vocab_size: int = 16384
    block_size: int = 256
    n_layer: int = 48
    n_head: int = 16
    n_embd: int = 1536
    n_unmasked: int = 0
    num_classes: int = 1000
    tokens_per_image: int = 256    # L image tokens scored per image (<= block_size)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "GPTConfig":
        """From the family config (``{"transformer": {...}, "net2net": {...}, "num_classes"}``)."""
        t = config["transformer"]
        n_classes = config.get("num_classes")
        if n_classes is None:
            n_classes = config["net2net"]["cond_stage_config"]["params"]["n_classes"]
        L = config.get("tokens_per_image")
        if L is None and "latent_hw" in config:
            L = config["latent_hw"][0] * config["latent_hw"][1]
        cfg = cls(vocab_size=int(t["vocab_size"]), block_size=int(t["block_size"]), n_layer=int(t["n_layer"]),
                  n_head=int(t["n_head"]), n_embd=int(t["n_embd"]), n_unmasked=int(t.get("n_unmasked", 0)),
                  num_classes=int(n_classes), tokens_per_image=int(L or t["block_size"]))
        if cfg.tokens_per_image > cfg.block_size:
            raise ValueError(f"taming GPT config: {cfg.tokens_per_image} tokens per image need block_size >= "
                             f"{cfg.tokens_per_image}, got {cfg.block_size}")
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"taming GPT config: n_embd={cfg.n_embd} is not divisible by n_head={cfg.n_head}")
        if cfg.num_classes > cfg.vocab_size:
            raise ValueError(f"taming GPT config: {cfg.num_classes} classes do not fit the {cfg.vocab_size}-entry "
                             "token table that the class ids index")
        return cfg


def structural_mask(block_size: int, n_unmasked: int = 0) -> torch.Tensor:
    """(1, 1, T, T) float: lower-triangular ones, the first ``n_unmasked`` positions fully visible."""
    m = torch.tril(torch.ones(block_size, block_size))
    if n_unmasked > 0:
        m[:n_unmasked, :n_unmasked] = 1.0
    return m.view(1, 1, block_size, block_size)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        E = cfg.n_embd
        self.key = nn.Linear(E, E)
        self.query = nn.Linear(E, E)
        self.value = nn.Linear(E, E)
        self.proj = nn.Linear(E, E)
        self.register_buffer("mask", structural_mask(cfg.block_size, cfg.n_unmasked))
        self.n_head = cfg.n_head
        self.n_unmasked = cfg.n_unmasked

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, E = x.shape
        hs = E // self.n_head
        q = self.query(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.key(x).view(B, T, self.n_head, hs).transpose(1, 2)    # (B, nh, T, hs)
        v = self.value(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if self.n_unmasked == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask[:, :, :T, :T] != 0)
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, E)
        return self.proj(y)


class Block(nn.Module):
    """Pre-LN: x + attn(ln1(x)), then x + mlp(ln2(x)); mlp = Linear, GELU, Linear, Dropout."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        E = cfg.n_embd
        self.ln1 = nn.LayerNorm(E)
        self.ln2 = nn.LayerNorm(E)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(E, 4 * E), nn.GELU(), nn.Linear(4 * E, E), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """minGPT body: token + learned position embeddings, blocks, ``ln_f``, bias-free ``head``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Parameter(torch.zeros(1, cfg.block_size, cfg.n_embd))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.block_size = cfg.block_size

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) int64 -> final hidden states (B, T, E) after ``ln_f``."""
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(f"taming GPT: sequence of {T} positions exceeds block_size {self.block_size}")
        x = self.tok_emb(idx) + self.pos_emb[:, :T, :]  # (B, T, E)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(idx))  # (B, T, V)


class ClassConditionalGPT(nn.Module):
    """The Net2NetTransformer's GPT (key prefix ``transformer.``) as an :class:`ARModel`."""

    family = "taming"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.transformer = GPT(cfg)
        self.tokens_per_image = cfg.tokens_per_image  # input [label, t_0..t_{L-2}]: L <= block_size positions
        self.vocab_size = cfg.vocab_size
        self.num_classes = cfg.num_classes
        self.nll_chunk: int | None = None  # sequence positions per logits chunk; None = from a memory budget
        g = int(cfg.tokens_per_image ** 0.5 + 0.5)
        self.token_layout = TokenLayout("raster", (g, g) if g * g == cfg.tokens_per_image else (1, cfg.tokens_per_image))
        self.null_class = None  # trained without label dropout: no null class

    def inputs(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L) GPT input [label, t_0, ..., t_{L-2}]."""
        return torch.cat([labels.view(-1, 1), tokens[:, :-1]], dim=1)

    def _check(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        if tokens.ndim != 2 or tokens.shape[1] < 1:
            raise ValueError(f"taming token_nll: tokens must be (B, L), got {tuple(tokens.shape)}")
        if tokens.shape[1] > self.cfg.block_size:
            raise ValueError(f"taming token_nll: {tokens.shape[1]} tokens per image, the model takes at most "
                             f"{self.cfg.block_size}")
        if labels.shape != (tokens.shape[0],):
            raise ValueError(f"taming token_nll: labels must be ({tokens.shape[0]},), got {tuple(labels.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"taming token_nll: token ids must lie in [0, {self.vocab_size})")
        check_label_range(labels, self.num_classes)

    @torch.inference_mode()
    def logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L, V) logits; row i predicts tokens[:, i] (for debugging and tests; scoring uses token_nll)."""
        self._check(tokens, labels)
        dev = self.transformer.pos_emb.device
        return self.transformer(self.inputs(tokens.to(dev).long(), labels.to(dev).long()))

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self._check(tokens, labels)
        dev = self.transformer.pos_emb.device
        tokens, labels = tokens.to(dev).long(), labels.to(dev).long()
        h = self.transformer.hidden(self.inputs(tokens, labels))  # (B, L, E)
        chunk = self.nll_chunk or default_chunk(tokens.shape[0], self.vocab_size)
        return chunked_nll(h, self.transformer.head, tokens, chunk)  # (B, L) float32 nats
