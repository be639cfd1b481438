"""RQ-Transformer: spatial (body) transformer over positions, depth (head) transformer over codes.

The model has no token-embedding table: codes are embedded with the RQ-VAE codebook (raw
rows of the tokenizer), so it is built with a reference to its tokenizer. For codes S of
shape (B, H, W, D) and labels y:

  u_t   = sum_d input_mlp(E[S_t,d]) + pos_emb_hw[t]             (bias counted D times)
  body  = causal stack over [cond_emb[y] + pos_emb_cond, u_0, ..., u_{T-2}] -> h_0..h_{T-1}
  depth = causal stack over [h_t, head_mlp(E[S_t,0]), head_mlp(E[S_t,0]+E[S_t,1]), ...] + pos_emb_d
  logits(t, d) = classifier(depth output d of position t), predicting S[t, d]

Attribute names equal the official state-dict keys.
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
class StackConfig:
    n_layer: int
    n_head: int
    embed_dim: int
    mlp_bias: bool = True
    attn_bias: bool = True
    gelu: str = "v1"

    @classmethod
    def from_arch(cls, stack: Mapping[str, Any], embed_dim: int, where: str) -> "StackConfig":
        block = stack.get("block", {})
        if "n_layer" not in stack or "n_head" not in block:
            raise ValueError(f"RQ-Transformer config: '{where}' needs n_layer and block.n_head")
        dim = int(block.get("embed_dim", embed_dim))
        if dim != embed_dim:
            raise ValueError(f"RQ-Transformer config: {where}.block.embed_dim {dim} != embed_dim {embed_dim}")
        cfg = cls(int(stack["n_layer"]), int(block["n_head"]), dim, bool(block.get("mlp_bias", True)),
                  bool(block.get("attn_bias", True)), str(block.get("gelu", "v1")))
        if dim % cfg.n_head:
            raise ValueError(f"RQ-Transformer config: {where} embed_dim {dim} not divisible by n_head {cfg.n_head}")
        if cfg.gelu not in ("v1", "v2"):
            raise ValueError(f"RQ-Transformer config: {where}.block.gelu must be 'v1' or 'v2', got {cfg.gelu!r}")
        return cfg


@dataclass
class RQTransformerConfig:
    """The stage-2 ``arch`` section (upstream defaults merged)."""

    block_size: tuple[int, int, int]   # (H, W, D)
    vocab_size: int
    vocab_size_cond: int               # number of classes (cond_emb rows)
    embed_dim: int
    input_embed_dim: int               # codebook vector dimension
    body: StackConfig
    head: StackConfig
    cumsum_depth_ctx: bool = True

    @classmethod
    def from_arch(cls, arch: Mapping[str, Any]) -> "RQTransformerConfig":
        need = ("block_size", "vocab_size", "embed_dim", "body", "head")
        missing = [k for k in need if k not in arch]
        if missing:
            raise ValueError(f"RQ-Transformer config: missing {missing} (expected the stage-2 'arch' section)")
        # Only the configuration of the released models is implemented; refuse the others loudly.
        # key: (upstream default, required value, why)
        flags = {
            "input_emb_vqvae": (False, True, "codes must be embedded with the RQ-VAE codebook"),
            "head_emb_vqvae": (False, True, "the depth context must come from the RQ-VAE codebook"),
            "shared_cls_emb": (False, True, "per-depth classifiers are not implemented"),
            "use_padding_emb": (False, False, "padding embeddings are not implemented"),
            "scaled_head_emb_vqvae": (False, False, "scaled head embeddings are not implemented"),
        }
        for key, (default, want, why) in flags.items():
            if bool(arch.get(key, default)) != want:
                raise ValueError(f"RQ-Transformer config: {key}={arch.get(key, default)!r} is not supported ({why})")
        if int(arch.get("block_size_cond", 1) or 1) != 1:
            raise ValueError("RQ-Transformer config: block_size_cond > 1 (conditioning sequences) is not supported")
        vocab = arch["vocab_size"]
        if isinstance(vocab, (list, tuple)):
            if len(set(vocab)) != 1:
                raise ValueError(f"RQ-Transformer config: per-depth vocab sizes {vocab} are not supported")
            vocab = vocab[0]
        C = int(arch["embed_dim"])
        block_size = tuple(int(b) for b in arch["block_size"])
        if len(block_size) != 3:
            raise ValueError(f"RQ-Transformer config: block_size must be [H, W, D], got {arch['block_size']}")
        return cls(
            block_size=block_size,
            vocab_size=int(vocab),
            vocab_size_cond=max(int(arch.get("vocab_size_cond", 0)), 1),
            embed_dim=C,
            input_embed_dim=int(arch.get("input_embed_dim") or C),
            body=StackConfig.from_arch(arch["body"], C, "body"),
            head=StackConfig.from_arch(arch["head"], C, "head"),
            cumsum_depth_ctx=bool(arch.get("cumsum_depth_ctx", False)),
        )


# --------------------------------------------------------------------------- blocks


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; heads are contiguous channel slices; ``query/key/value/proj``."""

    def __init__(self, cfg: StackConfig):
        super().__init__()
        C = cfg.embed_dim
        self.n_head = cfg.n_head
        self.key = nn.Linear(C, C, bias=cfg.attn_bias)
        self.query = nn.Linear(C, C, bias=cfg.attn_bias)
        self.value = nn.Linear(C, C, bias=cfg.attn_bias)
        self.proj = nn.Linear(C, C, bias=cfg.attn_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = (m(x).view(B, T, self.n_head, hd).transpose(1, 2) for m in (self.query, self.key, self.value))  # (B, nh, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class GELU(nn.Module):
    """'v1': exact erf GELU; 'v2': x * sigmoid(1.702 x)."""

    def __init__(self, version: str = "v1"):
        super().__init__()
        self.version = version

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x) if self.version == "v1" else x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    """Pre-norm block: x + attn(ln1(x)); x + mlp(ln2(x)). ``mlp.0`` / ``mlp.2`` are the linears."""

    def __init__(self, cfg: StackConfig):
        super().__init__()
        C = cfg.embed_dim
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(C, 4 * C, bias=cfg.mlp_bias), GELU(cfg.gelu), nn.Linear(4 * C, C, bias=cfg.mlp_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Stack(nn.Module):
    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class Classifier(nn.Module):
    """``layer_norm`` then ``linear`` to the vocabulary (shared by all depths)."""

    def __init__(self, C: int, vocab: int):
        super().__init__()
        self.layer_norm = nn.LayerNorm(C, eps=1e-5)
        self.linear = nn.Linear(C, vocab)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(self.layer_norm(h))


# --------------------------------------------------------------------------- model


class RQTransformer(nn.Module):
    """Class-conditional RQ-Transformer (implements ``visbpp.core.interfaces.ARModel``).

    ``tokenizer`` supplies the code embeddings (``code_embeddings``); it is referenced, not
    registered, so it is not part of this module's state dict.
    """

    family = "rqtransformer"

    def __init__(self, cfg: RQTransformerConfig, tokenizer: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        H, W, D = cfg.block_size
        C = cfg.embed_dim
        self.cond_emb = nn.Embedding(cfg.vocab_size_cond, C)
        self.input_mlp = nn.Linear(cfg.input_embed_dim, C)
        self.head_mlp = nn.Linear(cfg.input_embed_dim, C)
        self.pos_emb_cond = nn.Parameter(0.02 * torch.randn(1, 1, C))
        self.pos_emb_hw = nn.Parameter(0.02 * torch.randn(1, H * W, C))
        self.pos_emb_d = nn.Parameter(0.02 * torch.randn(1, D, C))
        self.body_transformer = Stack(cfg.body)
        self.head_transformer = Stack(cfg.head)
        self.classifier = Classifier(C, cfg.vocab_size)
        self.tokens_per_image = H * W * D
        self.vocab_size = cfg.vocab_size
        self.num_classes = cfg.vocab_size_cond
        self.token_layout = TokenLayout("depth", (H, W), depth=D)
        self.null_class = None  # trained without label dropout: no null class
        self.chunk: int | None = None   # positions per logits chunk; None = sized from batch and vocab
        self._tokenizer: tuple = ()
        if tokenizer is not None:
            self.attach_tokenizer(tokenizer)

    def attach_tokenizer(self, tokenizer: nn.Module) -> None:
        """Use ``tokenizer``'s codebook for the code embeddings (checks code shape and vector size)."""
        H, W, D = self.cfg.block_size
        shape = tuple(getattr(tokenizer, "code_shape", ()))
        if shape != (H, W, D) or tokenizer.vocab_size != self.cfg.vocab_size:
            raise ValueError(
                f"RQ-Transformer expects codes {H}x{W}x{D} from a codebook of {self.cfg.vocab_size}; the tokenizer "
                f"gives {shape} from {tokenizer.vocab_size}. Use the RQ-VAE of the same archive."
            )
        dim = tokenizer.quantizer.codebooks[0].weight.shape[1]
        if dim != self.cfg.input_embed_dim:
            raise ValueError(f"RQ-Transformer input_embed_dim {self.cfg.input_embed_dim} != tokenizer code dim {dim}")
        self._tokenizer = (tokenizer,)  # a tuple keeps it out of the module tree and the state dict

    @property
    def tokenizer(self) -> nn.Module:
        if not self._tokenizer:
            raise RuntimeError(
                "RQ-Transformer has no token embedding of its own: attach the RQ-VAE tokenizer "
                "(load_transformer(path, config, tokenizer)) before scoring"
            )
        return self._tokenizer[0]

    def hidden(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """codes (B, H, W, D) int64, labels (B,) -> depth-stack outputs (B, H*W*D, C), row-major (h, w, d)."""
        B, H, W, D = codes.shape
        T = H * W
        ref = self.pos_emb_hw
        xs = codes.reshape(B, T, D).to(ref.device)                                     # (B, T, D)
        e = self.tokenizer.code_embeddings(xs.to(self.tokenizer.quantizer.codebooks[0].weight.device))
        e = e.to(device=ref.device, dtype=self.input_mlp.weight.dtype)                 # (B, T, D, dim)
        u = self.input_mlp(e).sum(dim=-2) + self.pos_emb_hw[:, :T]                     # (B, T, C)
        s = self.cond_emb(labels.to(ref.device).long()).unsqueeze(1) + self.pos_emb_cond  # (B, 1, C)
        h = self.body_transformer(torch.cat([s, u[:, :-1]], dim=1))                    # (B, T, C)
        ctx = torch.cumsum(e, dim=-2) if self.cfg.cumsum_depth_ctx else e
        g = self.head_mlp(ctx[:, :, :-1])                                              # (B, T, D-1, C)
        depth_in = torch.cat([h.unsqueeze(2).to(g.dtype), g], dim=2) + self.pos_emb_d[:, None, :D]  # (B, T, D, C)
        out = self.head_transformer(depth_in.reshape(B * T, D, -1))                    # (B*T, D, C)
        return out.reshape(B, T * D, -1)                                               # (B, L, C)

    def forward(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Full logits (B, H, W, D, V); for tests and small inputs (scoring uses :meth:`token_nll`)."""
        B, H, W, D = codes.shape
        return self.classifier(self.hidden(codes, labels)).reshape(B, H, W, D, -1)

    @torch.inference_mode()
    def token_nll(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 tokens (row-major (h, w, d)), (B,) labels -> (B, L) float32 nats."""
        H, W, D = self.cfg.block_size
        B = tokens.shape[0]
        if tokens.ndim != 2 or tokens.shape[1] != self.tokens_per_image:
            raise ValueError(f"RQ-Transformer token_nll: expected tokens (B, {self.tokens_per_image}), got {tuple(tokens.shape)}")
        if labels.shape != (B,):
            raise ValueError(f"RQ-Transformer token_nll: expected labels of shape ({B},), got {tuple(labels.shape)}")
        check_label_range(labels, self.num_classes)
        tokens = tokens.long()
        hidden = self.hidden(tokens.reshape(B, H, W, D), labels)  # (B, L, C)
        targets = tokens.to(hidden.device)
        chunk = self.chunk or default_chunk(B, self.vocab_size)
        return chunked_nll(hidden, self.classifier, targets, chunk)
