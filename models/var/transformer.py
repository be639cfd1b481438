"""VAR next-scale transformer scored teacher-forced (implements ``ARModel``).

Position i of the 680 (or L) token sequence belongs to scale(i). The input at the
positions of scale 0 is class embedding + ``pos_start``; at the positions of scale s >= 1
it is ``word_embed`` of the area-resized accumulated reconstruction of scales < s (from the
tokenizer's codebook and phi convolutions). Every position gets + ``lvl_embed[scale(i)]``
+ ``pos_1LC[i]``. Attention is block-wise causal (a position sees its own and coarser
scales), q/k are l2-normalised with a clamped per-head scale, blocks are AdaLN-modulated.
logits[:, i] predicts tokens[:, i] with no shift. Attribute names equal the keys of
``var_d*.pth``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import check_label_range
from visbpp.core.nll import chunked_nll, default_chunk

MAX_SCALE_MUL = math.log(100)  # clamp of the per-head logit scale (before exp)


@dataclass
class VARConfig:
    """Constructor arguments of the official VAR (same names) plus the tokenizer's V and Cvae."""

    num_classes: int = 1000
    depth: int = 16
    embed_dim: int = 1024
    num_heads: int = 16
    mlp_ratio: float = 4.0
    drop_rate: float = 0.0          # training only
    attn_drop_rate: float = 0.0     # training only
    drop_path_rate: float = 0.0     # training only
    norm_eps: float = 1e-6
    shared_aln: bool = False
    cond_drop_rate: float = 0.1     # the official label dropout; never applied when scoring
    attn_l2_norm: bool = False
    patch_nums: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    flash_if_available: bool = True  # kernel choice only, no effect on keys or values
    fused_if_available: bool = True
    vocab_size: int = 4096          # from the tokenizer (codebook size)
    Cvae: int = 32                  # from the tokenizer (code dimension)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any], vocab_size: int, Cvae: int) -> "VARConfig":
        names = {f.name for f in fields(cls)} - {"vocab_size", "Cvae"}
        unknown = sorted(set(m) - names)
        if unknown:
            raise ValueError(f"VAR transformer config: unknown key(s) {unknown}; expected a subset of {sorted(names)}")
        cfg = cls(**dict(m), vocab_size=int(vocab_size), Cvae=int(Cvae))
        cfg.patch_nums = tuple(int(p) for p in cfg.patch_nums)
        if cfg.embed_dim % cfg.num_heads:
            raise ValueError(f"VAR transformer config: embed_dim {cfg.embed_dim} is not divisible by num_heads {cfg.num_heads}")
        return cfg

    @property
    def L(self) -> int:
        return sum(p * p for p in self.patch_nums)


def scale_of_positions(patch_nums) -> torch.Tensor:
    """(1, L) int64: index of the scale each position belongs to (the ``lvl_1L`` buffer).

    Made on the CPU even under a meta default device: a meta ``full`` would import the compiler stack.
    """
    sizes = torch.tensor([p * p for p in patch_nums], device="cpu")
    return torch.repeat_interleave(torch.arange(len(patch_nums), device="cpu"), sizes).view(1, -1)


def block_causal_bias(patch_nums) -> torch.Tensor:
    """(1, 1, L, L) float additive mask: 0 where scale(key) <= scale(query), -inf elsewhere."""
    d = scale_of_positions(patch_nums).view(-1)  # (L,)
    return torch.where(d[:, None] >= d[None, :], 0.0, -torch.inf).view(1, 1, d.numel(), d.numel())


# --------------------------------------------------------------------------- blocks


