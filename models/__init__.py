"""Model families: one package per family (modules, checkpoint loading, build config per size id).

The families are the registry's (``visbpp.core.registry.catalog.families()``: the ``family`` of
the cards in ``visbpp.core.registry.cards.CARD_MODULES``, the one list of families); a family's
code is the package of the same name here, found by that name. Families are imported lazily, on
first use, so that listing the registry never imports torch modules of every family. Each
family's ``official`` module (the configs of its registered sizes) and ``data`` module (micro)
import without torch: jobs of registered models are built without it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from visbpp.core.errors import ConfigError
from visbpp.core.layout import parse_order
from visbpp.core.registry.catalog import (
    ModelCard,
    TokenizerCard,
    families,
    family_label,
    family_name,
    get_card,
    get_tokenizer_card,
    model_cards,
)

if TYPE_CHECKING:  # pragma: no cover
    from visbpp.core.interfaces import Family


def family_package(name: str) -> str:
    """The package of family ``name`` (module name or display label; ``UnknownModelError`` if the
    registry has no such family)."""
    return f"{__name__}.{family_name(name)}"


def get_family(name: str) -> "Family":
    """The Family object of ``name`` (module name or display label)."""
    return importlib.import_module(family_package(name)).FAMILY


def official_config(card: ModelCard, tokenizer: TokenizerCard) -> dict:
    """The official config of a registered model from its cards: ``config(card, tokenizer)`` of its
    family's torch-free ``official`` module (the family's base config + the cards' ``arch``)."""
    return importlib.import_module(f"{family_package(card.family)}.official").config(card, tokenizer)


def official_job_config(card: ModelCard, tokenizer: TokenizerCard, order: str | None = None) -> tuple[dict, str | None]:
    """(config, scoring order) of a registered model, from its family's torch-free ``official``
    module read once: the official config with the order (``order``, else the family's default)
    written into it when the family has an order axis (:func:`resolve_order`)."""
    official = importlib.import_module(f"{family_package(card.family)}.official")
    config = official.config(card, tokenizer)
    scoring_order = resolve_order(card.family, order, default=getattr(official, "DEFAULT_ORDER", None))
    if scoring_order is not None:
        config["order"] = scoring_order
    return config, scoring_order


def _module_of(family: str, name: str) -> ModuleType | None:
    """Module ``name`` of family ``family``'s package, or None when the package or the module does
    not exist (a family with no package here: a stand-in of a test)."""
    package = f"{__name__}.{family}"
    if importlib.util.find_spec(package) is None or importlib.util.find_spec(f"{package}.{name}") is None:
        return None
    return importlib.import_module(f"{package}.{name}")


def token_config(family: str, config: dict):
    """The part of a config the tokens depend on (hashed into the token-cache key): the family's
    torch-free ``official.token_config(config)`` where it defines one (FlexVAR: the scale schedule
    too), else the config's ``tokenizer`` section."""
    fn = getattr(_module_of(family, "official"), "token_config", None)
    return fn(config) if fn is not None else config.get("tokenizer", config)


def config_for(model_id: str, family: str) -> dict:
    """``Family.config_for``: the official config of a registered id (or alias) of ``family``
    (``KeyError`` naming the family's ids when the id is another family's). A tokenizer card's id
    stands for the first size scored with that tokenizer (whose config holds the tokenizer's)."""
    users = [c for c in model_cards(family) if c.tokenizer_id == model_id]
    card = users[0] if users else get_card(model_id)
    if card.family != family:
        label = family_label(family)
        ids = ", ".join(c.id for c in model_cards(family))
        article = "an" if label[:1].upper() in "AEIOU" else "a"
        raise KeyError(f"{model_id!r} is not {article} {label} model; {label} ids: {ids}")
    return official_config(card, get_tokenizer_card(card.tokenizer_id))


def default_order(family: str) -> str | None:
    """The scoring order a family's models use unless ``--order`` says otherwise (``DEFAULT_ORDER`` of
    its torch-free ``official`` module), or None for a family without an order axis."""
    return getattr(_module_of(family, "official"), "DEFAULT_ORDER", None)


_UNSET = object()


def resolve_order(family: str, requested: str | None = None, config: Mapping[str, Any] | None = None,
                  where: str = "", default: Any = _UNSET) -> str | None:
    """The scoring order (normalised ``raster`` | ``perm:K``) of a model of ``family``: ``requested``
    (``--order``), else the config's ``order`` string, else the family's default (``default``, when
    the caller has already read it); None for a family without an order axis, which refuses a
    requested order (ConfigError)."""
    default = default_order(family) if default is _UNSET else default
    if default is None:
        if requested is not None:
            takes = ", ".join(f for f in families() if default_order(f) is not None)
            raise ConfigError(f"--order {requested}: {family} models have no order axis (they score in the one order "
                              f"they were trained in); --order applies to the random-order families: {takes}")
        return None
    if requested is not None:
        return parse_order(requested, "--order").text
    own = (config or {}).get("order")
    if isinstance(own, str):
        return parse_order(own, f"{where or family + ' config'}: order").text
    return parse_order(default, f"{family} default order").text


def shipped_data_dir(family: str) -> str | None:
    """The data folder ``family`` (a family's name, as jobs and cards carry it) ships:
    ``default_data_dir()`` of its torch-free ``data`` module, e.g. the micro zoo's held-out digits,
    written on first use; None when the family needs the user's data (ImageNet) or has no package
    here (a stand-in of a test)."""
    data = _module_of(family, "data")
    return str(data.default_data_dir()) if data is not None else None


def common_data_dir(families: Iterable[str]) -> str | None:
    """The data folder that every one of ``families`` ships, when they all ship the same one; else
    None (the user names the data)."""
    dirs = {shipped_data_dir(f) for f in set(families)}
    return dirs.pop() if len(dirs) == 1 else None
