"""The one model interface that every family implements.

The scoring engine, the token cache and the front-ends only ever talk to these two
protocols. A family module in ``visbpp.models`` provides classes that satisfy them
(usually ``torch.nn.Module`` subclasses whose attribute names equal the official
state-dict keys) plus a :class:`Family` object that builds and loads them.

Token convention: ``encode`` returns a ``LongTensor (B, L)``: the flat sequence of
code indices *in the order the AR model consumes them* (raster order for LlamaGen /
Taming / IBQ, scale-by-scale for VAR, (h, w, depth) with depth fastest for
RQ-Transformer, one 2^bits index per position for Open-MAGVIT2). ``token_nll``
takes exactly that tensor and returns ``(B, L)`` float32 nats, one entry per
position, so ``bits(image) = token_nll.double().sum(-1) / ln 2``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image


@dataclass(frozen=True)
class TokenLayout:
    """Where each position of the flat token sequence sits, as plain data (see ``core/analysis/breakdown.py``).

    ``kind``: ``"raster"`` (grid h x w, row-major), ``"scales"`` (VAR: square maps of side
    ``scales[i]``, coarse to fine, each row-major), ``"depth"`` (grid h x w x ``depth``, depth
    fastest) or ``"subtokens"`` (grid h x w, each position scored as ``parts`` factorised
    sub-tokens named ``part_names``; the model then also offers ``subtoken_nll -> (B, L, parts)``).

    ``mean_parts > 0``: the ``parts`` are instead alternative scoring orders of the same tokens
    (``core/layout.py``: ``order_layout``), each stored per position of the layout (raster cell);
    the model offers ``order_nll -> (B, L, parts)`` and the headline NLL of a position is the mean of
    the first ``mean_parts`` orders (the others, e.g. raster beside permutations, are reported beside).

    Optional named position groups: position i belongs to ``group_names[group_of[i]]`` (e.g. PAR:
    its sequential first group vs its parallel groups, while the positions stay raster cells).
    When given they are the layout's per-group breakdown, in place of the kind's own (scales,
    depths, sub-tokens or "all").
    """

    kind: str
    grid: tuple[int, int] | None = None
    scales: tuple[int, ...] = ()
    depth: int = 1
    parts: int = 1
    part_names: tuple[str, ...] = ()
    mean_parts: int = 0
    group_names: tuple[str, ...] = ()
    group_of: tuple[int, ...] = field(default=(), repr=False)  # per position: index into group_names

    def __post_init__(self) -> None:
        if not 0 <= self.mean_parts <= self.parts:
            raise ValueError(f"token layout: mean_parts = {self.mean_parts} must lie in [0, parts = {self.parts}]")
        if not (self.group_names or self.group_of):
            return
        if len(self.group_of) != self.length:
            raise ValueError(f"token layout: group_of names a group for {len(self.group_of)} positions, "
                             f"the layout has {self.length}")
        if not all(0 <= g < len(self.group_names) for g in self.group_of):
            raise ValueError(f"token layout: group_of holds indices outside the {len(self.group_names)} group names")

    @property
    def length(self) -> int:
        """L, the number of positions of the flat sequence."""
        if self.kind == "scales":
            return sum(s * s for s in self.scales)
        h, w = self.grid
        return h * w * self.depth


@runtime_checkable
class ImageTokenizer(Protocol):
    """Image -> discrete tokens (and back)."""

    family: str             # family name, e.g. "llamagen"
    image_size: int         # square input side S in pixels the tokenizer is run at
    tokens_per_image: int   # L, length of the flat token sequence of one image
    vocab_size: int         # number of distinct values a token can take
    preprocess_id: str      # names the preprocessing (filter, crop, normalisation, S): part of the token-cache key

    def preprocess(self, image: "Image.Image") -> "torch.Tensor":
        """A decoded PIL image (any mode) -> float32 (3, S, S), normalised the family's way."""

    def encode(self, x: "torch.Tensor") -> "torch.Tensor":
        """(B, 3, S, S) float -> (B, L) int64 tokens, deterministic (no stochastic quantisation)."""

    def decode(self, tokens: "torch.Tensor") -> "torch.Tensor":
        """(B, L) int64 -> (B, 3, S, S) float reconstruction, unclamped, same range as the input."""


@runtime_checkable
class ARModel(Protocol):
    """Class-conditional autoregressive transformer scored teacher-forced."""

    family: str             # family name
    tokens_per_image: int   # L it was built for
    vocab_size: int         # token alphabet it predicts
    num_classes: int        # number of real classes (the null/CFG class excluded)
    token_layout: TokenLayout  # where each of the L positions sits (grid, scales, depth, sub-tokens)
    null_class: int | None  # label of the null (CFG) class row the model was trained with, else None;
                            # token_nll accepts it (scored only on request, never in place of a label)

    def token_nll(self, tokens: "torch.Tensor", labels: "torch.Tensor") -> "torch.Tensor":
        """(B, L) int64 tokens, (B,) int64 labels -> (B, L) float32 nats, -ln p(token_j | label, tokens_<j).

        One forward per batch, computed under ``torch.inference_mode`` with fp32
        log-softmax, in chunks along the sequence so that B x L x V fp32 logits are
        never held at once; no label dropout, no token replacement, no CFG.
        """


@runtime_checkable
class Family(Protocol):
    """Builds and loads one family's modules. One instance per family in ``visbpp.models``.

    ``config`` is a mapping in the family's own schema, which uses the official
    constructor argument names: the conformance fixtures' ``config.json`` files are
    examples, and every registered size id has one (``config_for``).
    """

    name: str

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The exact official configuration of a registered size id."""

    def build_tokenizer(self, config: Mapping[str, Any]) -> ImageTokenizer:
        """Tokenizer with freshly initialised weights (works on the meta device too)."""

    def build_transformer(self, config: Mapping[str, Any], tokenizer: ImageTokenizer | None = None) -> ARModel:
        """AR model with freshly initialised weights; some families need the tokenizer (shared codebook)."""

    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> ImageTokenizer:
        """Tokenizer loaded strictly from an official checkpoint file, float32, eval mode."""

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: ImageTokenizer | None = None) -> ARModel:
        """AR model loaded strictly from an official checkpoint file, float32, eval mode."""