class FFN(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # (B, L, hidden), fresh: the activation runs in place
        return self.fc2(torch.ops.aten.gelu_(h, approximate="tanh"))


class SelfAttention(nn.Module):
    """Fused qkv without bias (bias = [q_bias, zero_k_bias, v_bias]), l2-normalised q/k, ``proj``."""

    def __init__(self, dim: int, num_heads: int, l2_norm: bool):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.l2_norm = l2_norm
        if l2_norm:
            self.scale = 1.0
            self.scale_mul_1H11 = nn.Parameter(torch.full((1, num_heads, 1, 1), 4.0).log())
        else:
            self.scale = 0.25 / math.sqrt(self.head_dim)
        self.mat_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("zero_k_bias", torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | tuple[int, ...]) -> torch.Tensor:
        """x (B, L, C); attn_bias: the (1, 1, L, L) additive 0/-inf mask, or the end position of every
        scale (block-causal without a mask: the queries of a scale attend to the keys up to its end,
        which skips the masked-out 38% of the 680 x 680 scores of the official mask)."""
        B, L, C = x.shape
        qkv_bias = torch.cat((self.q_bias, self.zero_k_bias, self.v_bias))
        qkv = (self.mat_qkv(x) + qkv_bias).view(B, L, 3, self.num_heads, self.head_dim)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, H, L, hd)
        if self.l2_norm:
            # q and k normalised in one call (each row on its own: the same values as two calls)
            qk = F.normalize(qkv[:, :, :2], dim=-1).to(v.dtype)  # (B, L, 2, H, hd)
            q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, L, hd)
            q.mul_(self.scale_mul_1H11.clamp_max(MAX_SCALE_MUL).exp())  # in place: rounded once to q's dtype
        else:
            q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
        if isinstance(attn_bias, tuple):
            o = torch.empty(B, L, self.num_heads, self.head_dim, dtype=v.dtype, device=v.device)  # (B, L, H, hd)
            start = 0
            for end in attn_bias:
                o[:, start:end] = F.scaled_dot_product_attention(
                    q[:, :, start:end], k[:, :, :end], v[:, :, :end], scale=self.scale).transpose(1, 2)
                start = end
            return self.proj(o.view(B, L, C))
        if attn_bias.dtype != v.dtype:
            attn_bias = attn_bias.to(v.dtype)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, scale=self.scale)  # (B, H, L, hd)
        return self.proj(o.transpose(1, 2).reshape(B, L, C))


def _modulate(ln: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """ln * (scale + 1) + shift, in place on the fresh ``ln`` when that keeps its dtype."""
    if torch.result_type(ln, scale) == ln.dtype and torch.result_type(ln, shift) == ln.dtype:
        return ln.mul_(scale + 1).add_(shift)
    return ln * (scale + 1) + shift


class AdaLNSelfAttn(nn.Module):
    """Pre-norm block modulated by the class: gamma1, gamma2, scale1, scale2, shift1, shift2 (that order)."""

    def __init__(self, cfg: VARConfig):
        super().__init__()
        C = cfg.embed_dim
        self.C, self.eps, self.shared_aln = C, cfg.norm_eps, cfg.shared_aln
        self.attn = SelfAttention(C, cfg.num_heads, cfg.attn_l2_norm)
        self.ffn = FFN(C, round(C * cfg.mlp_ratio))
        if cfg.shared_aln:
            self.ada_gss = nn.Parameter(torch.randn(1, 1, 6, C) / C**0.5)
        else:
            self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, attn_bias: torch.Tensor | tuple[int, ...]) -> torch.Tensor:
        """x (B, L, C); cond: SiLU-free class embedding (B, C), or the shared (B, 1, 6, C) modulation."""
        if self.shared_aln:
            mods = self.ada_gss + cond  # (B, 1, 6, C)
        else:
            mods = self.ada_lin(cond).view(-1, 1, 6, self.C)  # (B, 1, 6, C)
        gamma1, gamma2, scale1, scale2, shift1, shift2 = mods.unbind(2)  # each (B, 1, C)
        ln = lambda t: F.layer_norm(t, (self.C,), eps=self.eps)  # noqa: E731 - no affine parameters
        x = _residual(x, _gated(self.attn(_modulate(ln(x), scale1, shift1), attn_bias), gamma1))
        x = _residual(x, _gated(self.ffn(_modulate(ln(x), scale2, shift2)), gamma2))
        return x


