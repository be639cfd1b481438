"""RandAR generator: LlamaGen's class-conditional GPT with position-instruction tokens, scored in any order.

For tokens t (raster), label y and an order sigma (sigma(i) = raster cell of the i-th scored token)
the sequence is [class y, I(sigma(0)), t_sigma(0), I(sigma(1)), t_sigma(1), ..., I(sigma(L-1))]
(2L positions; the last token's output would predict nothing). I(k) is the one learned vector
``pos_instruct_embeddings`` rotated per head with the 2-D RoPE row of raster cell k; both I(sigma(i))
and t_sigma(i) carry that row, the class row 0 (all zero). Causal attention over the whole sequence;
the outputs at the instruction positions 1, 3, ..., 2L-1 give the logits: row i predicts t_sigma(i).
The class id is the raw label (null class C), as in LlamaGen. The blocks, norms, embeddings and
head are LlamaGen's (``models/llamagen/gpt.py``, ``models/llama.py``); attribute names equal the keys.
"""

from __future__ import annotations

import torch
from torch import nn

from visbpp.core.layout import RASTER_ORDER, Order, order_layout
from visbpp.core.nll import chunked_nll, default_chunk

from ..llama import Rope2D, apply_rope
from ..llamagen.gpt import C2IScorer, GPTConfig, TransformerBlock
from ..orders import OrderScoring, check_permutation


class RandAR(OrderScoring, C2IScorer):
    """RandAR generator (implements ``visbpp.core.interfaces.ARModel``), scored in ``order``."""

    family = "randar"
    length_note = "this model's block_size: RandAR scores whole images"

    def __init__(self, cfg: GPTConfig, order: Order = RASTER_ORDER):
        super().__init__()
        cfg.validate()
        self.order = order
        self.pos_instruct_embeddings = nn.Parameter(torch.zeros(1, cfg.dim))
        self._init_trunk(cfg, lambda: TransformerBlock(cfg))
        self.rope = Rope2D(cfg.grid, cfg.head_dim, cfg.rope_base, cfg.cls_token_num)
        self.token_layout = order_layout((cfg.grid, cfg.grid), order)

    def freqs_cis(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The (1 + block_size, head_dim/2, 2) (cos, sin) RoPE table: row 0 the class, row 1+k raster cell k."""
        return torch.view_as_real(self.rope(device))

    def instruction_tokens(self, perm: torch.Tensor) -> torch.Tensor:
        """(B, L) raster cells -> (B, L, dim) position-instruction tokens I(perm[b, i])."""
        B, L = perm.shape
        H, d = self.cfg.n_head, self.cfg.head_dim
        p = self.pos_instruct_embeddings.view(1, 1, H, d).expand(B, L, H, d)
        return apply_rope(p, self.rope(perm.device)[1 + perm]).reshape(B, L, H * d)

    def hidden_states(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) tokens, labels, orders perm (None: raster) -> (B, L, dim) final-normed states at the
        instruction positions; row i predicts tokens[b, perm[b, i]]."""
        B, L = tokens.shape
        if perm is None:
            perm = torch.arange(L, device=tokens.device).expand(B, L)
        table = self.rope(tokens.device)                                    # (1 + L, d/2) complex
        cells = table[1 + perm]                                             # (B, L, d/2)
        x = torch.empty(B, 2 * L, self.cfg.dim, dtype=self.tok_embeddings.weight.dtype, device=tokens.device)
        x[:, :1] = self.cls_embedding(labels)
        x[:, 1::2] = self.instruction_tokens(perm)
        x[:, 2::2] = self.tok_embeddings(tokens.gather(1, perm[:, : L - 1]))
        rope = torch.cat([table[:1].expand(B, 1, -1), cells.repeat_interleave(2, dim=1)[:, : 2 * L - 1]], dim=1)
        for layer in self.layers:
            x = layer(x, rope)
        return self.norm(x[:, 1::2])

    def _check_order(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> None:
        self._check(tokens, labels)
        if tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"tokens must have {self.tokens_per_image} positions ({self.length_note}), got {tokens.shape[1]}")
        check_permutation(perm, tuple(tokens.shape))

    def logits(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """(B, L, vocab) float32; row i is the distribution of tokens[b, perm[b, i]]."""
        self._check_order(tokens, labels, perm)
        return self.output(self.hidden_states(tokens.long(), labels.long(), perm.long())).float()

    @torch.inference_mode()
    def scored_nll(self, tokens: torch.Tensor, labels: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """(B, L) float32 nats in scoring order: column i = -ln p(tokens[b, perm[b, i]] | class, earlier ones)."""
        self._check_order(tokens, labels, perm)
        tokens, labels, perm = tokens.long(), labels.long(), perm.long()
        h = self.hidden_states(tokens, labels, perm)
        return chunked_nll(h, self.output, tokens.gather(1, perm), default_chunk(tokens.shape[0], self.vocab_size))
