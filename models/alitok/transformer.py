"""AliTok's AR model (``ARModel``) and its ORT variant, scored teacher-forced in the one raster order.

Sequence for tokens t_0..t_{L-1} (the P prefix tokens, then the grid) and class y: position 0 holds
the class id y + K + 1 (K codes, then the mask id; the null class is C + K + 1), position j+1 holds
t_j, all from the one ``embeddings`` table; the output at position j predicts t_j, so scoring feeds
[c, t_0..t_{L-2}]. No position is added to the stream: RoPE on q and k only, from a table of
1 + P + G^2 rows: row 0 (the class) all zeros, rows 1..P 1-D positions 0..P-1, then the G x G grid
with 2-D coordinates starting at ``rope_start`` (row half, then column half; interleaved pairs).
Blocks: pre-RMSNorm, ``qkv`` with bias, per-head RMSNorm ``q_norm``/``k_norm`` before RoPE, causal
attention, ``proj``; SwiGLU ``mlp``. Head: ``norm`` -> ``output`` (with bias).

ORT (HF donglixu/ORT) adds ``pos_embed`` and ``target_aware_pos_embed`` (L + 1024 rows each): in raster
order position p gets ``pos_embed[p]`` and, for p < L, ``target_aware_pos_embed[p + 1]`` (the slot of the
token it predicts). Attribute names equal the keys of ``alitok_{b,l,xl}.bin`` and of the ORT files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.interfaces import TokenLayout

from ..common import FeedForward, RMSNorm
from ..llama import Rope2D, apply_rope, rope_2d_table
from ..llamagen.gpt import C2IScorer
from .config import ARConfig

ORT_EXTRA_ROWS = 1024  # ORT's position tables have image_seq_len + 1024 rows (upstream constructor)


def rope_table(cfg: ARConfig) -> torch.Tensor:
    """(1 + P + G^2, head_dim/2, 2) float32 (cos, sin): zero class row, 1-D prefix rows, 2-D grid rows."""
    hd, P, G, s = cfg.head_dim, cfg.rope_prefix, cfg.rope_grid, cfg.rope_start
    freqs = 1.0 / (cfg.rope_base ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))  # (hd/2,)
    ang = torch.outer(torch.arange(P, dtype=torch.float32), freqs)
    prefix = torch.stack([torch.cos(ang), torch.sin(ang)], dim=-1)  # (P, hd/2, 2)
    # the shared 2-D table of a (s + G)-grid, cut to the cells whose coordinates start at s
    full = rope_2d_table(s + G, hd, cfg.rope_base, n_cls=0).view(s + G, s + G, hd // 2, 2)
    grid = full[s:, s:].reshape(G * G, hd // 2, 2)
    return torch.cat([torch.zeros(1, hd // 2, 2), prefix, grid])


class PrefixRope(Rope2D):
    """:func:`rope_table` as a complex table, cached per (device, dtype) (``Rope2D``'s cache)."""

    def __init__(self, cfg: ARConfig):
        super().__init__(cfg.rope_grid, cfg.head_dim, cfg.rope_base)
        self.cfg = cfg

    def real(self) -> torch.Tensor:
        return rope_table(self.cfg)


class Attention(nn.Module):
    """``qkv`` (split (3, heads, head_dim)), ``q_norm``/``k_norm`` RMSNorm per head, RoPE, causal SDPA, ``proj``."""

    def __init__(self, dim: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = RMSNorm(dim // heads, eps)
        self.k_norm = RMSNorm(dim // heads, eps)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).unbind(2)  # each (B, T, H, hd)
        q, k = apply_rope(self.q_norm(q), rope), apply_rope(self.k_norm(k), rope)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """x + attn(norm1 x); x + mlp(norm2 x)."""

    def __init__(self, cfg: ARConfig):
        super().__init__()
        D = cfg.hidden_size
        self.norm1 = RMSNorm(D, cfg.norm_eps)
        self.attn = Attention(D, cfg.num_attention_heads, cfg.norm_eps)
        self.norm2 = RMSNorm(D, cfg.norm_eps)
        self.mlp = FeedForward(D, cfg.ffn_hidden)

    def forward(self, x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class AliTokAR(C2IScorer):
    """AliTok's ``ARModel`` (implements ``visbpp.core.interfaces.ARModel``; input checks, ``forward``
    (logits rows 0..L-1) and ``token_nll`` from :class:`~visbpp.models.llamagen.gpt.C2IScorer`)."""

    family = "alitok"
    length_note = "this model's image_seq_len"

    def __init__(self, cfg: ARConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden_size
        self.embeddings = nn.Embedding(cfg.embedding_rows, D)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(D, cfg.norm_eps)
        self.output = nn.Linear(D, cfg.codebook_size)
        self.tokens_per_image = cfg.image_seq_len
        self.vocab_size = cfg.codebook_size
        self.num_classes = cfg.condition_num_classes
        self.null_class = cfg.condition_num_classes if cfg.class_label_dropout > 0 else None
        self.token_layout = TokenLayout("sequence", (1, cfg.image_seq_len))  # P prefix tokens, then the grid
        self.rope = PrefixRope(cfg)  # not a module: no state-dict keys

    def condition_ids(self, labels: torch.Tensor) -> torch.Tensor:
        """Labels 0..C-1 (C: the null class) -> embedding rows label + K + 1."""
        return labels.long() + self.cfg.codebook_size + 1

    def add_positions(self, x: torch.Tensor) -> torch.Tensor:
        """The stream's input (B, T, D) with its position terms: none (positions enter through RoPE)."""
        return x

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, T) tokens, (B,) labels -> (B, T, D) final-normed states of [c, t_0..t_{T-2}]; row j predicts
        tokens[:, j]. T may be L + 1 (rows 0..L: the last one, after t_{L-1}, predicts nothing)."""
        T = tokens.shape[1]
        ids = torch.cat([self.condition_ids(labels)[:, None], tokens[:, : T - 1].long()], dim=1)
        x = self.add_positions(self.embeddings(ids))
        rope = self.rope(x.device)[:T]
        for block in self.blocks:
            x = block(x, rope)
        return self.norm(x)


class ORTAR(AliTokAR):
    """The ORT variant: AliTok's model plus learned absolute and target-aware position tables (raster order)."""

    def __init__(self, cfg: ARConfig):
        super().__init__(cfg)
        rows = cfg.image_seq_len + ORT_EXTRA_ROWS
        self.pos_embed = nn.Parameter(torch.zeros(1, rows, cfg.hidden_size))
        self.target_aware_pos_embed = nn.Parameter(torch.zeros(1, rows, cfg.hidden_size))

    def add_positions(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        n = min(T, self.tokens_per_image)  # position L (after the last token) predicts no slot
        x = x + self.pos_embed[:, :T]
        return torch.cat([x[:, :n] + self.target_aware_pos_embed[:, 1:n + 1], x[:, n:]], dim=1)