def _residual(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x + y; in place on ``x`` outside autograd (the residual stream is owned by ``VAR.hidden``)."""
    if torch.is_inference_mode_enabled() and x.is_inference() and torch.result_type(x, y) == x.dtype:
        return x.add_(y)
    return x + y


def _gated(y: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """y * gamma, in place on the fresh ``y`` when that keeps its dtype."""
    return y.mul_(gamma) if torch.result_type(y, gamma) == y.dtype else y * gamma


class AdaLNBeforeHead(nn.Module):
    """Non-affine LayerNorm modulated by (scale, shift) = ``ada_lin``(class embedding)."""

    def __init__(self, C: int, eps: float):
        super().__init__()
        self.C, self.eps = C, eps
        self.ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 2 * C))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.ada_lin(cond).view(-1, 1, 2, self.C).unbind(2)  # each (B, 1, C)
        return _modulate(F.layer_norm(x, (self.C,), eps=self.eps), scale, shift)


# --------------------------------------------------------------------------- model


class VAR(nn.Module):
    """VAR transformer. Needs the tokenizer (codebook + phis) to build its teacher-forcing input."""

    family = "var"

    def __init__(self, cfg: VARConfig, tokenizer=None):
        super().__init__()
        self.config = cfg
        C = cfg.embed_dim
        self.C, self.L, self.V = C, cfg.L, cfg.vocab_size
        self.num_classes = cfg.num_classes
        self.tokens_per_image, self.vocab_size = cfg.L, cfg.vocab_size
        self.patch_nums = cfg.patch_nums
        self.first_l = cfg.patch_nums[0] ** 2
        self.cond_drop_rate = 0.0  # label dropout is never applied when scoring
        self.token_layout = TokenLayout("scales", scales=tuple(cfg.patch_nums))
        self.null_class = cfg.num_classes
        self.nll_chunk: int | None = None  # positions per NLL chunk; None = from the batch size and V
        self._tokenizer = (tokenizer,)  # not a submodule: its weights are not part of this state dict

        self.word_embed = nn.Linear(cfg.Cvae, C)
        self.class_emb = nn.Embedding(cfg.num_classes + 1, C)  # row num_classes = null class
        self.pos_start = nn.Parameter(torch.zeros(1, self.first_l, C))
        self.pos_1LC = nn.Parameter(torch.zeros(1, self.L, C))
        self.lvl_embed = nn.Embedding(len(cfg.patch_nums), C)
        if cfg.shared_aln:
            self.shared_ada_lin = nn.Sequential(nn.SiLU(), nn.Linear(C, 6 * C))
        self.blocks = nn.ModuleList([AdaLNSelfAttn(cfg) for _ in range(cfg.depth)])
        self.register_buffer("lvl_1L", scale_of_positions(cfg.patch_nums))
        self.register_buffer("attn_bias_for_masking", block_causal_bias(cfg.patch_nums).contiguous())
        self.head_nm = AdaLNBeforeHead(C, cfg.norm_eps)
        self.head = nn.Linear(C, cfg.vocab_size)
        self.eval()

    @property
    def tokenizer(self):
        return self._tokenizer[0]

    def attach_tokenizer(self, tokenizer) -> None:
        for name, want, got in (("code dimension", self.config.Cvae, tokenizer.quantize.Cvae),
                                ("codebook size", self.V, tokenizer.vocab_size),
                                ("patch_nums", tuple(self.patch_nums), tuple(tokenizer.patch_nums))):
            if want != got:
                raise ValueError(f"VAR tokenizer/transformer mismatch: {name} {got} (tokenizer) vs {want} (transformer)")
        self._tokenizer = (tokenizer,)

    def hidden(self, labels: torch.Tensor, x_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """labels (B,), teacher-forcing input (B, L - first_l, Cvae) -> final hidden (B, L, C), class emb (B, C)."""
        B = x_in.shape[0]
        dev = x_in.device
        with torch.autocast(device_type=dev.type, enabled=False):
            cond = self.class_emb(labels)  # (B, C)
            sos = cond.unsqueeze(1) + self.pos_start  # (B, first_l, C)
            x = torch.cat((sos, self.word_embed(x_in.float())), dim=1)  # (B, L, C)
            x = x + self.lvl_embed(self.lvl_1L[0]) + self.pos_1LC  # (L, C) + (1, L, C)
            block_cond = self.shared_ada_lin(cond).view(B, 1, 6, self.C) if self.config.shared_aln else cond
        # block-causal attention scale by scale (the stored ``attn_bias_for_masking`` is the same
        # pattern as a mask; kept for the state dict, and used by blocks called with it)
        ends = tuple(itertools.accumulate(p * p for p in self.patch_nums))
        for block in self.blocks:
            x = block(x, block_cond, ends)
        return x, cond

    def logits_from_hidden(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_nm(h.float(), cond))

    def _check_inputs(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        if self.tokenizer is None:
            raise RuntimeError("this VAR model has no tokenizer attached; load it with "
                               "load_transformer(path, config, tokenizer) or call attach_tokenizer()")
        if labels.dim() != 1 or labels.shape[0] != tokens.shape[0]:
            raise ValueError(f"labels must be (B,) = ({tokens.shape[0]},), got {tuple(labels.shape)}")
        check_label_range(labels, self.num_classes, self.null_class)

    @torch.inference_mode()
    def logits(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Full (B, L, V) float32 logits (debugging; scoring uses :meth:`token_nll`)."""
        self._check_inputs(tokens, labels)
        h, cond = self.hidden(labels, self.tokenizer.var_input(tokens))
        return self.logits_from_hidden(h, cond).float()

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens, (B,) labels -> (B, L) float32 nats; every position scored, no shift."""
        self._check_inputs(tokens, labels)
        h, cond = self.hidden(labels, self.tokenizer.var_input(tokens))
        return self.nll_from_hidden(h, cond, tokens)

    def nll_from_hidden(self, h: torch.Tensor, cond: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Final hidden (B, L, C), class embedding (B, C), tokens (B, L) -> (B, L) float32 nats (chunked)."""
        chunk = self.nll_chunk or default_chunk(tokens.shape[0], self.V)
        return chunked_nll(h, self.head, tokens, chunk, pre=lambda hc: self.head_nm(hc.float(), cond))
