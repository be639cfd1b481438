"""ARPG generator: a two-pass "decoder-decoder" over LlamaGen's tokens, scored in any order.

Pass 1 (self decoder, ``layers.self_dec.i``): causal pre-norm blocks over the inputs
X = [class, t_sigma(0), ..., t_sigma(L-2)] with the 2-D RoPE rows of the input positions (row 0,
all zero, for the class). Shared keys/values: ``layers.norm`` then ``layers.to_k`` (rotated with
the same rows) and ``layers.to_v``. Pass 2 (cross decoder, ``layers.cross_dec.i``): L queries, each
the mask-token embedding E[V] rotated with the RoPE row of its *target* sigma(j), attend causally
to the keys 0..j (the class and t_sigma(0..j-1)); never to each other. ``norm``, ``head``: row j
predicts t_sigma(j). Both attentions are causal: upstream masks only in training mode (the trap
of the spec); scoring here never drops labels or draws an order.

One embedding table (``embeddings``, V + C + 3 rows): codes 0..V-1, the mask token V, class y at
V + 1 + y, the null class at V + C + 1 (label index C), an unused row V + C + 2. Attribute names
equal the checkpoint keys; no biases, no buffers (the RoPE table is cached per device).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.labels import check_label_range
from visbpp.core.layout import RASTER_ORDER, Order, order_layout
from visbpp.core.nll import chunked_nll, default_chunk

from ..common import FeedForward, RMSNorm, swiglu_hidden
from ..llama import Rope2D, apply_rope
from ..llamagen.tokenizer import check_token_values
from ..orders import OrderScoring, check_permutation


@dataclass(frozen=True)
class ARPGConfig:
    """``ModelArgs`` of ``models/arpg.py`` that shape the modules (upstream names)."""

    dim: int = 1024
    n_layer: int = 24            # n_layer // 2 self-decoder blocks, then as many cross-decoder blocks
    n_head: int = 16
    vocab_size: int = 16384
    num_classes: int = 1000
    block_size: int = 256        # tokens per image (a square grid)
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    rope_base: float = 10000
    norm_eps: float = 1e-5
    cls_token_num: int = 1

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def grid(self) -> int:
        return int(round(self.block_size ** 0.5))

    @property
    def embedding_rows(self) -> int:  # codes, mask token, classes, null class, unused drop token
        return self.vocab_size + 1 + self.num_classes + 1 + 1

    def validate(self) -> None:
        if self.dim % self.n_head or self.head_dim % 4:
            raise ValueError(f"dim {self.dim} / n_head {self.n_head} must give a head_dim divisible by 4 (2-D RoPE)")
        if self.n_layer % 2:
            raise ValueError(f"n_layer {self.n_layer} must be even (n_layer/2 self- and cross-decoder blocks)")
        if self.grid ** 2 != self.block_size:
            raise ValueError(f"block_size {self.block_size} is not a square number of tokens")
        if self.cls_token_num != 1:
            raise ValueError(f"ARPG conditions on one class token (cls_token_num 1), got {self.cls_token_num}")


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, D) -> (B, T, H, D/H), contiguous features per head."""
    return x.view(*x.shape[:2], n_head, -1)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, T, H, d) queries over (B, H, T, d) keys/values, causal (query j sees keys 0..j) -> (B, T, H*d)."""
    y = F.scaled_dot_product_attention(q.transpose(1, 2), k, v, is_causal=True)  # (B, H, T, d)
    return y.transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.to_q = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.to_k = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.to_v = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        q = apply_rope(_heads(self.to_q(x), self.n_head), rope)
        k = apply_rope(_heads(self.to_k(x), self.n_head), rope).transpose(1, 2)
        v = _heads(self.to_v(x), self.n_head).transpose(1, 2)
        return self.proj(_attend(q, k, v))


class CrossAttention(nn.Module):
    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.to_q = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        return self.proj(_attend(apply_rope(_heads(self.to_q(q), self.n_head), rope), k, v))


class SelfDecoder(nn.Module):
    """x + attn(attn_norm(x)), then + ffn(ffn_norm(.))."""

    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.attn = SelfAttention(cfg)
        self.ffn = FeedForward(cfg.dim, swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier))
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        h = x + self.attn(self.attn_norm(x), rope)
        return h + self.ffn(self.ffn_norm(h))


class CrossDecoder(nn.Module):
    """q + attn(attn_norm(q), shared K/V), then + ffn(ffn_norm(.))."""

    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.attn = CrossAttention(cfg)
        self.ffn = FeedForward(cfg.dim, swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier))
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        h = q + self.attn(self.attn_norm(q), k, v, rope)
        return h + self.ffn(self.ffn_norm(h))


class DecoderDecoder(nn.Module):
    """``self_dec``, then the shared ``norm`` / ``to_k`` / ``to_v``, then ``cross_dec``."""

    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.self_dec = nn.ModuleList(SelfDecoder(cfg) for _ in range(cfg.n_layer // 2))
        self.cross_dec = nn.ModuleList(CrossDecoder(cfg) for _ in range(cfg.n_layer // 2))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.to_k = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.to_v = nn.Linear(cfg.dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, q: torch.Tensor, rope_x: torch.Tensor, rope_q: torch.Tensor) -> torch.Tensor:
        """inputs x (B, L, D) with rows ``rope_x``, queries q (B, L, D) with target rows ``rope_q`` -> (B, L, D)."""
        for layer in self.self_dec:
            x = layer(x, rope_x)
        xn = self.norm(x)
        k = apply_rope(_heads(self.to_k(xn), self.n_head), rope_x).transpose(1, 2)  # (B, H, L, d)
        v = _heads(self.to_v(xn), self.n_head).transpose(1, 2)
        for layer in self.cross_dec:
            q = layer(q, k, v, rope_q)
        return q


class ARPG(OrderScoring, nn.Module):
    """ARPG generator (implements ``visbpp.core.interfaces.ARModel``), scored in ``order``."""

    family = "arpg"

    def __init__(self, cfg: ARPGConfig, order: Order = RASTER_ORDER):
        super().__init__()
        cfg.validate()
        self.cfg, self.order = cfg, order
        self.tokens_per_image, self.vocab_size, self.num_classes = cfg.block_size, cfg.vocab_size, cfg.num_classes
        self.null_class = cfg.num_classes   # label index of the null row V + C + 1 (CFG; never scored as a label)
        self.embeddings = nn.Embedding(cfg.embedding_rows, cfg.dim)
        self.layers = DecoderDecoder(cfg)
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.rope = Rope2D(cfg.grid, cfg.head_dim, cfg.rope_base, cfg.cls_token_num)
        self.token_layout = order_layout((cfg.grid, cfg.grid), order)

    def freqs_cis(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The (1 + block_size, head_dim/2, 2) (cos, sin) RoPE table: row 0 the class, row 1+k raster cell k."""
        return torch.view_as_real(self.rope(device))

    def _check(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> None:
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32) or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"tokens must be an integer (B, {self.tokens_per_image}) tensor, got {tokens.dtype} "
                             f"{tuple(tokens.shape)}")
        if labels.shape != tokens.shape[:1]:
            raise ValueError(f"labels must have shape ({tokens.shape[0]},), got {tuple(labels.shape)}")
        check_token_values(tokens, self.vocab_size)
        check_label_range(labels, self.num_classes, self.null_class)
        check_permutation(perm, tuple(tokens.shape))

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, labels, orders perm -> (B, L, dim) final-normed states; row j predicts tokens[b, perm[b, j]]."""
        B, L = tokens.shape
        V = self.cfg.vocab_size
        scored = tokens.gather(1, perm)                                         # (B, L) in scoring order
        ids = torch.cat([(labels + V + 1)[:, None], scored[:, : L - 1]], dim=1)  # class id, then the inputs
        table = self.rope(tokens.device)                                         # (1 + L, d/2) complex
        rope_q = table[1 + perm]                                                 # target rows (B, L, d/2)
        rope_x = torch.cat([table[:1].expand(B, 1, -1), rope_q[:, : L - 1]], dim=1)
        queries = self.embeddings.weight[V].expand(B, L, -1)                     # the mask token, per query
        return self.norm(self.layers(self.embeddings(ids), queries, rope_x, rope_q))

    def logits(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """(B, L, vocab) float32; row j is the distribution of tokens[b, perm[b, j]]."""
        self._check(tokens, labels, perm)
        return self.head(self.hidden_states(tokens.long(), labels.long(), perm.long())).float()

    @torch.inference_mode()
    def scored_nll(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """(B, L) float32 nats in scoring order: column j = -ln p(tokens[b, perm[b, j]] | class, earlier ones)."""
        self._check(tokens, labels, perm)
        tokens, labels, perm = tokens.long(), labels.long(), perm.long()
        h = self.hidden_states(tokens, labels, perm)
        return chunked_nll(h, self.head, tokens.gather(1, perm), default_chunk(tokens.shape[0], self.vocab_size))
