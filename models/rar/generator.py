"""The RAR generator: a class-conditional AdaLN transformer scored in raster order.

Sequence for tokens t_0..t_{L-1} and condition id c = label + K + 1:
  pos 0: cls_token + pos_embed[0]
  pos 1: E[c] + pos_embed[1] + TA[2]
  pos 2+j: E[t_j] + pos_embed[2+j] + TA[3+j] (j < L-1), the last token without TA
(E = ``embeddings``, TA = ``target_aware_pos_embed``). Every block is modulated per position by
c_k = E[c] + timesteps_embeddings[k]. Outputs 1..L (after the final AdaLN and ``lm_head``)
predict t_0..t_{L-1}. Attribute names equal the keys of ``rar_{b,l,xl,xxl}.bin``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from visbpp.core.errors import DataError
from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import check_label_range
from visbpp.core.nll import auto_chunked_nll, chunked_nll

from ..vit_blocks import Attention, Mlp
from .config import RARConfig


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class Block(nn.Module):
    """AdaLN block: chunks (shift, scale, gate) x (attention, MLP) of ``adaLN_modulation`` (SiLU, Linear)."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, qk_norm=True, causal=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = self.adaLN_modulation(c).chunk(6, dim=-1)  # each (B, T, D)
        x = x + g_a * self.attn(modulate(self.norm1(x), sh_a, sc_a))
        return x + g_m * self.mlp(modulate(self.norm2(x), sh_m, sc_m))


class FinalAdaLN(nn.Module):
    """LayerNorm without affine, then x * (1 + scale) + shift with chunks in the order (scale, shift)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.adaLN_modulation(c).chunk(2, dim=-1)
        return modulate(self.norm_final(x), shift, scale)


class RAR(nn.Module):
    """:class:`~visbpp.core.interfaces.ARModel`: teacher-forced raster-order scoring, no KV cache."""

    family = "rar"

    def __init__(self, cfg: RARConfig):
        super().__init__()
        self.cfg = cfg
        D, L = cfg.hidden_size, cfg.image_seq_len
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.embeddings = nn.Embedding(cfg.embedding_rows, D)
        self.pos_embed = nn.Parameter(torch.zeros(1, L + 1024, D))
        self.target_aware_pos_embed = nn.Parameter(torch.zeros(1, L + 1024, D))
        self.timesteps_embeddings = nn.Parameter(torch.zeros(1, L + 100, D))
        self.blocks = nn.ModuleList(
            [Block(D, cfg.num_attention_heads, cfg.mlp_hidden) for _ in range(cfg.num_hidden_layers)])
        self.adaln_before_head = FinalAdaLN(D)
        self.lm_head = nn.Linear(D, cfg.codebook_size)
        self.tokens_per_image = L
        self.vocab_size = cfg.codebook_size
        self.num_classes = cfg.condition_num_classes
        # the row after the classes (id C + K + 1) is the null class of label dropout / CFG
        self.null_class = cfg.condition_num_classes if cfg.class_label_dropout > 0 else None
        g = math.isqrt(L)
        self.token_layout = TokenLayout("raster", (g, g) if g * g == L else (1, L))

    def condition_ids(self, labels: torch.Tensor) -> torch.Tensor:
        """Class labels 0..C-1 -> embedding rows label + K + 1 (K codes, then the mask token)."""
        if labels.dim() != 1:
            raise DataError(f"labels must be a 1-D tensor of class indices, got shape {tuple(labels.shape)}")
        check_label_range(labels, self.num_classes, self.null_class)
        return labels.long() + self.cfg.codebook_size + 1

    def hidden(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """tokens (B, L), labels (B,) -> head inputs (B, L, D); row j predicts tokens[:, j]."""
        B, L = tokens.shape
        if L != self.tokens_per_image:
            raise DataError(f"expected {self.tokens_per_image} tokens per image, got {L}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise DataError(f"tokens must lie in [0, {self.vocab_size}), got min {int(tokens.min())} max "
                            f"{int(tokens.max())}")
        cond = self.condition_ids(labels.to(tokens.device))
        ce = self.embeddings(cond).unsqueeze(1)  # (B, 1, D)
        x = torch.cat([self.cls_token.expand(B, -1, -1), ce, self.embeddings(tokens)], 1)  # (B, L+2, D)
        x = x + self.pos_embed[:, :L + 2]
        ta = self.target_aware_pos_embed[:, 2:L + 2]  # targets of positions 1..L; the last token gets none
        x = torch.cat([x[:, :1], x[:, 1:L + 1] + ta, x[:, L + 1:]], 1)
        c = ce + self.timesteps_embeddings[:, :L + 2]  # (B, L+2, D)
        for block in self.blocks:
            x = block(x, c)
        return self.adaln_before_head(x[:, 1:L + 1], c[:, 1:L + 1])  # (B, L, D)

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, K) of the L scored rows (for tests; scoring never holds them all in fp32)."""
        return self.lm_head(self.hidden(tokens, labels))

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        h = self.hidden(tokens, labels)
        if chunk is not None:
            return chunked_nll(h, self.lm_head, tokens, chunk)
        return auto_chunked_nll(h, self.lm_head, tokens, self.vocab_size)
