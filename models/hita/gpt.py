"""Hita class-conditional GPT: LlamaGen's blocks with two token tables, two heads and split positions.

Sequence for tokens t = [q_0 .. q_{Nc-1}, z_0 .. z_{P-1}] and class y: position 0 holds the class
embedding, position p >= 1 the embedding of t_{p-1}; the output at position p predicts t_p.
- Inputs: positions 1..Nc-1 (q_0..q_{Nc-2}) use ``slot_embeddings``; from position Nc on
  (q_{Nc-1}, z_0, ...) ``tok_embeddings``. This is the sampler's convention (one flag
  ``position < Nc`` picks both table and head), behind every published FID. The training forward
  embeds q_{Nc-1} at position Nc with ``slot_embeddings`` instead (``trainpath=True``).
- Positions 0..Nc-1: row p of the learned ``slot_pos`` (viewed per head) is added to q and k,
  no RoPE. Positions p >= Nc: row p - Nc of the shared 2-D RoPE table (``models/llama.py``,
  :class:`Rope2D` with one class row: row 0 = zero rotation), applied by the shared ``apply_rope``.
- ``output`` is one Linear dim -> 2V: columns 0..V-1 predict holistic codes (positions < Nc),
  columns V..2V-1 patch codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.errors import ConfigError
from visbpp.core.interfaces import TokenLayout
from visbpp.core.nll import chunked_nll, default_chunk

from ..common import RMSNorm, swiglu_hidden
from ..llama import Attention, Block, Rope2D, apply_rope
from ..llamagen.gpt import C2IScorer, GPTConfig, LabelEmbedder


@dataclass(frozen=True)
class HitaGPTConfig(GPTConfig):
    num_slots: int = 128   # holistic tokens Nc; block_size = number of patch tokens


class SlotAttention(Attention):
    """The shared Llama attention (``wqkv``, ``wo``, causal SDPA) with Hita's split positions: the
    learned ``slot_pos`` rows added to q and k on positions 0..n-1, the shared 2-D RoPE after."""

    def forward(self, x: torch.Tensor, positions: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """x (B, S, dim); positions = (slot_pos (n, dim) for positions 0..n-1, rope (S - n, hd/2) complex)."""
        slot_pos, rope = positions
        B, S, _ = x.shape
        n = slot_pos.shape[0]
        q_size, kv_size = self.n_head * self.head_dim, self.n_kv * self.head_dim
        q, k, v = self.wqkv(x).split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(B, S, self.n_head, self.head_dim)
        k = k.view(B, S, self.n_kv, self.head_dim)
        pos = slot_pos.view(1, n, -1, self.head_dim).to(q.dtype)  # head h gets features h*hd .. h*hd+hd-1
        q_parts, k_parts = [q[:, :n] + pos[:, :, : self.n_head]], [k[:, :n] + pos[:, :, : self.n_kv]]
        if S > n:
            q_parts.append(apply_rope(q[:, n:], rope))
            k_parts.append(apply_rope(k[:, n:], rope))
        q, k = torch.cat(q_parts, dim=1), torch.cat(k_parts, dim=1)
        v = v.view(B, S, self.n_kv, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, heads, S, hd)
        if self.n_kv != self.n_head:
            k = k.repeat_interleave(self.n_head // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(B, S, q_size))


class TransformerBlock(Block):
    """The shared pre-norm Llama block with :class:`SlotAttention`; ``forward(x, (slot_pos, rope))``."""

    def __init__(self, cfg: HitaGPTConfig):
        super().__init__(cfg.dim, cfg.n_head, swiglu_hidden(cfg.dim, cfg.multiple_of, cfg.ffn_dim_multiplier),
                         cfg.norm_eps, n_kv_head=cfg.kv_heads)
        self.attention = SlotAttention(cfg.dim, cfg.n_head, cfg.kv_heads)


class HitaGPT(C2IScorer):
    """Implements ``visbpp.core.interfaces.ARModel`` (``token_nll`` = the sampler's convention)."""

    family = "hita"

    def __init__(self, cfg: HitaGPTConfig):
        super().__init__()
        cfg.validate()
        if cfg.n_head % cfg.kv_heads or cfg.dim != cfg.n_head * cfg.head_dim:
            raise ConfigError(f"dim {cfg.dim} must equal n_head {cfg.n_head} x head_dim")
        self.cfg = cfg
        self.num_slots = cfg.num_slots
        self.tokens_per_image = cfg.num_slots + cfg.block_size
        self.vocab_size = cfg.vocab_size
        self.num_classes = cfg.num_classes
        self.cls_embedding = LabelEmbedder(cfg.num_classes, cfg.dim, cfg.class_dropout_prob > 0)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.slot_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, 2 * cfg.vocab_size, bias=False)
        self.slot_pos = nn.Embedding(cfg.num_slots, cfg.dim)
        self.rope = Rope2D(cfg.grid, cfg.head_dim, cfg.rope_base, 1)  # patch positions, cached per device/dtype
        # 128 holistic codes, then the patch raster: one flat sequence (a 1-row raster)
        self.token_layout = TokenLayout("raster", (1, self.tokens_per_image))
        self.null_class = cfg.num_classes if cfg.class_dropout_prob > 0 else None  # the null row exists

    def freqs_cis(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The (1 + block_size, hd/2, 2) (cos, sin) RoPE table (row 0 = zeros) on ``device`` (cached)."""
        return torch.view_as_real(self.rope(device))

    @property
    def length_note(self) -> str:
        return f"{self.num_slots} holistic + {self.cfg.block_size} patch tokens"

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor, trainpath: bool = False) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L, dim) final-normed states; row p predicts tokens[:, p]."""
        L = tokens.shape[1]
        nc = self.num_slots
        n_slot_inputs = nc if trainpath else nc - 1  # inputs at positions 1..n_slot_inputs use slot_embeddings
        prev = tokens[:, : L - 1]
        x = torch.cat([self.cls_embedding(labels), self.slot_embeddings(prev[:, :n_slot_inputs]),
                       self.tok_embeddings(prev[:, n_slot_inputs:])], dim=1)  # (B, L, dim)
        n = min(L, nc)
        slot_pos = self.slot_pos.weight[:n]
        positions = (slot_pos, self.rope(x.device)[: max(0, L - nc)])
        for layer in self.layers:
            x = layer(x, positions)
        return self.norm(x)

    def _head(self, half: int) -> tuple[torch.Tensor, None]:
        """(weight, bias) of the holistic (0) or patch (1) half of ``output``."""
        V = self.vocab_size
        return self.output.weight[half * V : (half + 1) * V], None

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor, trainpath: bool = False) -> torch.Tensor:
        """Teacher-forced float32 logits (B, L, V), the head picked per position (holistic / patch)."""
        self._check(tokens, labels)
        h = self.hidden_states(tokens.long(), labels.long(), trainpath)
        nc = self.num_slots
        return torch.cat([F.linear(h[:, :nc], *self._head(0)), F.linear(h[:, nc:], *self._head(1))], dim=1).float()

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor, chunk: int | None = None,
                  trainpath: bool = False) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L) float32 nats, one forward, chunked fp32 log-softmax."""
        self._check(tokens, labels)
        tokens, labels = tokens.long(), labels.long()
        h = self.hidden_states(tokens, labels, trainpath)
        nc = self.num_slots
        step = chunk or default_chunk(tokens.shape[0], self.vocab_size)
        holistic = chunked_nll(h[:, :nc], self._head(0), tokens[:, :nc], step)
        patch = chunked_nll(h[:, nc:], self._head(1), tokens[:, nc:], step)
        return torch.cat([holistic, patch], dim=1)
