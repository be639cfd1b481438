"""LlamaGen class-conditional GPT ("c2i"): Llama-style decoder with 2-D rotary embeddings.

Teacher-forced sequence for tokens t_0..t_{L-1} and class y: position 0 holds the class
embedding, positions 1..L-1 the token embeddings of t_0..t_{L-2}; the output at
position j predicts t_j. Attribute names equal the official state-dict keys
(``cls_embedding.embedding_table``, ``tok_embeddings``, ``layers.i.attention.wqkv``...).
The module has no buffers: the RoPE table is computed per device on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.interfaces import TokenLayout
from visbpp.core.nll import chunked_nll, default_chunk

from ..common import FeedForward, RMSNorm, swiglu_hidden


@dataclass(frozen=True)
class GPTConfig:
    dim: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int | None = None   # None = n_head
    vocab_size: int = 16384
    num_classes: int = 1000
    class_dropout_prob: float = 0.1  # > 0 adds the null-class row (training only; never used for scoring)
    cls_token_num: int = 1
    block_size: int = 256            # number of image tokens = grid side squared
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    rope_base: float = 10000
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def grid(self) -> int:
        return int(round(self.block_size**0.5))

    def validate(self) -> None:
        if self.dim % self.n_head:
            raise ValueError(f"dim {self.dim} is not divisible by n_head {self.n_head}")
        if self.head_dim % 4:
            raise ValueError(f"2-D RoPE needs head_dim divisible by 4, got {self.head_dim}")
        if self.n_head % self.kv_heads:
            raise ValueError(f"n_head {self.n_head} is not a multiple of n_kv_head {self.kv_heads}")
        if self.grid * self.grid != self.block_size:
            raise ValueError(f"block_size {self.block_size} is not a square number of tokens (grid side^2)")
        if self.cls_token_num != 1:
            raise ValueError(f"class-conditional models use cls_token_num 1, got {self.cls_token_num}")


# --------------------------------------------------------------------------- rotary embedding


def precompute_freqs_cis_2d(grid: int, head_dim: int, base: float = 10000, cls_token_num: int = 1) -> torch.Tensor:
    """(cls_token_num + grid^2, head_dim/2, 2) table of (cos, sin), class rows all zero.

    Image token k has row r = k // grid and column c = k % grid; its head_dim/2 angles are
    [r w_0 .. r w_{m-1}, c w_0 .. c w_{m-1}] with w_i = base^(-2i / (head_dim/2)), m = head_dim/4.
    """
    half = head_dim // 2
    freqs = 1.0 / (base ** (torch.arange(0, half, 2)[: half // 2].float() / half))  # (m,)
    pos = torch.arange(grid, dtype=torch.float32)
    ang = torch.outer(pos, freqs)  # (grid, m)
    grid_ang = torch.cat(
        [ang[:, None, :].expand(grid, grid, -1), ang[None, :, :].expand(grid, grid, -1)], dim=-1
    )  # (grid rows, grid cols, 2m): row angles then column angles
    table = torch.stack([torch.cos(grid_ang), torch.sin(grid_ang)], dim=-1).flatten(0, 1)  # (grid^2, half, 2)
    return torch.cat([torch.zeros(cls_token_num, half, 2), table])


def apply_rotary_emb(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """x (B, S, H, D), freqs (S, D/2, 2): rotate interleaved pairs (2p, 2p+1) in float32."""
    xp = x.float().reshape(*x.shape[:-1], -1, 2)  # (B, S, H, D/2, 2)
    f = freqs.view(1, xp.shape[1], 1, xp.shape[3], 2)
    a, b = xp[..., 0], xp[..., 1]
    cos, sin = f[..., 0], f[..., 1]
    out = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1)  # (B, S, H, D/2, 2)
    return out.flatten(3).type_as(x)


# --------------------------------------------------------------------------- blocks


class Attention(nn.Module):
    """Fused ``wqkv`` (q | k | v), 2-D RoPE on q and k, causal SDPA, ``wo``. No biases."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.dim, (cfg.n_head + 2 * cfg.kv_heads) * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_head * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        q_size, kv_size = self.n_head * self.head_dim, self.n_kv * self.head_dim
        q, k, v = self.wqkv(x).split([q_size, kv_size, kv_size], dim=-1)
        q = apply_rotary_emb(q.view(B, S, self.n_head, self.head_dim), freqs)
        k = apply_rotary_emb(k.view(B, S, self.n_kv, self.head_dim), freqs)
        v = v.view(B, S, self.n_kv, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, S, head_dim)
        if self.n_kv != self.n_head:
            k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, n_head, S, head_dim)
        return self.wo(y.transpose(1, 2).reshape(B, S, q_size))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(attention_norm(x)), then h + feed_forward(ffn_norm(h))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg.dim, swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier))
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), freqs)
        return h + self.feed_forward(self.ffn_norm(h))


class LabelEmbedder(nn.Module):
    """Class table ``embedding_table`` (num_classes [+1 null row], dim). No label dropout here."""

    def __init__(self, num_classes: int, dim: int, with_null: bool):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + int(with_null), dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels).unsqueeze(1)  # (B, 1, dim)


# --------------------------------------------------------------------------- model


class GPT(nn.Module):
    """LlamaGen c2i transformer (implements ``visbpp.core.interfaces.ARModel``)."""

    family = "llamagen"

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.tokens_per_image = cfg.block_size
        self.vocab_size = cfg.vocab_size
        self.num_classes = cfg.num_classes
        self.cls_embedding = LabelEmbedder(cfg.num_classes, cfg.dim, cfg.class_dropout_prob > 0)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self._rope: dict[torch.device, torch.Tensor] = {}
        self.token_layout = TokenLayout("raster", (cfg.grid, cfg.grid))
        self.null_class = cfg.num_classes if cfg.class_dropout_prob > 0 else None  # the null row exists

    def freqs_cis(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The RoPE table for this model's grid on ``device`` (cached per device)."""
        device = torch.device(device)
        if device not in self._rope:
            c = self.cfg
            self._rope[device] = precompute_freqs_cis_2d(c.grid, c.head_dim, c.rope_base, c.cls_token_num).to(device)
        return self._rope[device]

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
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes + (self.null_class is not None):
            raise ValueError(
                f"class labels must lie in [0, {self.num_classes}) (or be the null class when the model has one); "
                f"got {int(labels.min())}..{int(labels.max())}"
            )

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L, dim) final-normed states; row j predicts tokens[:, j]."""
        L = tokens.shape[1]
        x = torch.cat([self.cls_embedding(labels), self.tok_embeddings(tokens[:, : L - 1])], dim=1)  # (B, L, dim)
        freqs = self.freqs_cis(x.device)[:L]
        for layer in self.layers:
            x = layer(x, freqs)
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
