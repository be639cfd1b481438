"""The registry of model cards: one typed, frozen entry per AR model and per tokenizer.

Cards are metadata only (sizes, files, URLs, published values with their sources). How
to *build* a size lives with its family in ``visbpp.models``. Card data is declared per
family in ``visbpp.core.registry.cards.<family>``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping

from visbpp.core.errors import UnknownModelError  # noqa: E402 - re-exported: an id/alias that names no card


@dataclass(frozen=True)
class Published:
    """A published figure with its provenance."""

    value: float      # the number as published
    source: str       # where it is printed: paper table/row, README table/row, or our published table
    protocol: str = ""  # how it was measured, in words: guidance, rejection sampling, eval resolution, #samples
    metric: str = "FID"               # "FID" (ImageNet, Inception features) or "micro-FID" (the micro zoo)
    guidance: str = "unknown"         # "cfg 2.0", "cfg (scale not stated)", "none" or "unknown"
    eval_resolution: int | None = None  # resolution the figure was evaluated at, when stated
    origin: str = ""                  # "readme" (the released checkpoint's own README/docs), "paper", "table",
                                      # "third-party" or "" (not classified); `analyze --fid readme` reads it

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"Published.metric must be one of {METRICS}, got {self.metric!r}")
        if self.origin not in ORIGINS:
            raise ValueError(f"Published.origin must be one of {ORIGINS}, got {self.origin!r}")


METRICS = ("FID", "micro-FID")
MICRO_FAMILY = "micro"   # the micro zoo (trained in this repo on digits): micro-FID, never mixed with ImageNet FIDs
ORIGINS = ("", "readme", "paper", "table", "third-party")


@dataclass(frozen=True)
class BppProvenance:
    """How a published (table) BPP was measured, where it differs from what ``visbpp run`` measures."""

    source: str                 # who measured it (e.g. the published table's code)
    label_dropout: float = 0.0  # fraction of images scored with the null class instead of their label
    note: str = ""              # the difference in words, shown by ``analyze`` whenever a fit uses the BPP


@dataclass(frozen=True)
class CheckpointFile:
    """One official checkpoint file a model needs."""

    role: str                 # "tokenizer" or "transformer" (a file may hold both: see ``contains_tokenizer``)
    filename: str             # file name as distributed (cache key together with ``repo`` and sha256)
    url: str                  # official download URL as written upstream
    container: str | None     # top-level key holding the state dict ("model", "state_dict"), None = bare dict
    repo: str = ""            # hosting repository: "hf:Org/Name" for the Hugging Face hub, or the archive URL
    revision: str | None = None   # pinned hub revision where known
    archive_member: str | None = None  # path inside a downloaded archive (RQ-Transformer tarballs)
    sha256: str | None = None  # known checksum; None = recorded on first use and checked afterwards
    size_bytes: int | None = None  # known size on disk
    contains_tokenizer: bool = False  # the file also carries the tokenizer weights (``first_stage_model.*``)
    direct_url: str | None = None  # a direct-download link when ``url`` is a web page (share folders); None = none known

    @property
    def source_kind(self) -> str:
        """How `visbpp fetch` gets it: "hub", "archive", "http", "gdrive" (a Google Drive file id:
        ``repo`` = "gdrive:<id>"), "manual" (no direct link) or "bundled" (shipped inside the visbpp
        package: ``repo`` = "bundled:<folder under core/assets>")."""
        if self.repo.startswith("bundled:"):
            return "bundled"
        if self.repo.startswith("gdrive:"):
            return "gdrive"
        if self.repo.startswith("hf:"):
            return "hub"
        if self.url.endswith((".tar.gz", ".tgz", ".tar", ".zip")):
            return "archive"
        if self.direct_url:
            return "http"
        return "manual"

    @property
    def cache_relpath(self) -> str:
        """Path under the checkpoint cache: keyed on the hosting repository, never on the file name alone."""
        if self.repo.startswith("hf:"):
            slug = "hf/" + self.repo[3:].replace("/", "--")
        elif self.repo.startswith("bundled:"):
            slug = "bundled/" + self.repo[len("bundled:"):]
        elif self.repo.startswith("gdrive:"):
            slug = "drive.google.com/" + self.repo[len("gdrive:"):]
        else:
            m = re.match(r"^[a-z]+://([^/]+)/(?:.*/)?([^/?#]*)", self.repo or self.url)
            host, base = (m.group(1), m.group(2)) if m else ("local", "")
            base = re.sub(r"\.(tar\.gz|tgz|tar|zip)$", "", base)
            slug = "/".join(p for p in (host, base) if p)
        return f"{slug}/{self.archive_member or self.filename}"


@dataclass(frozen=True)
class TokenizerCard:
    """A VQ tokenizer checkpoint shared by one or more AR models."""

    id: str                   # stable id, e.g. "llamagen-vq16"
    family: str               # family module name
    params: int               # exact parameter count (buffers excluded)
    codebook_size: int        # number of codes
    code_dim: int             # dimension of a code vector
    downsample: int           # spatial downsampling factor
    file: CheckpointFile      # the checkpoint file
    rfid: tuple[tuple[int, Published], ...] = ()  # (resolution, rFID with source)
    notes: str = ""
    # Architecture numbers as plain data (the family's own argument names); read with dict(card.arch).
    arch: Mapping[str, Any] = field(default_factory=dict, hash=False)
    lpips: Published | None = None            # reconstruction LPIPS where published
    extra_files: tuple[CheckpointFile, ...] = ()  # further files the tokenizer needs (``role`` names each)


@dataclass(frozen=True)
class ModelCard:
    """One class-conditional AR model (transformer + the tokenizer it scores with)."""

    id: str                   # stable id, e.g. "llamagen-b-256"
    family: str               # family module name in visbpp.models, e.g. "llamagen"
    family_label: str         # display name used for groups, e.g. "LlamaGen"
    size: str                 # size label as in the published table, e.g. "111M_256 (B)"
    params: int               # exact AR-transformer parameter count (buffers excluded)
    resolution: int           # image side S the model is scored at
    tokenizer_id: str         # TokenizerCard id
    codebook_size: int        # token alphabet size
    tokens_per_image: int     # L
    files: tuple[CheckpointFile, ...]  # checkpoint files (transformer; tokenizer via tokenizer_id)
    fid: Published | None = None       # FID of the published table (or the primary source for extra models)
    rfid: Published | None = None      # rFID of the tokenizer at this resolution (same source as fid)
    alt_fid: tuple[Published, ...] = ()  # other published FIDs (e.g. README with CFG) with their sources
    reference_bpp: float | None = None   # BPP in the published table (bits / (3 H W)); None if not in it
    aliases: tuple[str, ...] = ()        # other accepted names, e.g. the table's "LlamaGen 111M_256"
    group: str | None = None             # explicit fit group (fixed tokenizer setting); None = derived
    in_published_table: bool = False     # one of the 14 rows of the published table
    notes: str = ""
    base_model: str | None = None        # card id of the model this one was fine-tuned from (None = not a fine-tune)
    reference_bpp_provenance: BppProvenance | None = None  # how ``reference_bpp`` was measured, where it matters
    # The architecture of this size as plain data (the family's own argument names, e.g. {"n_layer": 12,
    # "n_head": 12, "dim": 768}); ``Family.config_for(id)`` = the family's base config + this. Never mutate.
    arch: Mapping[str, Any] = field(default_factory=dict, hash=False)
    compare: tuple[str, ...] = ()        # named comparison sets the model belongs to (e.g. one AR model across tokenizers)

    @property
    def params_label(self) -> str:
        p = self.params
        if p >= 1e9:
            return f"{p / 1e9:.1f}B"
        return f"{p / 1e6:.0f}M" if p >= 1e6 else f"{p / 1e3:.0f}k"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "", name.lower())


@lru_cache(maxsize=1)
def _all() -> tuple[tuple[ModelCard, ...], tuple[TokenizerCard, ...]]:
    from visbpp.core.registry import cards

    models: list[ModelCard] = []
    toks: list[TokenizerCard] = []
    for mod in cards.modules():
        models.extend(getattr(mod, "CARDS", ()))
        toks.extend(getattr(mod, "TOKENIZERS", ()))
    ids = [c.id for c in models] + [t.id for t in toks]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise RuntimeError(f"duplicate card ids in the registry: {sorted(dup)}")
    return tuple(models), tuple(toks)


def model_cards(family: str | None = None, published_only: bool = False) -> tuple[ModelCard, ...]:
    cs = _all()[0]
    if family is not None:
        fam = family_name(family)
        cs = tuple(c for c in cs if c.family == fam)
    if published_only:
        cs = tuple(c for c in cs if c.in_published_table)
    return cs


def tokenizer_cards() -> tuple[TokenizerCard, ...]:
    return _all()[1]


def families() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for c in _all()[0]:
        seen.setdefault(c.family, None)
    return tuple(seen)


def family_name(name: str) -> str:
    """Accept a family module name or display label ("RQ-Transformer" -> "rqtransformer")."""
    n = _norm(name)
    for c in _all()[0]:
        if n in (_norm(c.family), _norm(c.family_label)):
            return c.family
    choices = sorted({c.family for c in _all()[0]})
    raise UnknownModelError(f"unknown family {name!r}; known families: {', '.join(choices)}")


def family_label(name: str) -> str:
    """The display label of a family ("rqtransformer" -> "RQ-Transformer"), as its cards carry it."""
    fam = family_name(name)
    return next(c.family_label for c in _all()[0] if c.family == fam)


def get_card(name: str) -> ModelCard:
    """Card by id or alias (case/punctuation-insensitive); unknown names get a 'did you mean'."""
    n = _norm(name)
    for c in _all()[0]:
        if n == _norm(c.id) or any(n == _norm(a) for a in c.aliases):
            return c
    keys = [c.id for c in _all()[0]] + [a for c in _all()[0] for a in c.aliases]
    close = difflib.get_close_matches(name, keys, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(k) for k in close)}?" if close else ""
    raise UnknownModelError(f"unknown model {name!r}{hint} (`visbpp models` lists every id)")


def get_tokenizer_card(tid: str) -> TokenizerCard:
    for t in _all()[1]:
        if t.id == tid:
            return t
    raise UnknownModelError(f"unknown tokenizer {tid!r}; known: {', '.join(t.id for t in _all()[1])}")


def card_pair(name: str) -> tuple[ModelCard, TokenizerCard]:
    """A model's card (by id or alias) and its tokenizer's card: what planning a job needs of the registry."""
    card = get_card(name)
    return card, get_tokenizer_card(card.tokenizer_id)


def fit_group(card: ModelCard, within: Iterable[ModelCard] | None = None) -> str:
    """The fixed-tokenizer-setting group of a card.

    Explicit ``group`` wins; otherwise the family label, suffixed with the resolution when
    the family has several resolutions among ``within`` (default: the whole registry).
    """
    if card.group:
        return card.group
    pool = list(within) if within is not None else list(_all()[0])
    resolutions = {c.resolution for c in pool if c.family == card.family and not c.group}
    if len(resolutions) > 1:
        return f"{card.family_label}-{card.resolution}"
    return card.family_label
