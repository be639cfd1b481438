"""FlexVAR next-scale transformer scored teacher-forced (implements ``ARModel``).

VAR's AdaLN blocks and head (``models/var/transformer.py``), with other inputs: position 0 is
class embedding + ``pos_start``; the positions of scale s >= 1 get ``word_embed`` of the
tokenizer's teacher input (scale s-1's normalised code vectors, bicubic-upsampled). Every
position adds the learned grid ``pos_1LC`` (1, C, g, g) area-resized to its scale's side; there
is no level embedding. Attention is block-causal over the schedule; logits row i predicts token i
(no shift). Attribute names equal the keys of ``FlexVARd*-epo*.pth`` except the stored
``attn_bias_for_masking`` (whatever mask training left; the loader drops it, as the official
loader replaces it).

Attention takes the whole block-causal mask in one call, as the official forward does: VAR's
scale-by-scale attention (same maths, other summation order) moved the fixture's NLLs by up to
1.3e-5 nats, its attention being sharp (q scaled by up to 100).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import check_label_range
from visbpp.core.nll import chunked_nll, default_chunk

from ..var.transformer import AdaLNBeforeHead, AdaLNSelfAttn, block_causal_bias
from .official import DEFAULT_SCHEDULE


@dataclass(frozen=True)
class FlexVARConfig:
    """The FlexVAR arguments a forward uses (upstream names; AdaLNSelfAttn reads the block fields),
    the tokenizer's V and Cvae, and the scale schedule."""

    num_classes: int = 1000
    depth: int = 16
    embed_dim: int = 1024
    num_heads: int = 16
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    attn_l2_norm: bool = True
    pos_grid: int = 32               # side of the learned position grid (32 upstream)
    vocab_size: int = 8912
    Cvae: int = 32
    scale_schedule: tuple[int, ...] = DEFAULT_SCHEDULE
    shared_aln: bool = False         # the only layout of the released files (blocks own ada_lin)

    @property
    def L(self) -> int:
        return sum(p * p for p in self.scale_schedule)


class FlexVAR(nn.Module):
    """FlexVAR transformer. Needs its tokenizer (codebook) to build the teacher-forcing input."""

    family = "flexvar"

    def __init__(self, cfg: FlexVARConfig, tokenizer=None):
        super().__init__()
        self.config = cfg
        C = cfg.embed_dim
        self.C, self.V = C, cfg.vocab_size
        self.num_classes = cfg.num_classes
        self.tokens_per_image, self.vocab_size = cfg.L, cfg.vocab_size
        self.schedule = tuple(cfg.scale_schedule)
        self.token_layout = TokenLayout("scales", scales=self.schedule)
        self.null_class = cfg.num_classes
        self.nll_chunk: int | None = None  # positions per NLL chunk; None = from the batch size and V
        self._tokenizer = (tokenizer,)  # not a submodule: its weights are not part of this state dict
        self._masks: dict[torch.device, torch.Tensor] = {}  # block-causal mask of the schedule, per device

        self.word_embed = nn.Linear(cfg.Cvae, C)
        self.class_emb = nn.Embedding(cfg.num_classes + 1, C)  # row num_classes = null class
        self.pos_start = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_1LC = nn.Parameter(torch.zeros(1, C, cfg.pos_grid, cfg.pos_grid))
        self.blocks = nn.ModuleList([AdaLNSelfAttn(cfg) for _ in range(cfg.depth)])
        self.head_nm = AdaLNBeforeHead(C, cfg.norm_eps)
        self.head = nn.Linear(C, cfg.vocab_size)
        self.eval()

    @property
    def tokenizer(self):
        return self._tokenizer[0]

    def attach_tokenizer(self, tokenizer) -> None:
        for name, want, got in (("code dimension", self.config.Cvae, tokenizer.Cvae),
                                ("codebook size", self.V, tokenizer.vocab_size),
                                ("scale_schedule", self.schedule, tuple(tokenizer.schedule))):
            if want != got:
                raise ValueError(f"FlexVAR tokenizer/transformer mismatch: {name} {got} (tokenizer) vs {want} (transformer)")
        self._tokenizer = (tokenizer,)

    def positions(self) -> torch.Tensor:
        """(L, C): the position grid area-resized to each scale, row-major, scales concatenated."""
        grid = self.pos_1LC.float()
        return torch.cat([F.interpolate(grid, size=(p, p), mode="area").flatten(2)[0].t() for p in self.schedule])

    def hidden(self, labels: torch.Tensor, x_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """labels (B,), teacher input (B, L - 1, Cvae) -> final hidden (B, L, C), class embedding (B, C)."""
        with torch.autocast(device_type=x_in.device.type, enabled=False):
            cond = self.class_emb(labels)  # (B, C)
            sos = (cond + self.pos_start[0]).unsqueeze(1)  # (B, 1, C)
            x = torch.cat((sos, self.word_embed(x_in.float())), dim=1) + self.positions()  # (B, L, C)
        mask = self._mask(x.device)
        for block in self.blocks:
            x = block(x, cond, mask)
        return x, cond

    def _mask(self, device: torch.device) -> torch.Tensor:
        """(1, 1, L, L) additive mask: position i sees j iff scale(j) <= scale(i)."""
        if device not in self._masks:
            self._masks[device] = block_causal_bias(self.schedule).to(device)
        return self._masks[device]

    def _check_inputs(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        if self.tokenizer is None:
            raise RuntimeError("this FlexVAR model has no tokenizer attached; load it with "
                               "load_transformer(path, config, tokenizer) or call attach_tokenizer()")
        if labels.dim() != 1 or labels.shape[0] != tokens.shape[0]:
            raise ValueError(f"labels must be (B,) = ({tokens.shape[0]},), got {tuple(labels.shape)}")
        check_label_range(labels, self.num_classes, self.null_class)

    @torch.inference_mode()
    def logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Full (B, L, V) float32 logits (debugging; scoring uses :meth:`token_nll`)."""
        self._check_inputs(tokens, labels)
        h, cond = self.hidden(labels, self.tokenizer.teacher_input(tokens))
        return self.head(self.head_nm(h.float(), cond)).float()

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L) float32 nats; every position scored, no shift, no label dropout."""
        self._check_inputs(tokens, labels)
        h, cond = self.hidden(labels, self.tokenizer.teacher_input(tokens))
        chunk = self.nll_chunk or default_chunk(tokens.shape[0], self.V)
        return chunked_nll(h, self.head, tokens, chunk, pre=lambda hc: self.head_nm(hc.float(), cond))
