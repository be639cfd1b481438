"""Scoring jobs from the registry or from a user's own config + checkpoint files.

:func:`plan_jobs` turns the selected ids of a front-end into jobs in one pass (each id resolved to
its card and tokenizer card once, ``catalog.card_pair``, the cards passed down). ``job_for_card``
takes the config (and scoring order) from the family's official module in one call
(``models.official_job_config``), resolves the model's checkpoint files in one call
(``checkpoints.resolve_card_files``: ``checkpoints.toml``, ``--checkpoint-dir`` by archive member
path or file name, then the download cache; each file verified) and
returns a :class:`~visbpp.core.engine.run_types.ScoringJob` whose loaders build the family's
modules from the card's official configuration (``models/<family>/official.py``); building
it imports no torch (the loaders import the family's modules when called). ``job_from_config`` does the same for a
``--config C.json --tokenizer T.pt --transformer M.pt`` triple.

The tokenizer key (token-cache identity) is the sha256 of the tokenizer checkpoint file
plus the name of the family whose tokenizer code reads it (the tokenizer card's family; a family
object's ``tokenizer_family`` for ``--config`` runs, e.g. PAR runs LlamaGen's tokenizer and shares
its cache); files are hashed once and memoised by (path, size, mtime).

Families with an order axis (``DEFAULT_ORDER`` in their ``official`` module: ARPG, RandAR) get
their scoring order here (:func:`resolve_order`: ``--order``, else the config's ``order``, else the
family default; ``models.resolve_order``); it goes into the config the loaders read and into the job
(the run identity).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from visbpp.core.engine.run_types import ScoringJob
from visbpp.core.errors import CheckpointError, ConfigError, VisbppError
from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry import class_names
from visbpp.core.registry.cards import PUBLISHED_TABLE
from visbpp.core.registry.cards.micro import REFERENCE_SOURCE as MICRO_REFERENCE_SOURCE
from visbpp.core.registry.catalog import MICRO_FAMILY, ModelCard, TokenizerCard, card_pair, get_card
from visbpp.core.registry.checkpoints import file_sha256

from . import common_data_dir, default_order, get_family, official_config, official_job_config, resolve_order, token_config

MissingCheckpointError = ck.MissingCheckpointError

__all__ = ["MissingCheckpointError", "ConfigFileError", "JobPlan", "check_order_applies", "job_for_card",
           "job_from_config", "order_for", "plan_jobs", "resolve_order", "tokenizer_key"]


class ConfigFileError(ConfigError):
    """A --config file that cannot be read."""


def tokenizer_key(family: str, tokenizer_path: str, config: Mapping[str, Any], extras: Mapping[str, str] | None = None) -> str:
    """Identity of the tokenizer for the token cache: family, sha256 of the file and a hash of the
    config's ``tokenizer`` section (the same file can hold several weight sets, e.g. EMA copies)
    and of whatever else the family's tokens depend on (``models.token_config``: FlexVAR's schedule).

    Models whose configs share the tokenizer section and file share cached tokens; the resolution
    and preprocessing complete the cache key on the engine side.
    """
    section = token_config(family, config)
    h = hashlib.sha256(json.dumps(section, sort_keys=True, default=str).encode()).hexdigest()[:12]
    key = f"{family}:{file_sha256(tokenizer_path)}:{h}"
    for name, p in sorted((extras or {}).items()):  # extra files the tokenizer runs on (e.g. a frozen backbone)
        key += f":{name}={file_sha256(p)[:16]}"
    return key


def order_for(family: str, order: str | None) -> str | None:
    """``order`` for a model of ``family`` when the family has an order axis, else None (a selection's
    order setting leaves the other models as they are)."""
    return order if default_order(family) is not None else None


def check_order_applies(ids: Iterable[str], order: str | None) -> None:
    """`visbpp run --order`: the order must be valid and every named registered model must have an
    order axis (:func:`resolve_order`'s ConfigError otherwise), checked before any file is looked up."""
    if order is not None:
        for mid in ids:
            resolve_order(get_card(mid).family, order)


def _loaders(family: str, config: Mapping[str, Any], tok_path: str, tr_path: str, source: str = ""):
    """The job's loaders; the family's modules (torch) are imported when one is called."""
    where = source or f"{family} config"

    def load_tokenizer():
        return _as_config_error(lambda: get_family(family).load_tokenizer(tok_path, config), where)

    def load_model(tokenizer):
        return _as_config_error(lambda: get_family(family).load_transformer(tr_path, config, tokenizer), where)

    return load_tokenizer, load_model


def _as_config_error(load, where: str):
    """Run ``load()``; a plain ValueError/TypeError of a family's builders (a config they cannot build)
    becomes a :class:`ConfigError` naming the config, so front-ends report it like any visbpp error."""
    try:
        return load()
    except VisbppError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e}") from e


def reference_bpp_source(card: ModelCard) -> str | None:
    """Where a card's ``reference_bpp`` comes from (None without one): the micro zoo's own held-out
    measurement, else the published table."""
    if card.reference_bpp is None:
        return None
    return MICRO_REFERENCE_SOURCE if card.family == MICRO_FAMILY else PUBLISHED_TABLE


def job_for_card(card: ModelCard | str, checkpoint_dir: str | None = None, order: str | None = None) -> ScoringJob:
    """A registered model (its card, or an id/alias) as a scoring job (``order``: its scoring order,
    for a family with an order axis); raises MissingCheckpointError before any work."""
    return _registered_job(*card_pair(card.id if isinstance(card, ModelCard) else card), checkpoint_dir, order)


def _registered_job(card: ModelCard, tokenizer: TokenizerCard, checkpoint_dir: str | None, order: str | None) -> ScoringJob:
    """:func:`job_for_card` from both cards, as planning resolved them."""
    config, scoring_order = official_job_config(card, tokenizer, order)  # torch-free official.py
    paths = ck.resolve_card_files(card, tokenizer, checkpoint_dir)
    extras = {role: p for role, p in paths.items() if role not in ("tokenizer", "transformer")}
    if extras:
        config["extra_files"] = extras
    load_tokenizer, load_model = _loaders(card.family, config, paths["tokenizer"], paths["transformer"])
    # The token cache key includes the resolution through the tokenizer's preprocess_id/image_size.
    return ScoringJob(
        model_id=card.id,
        family=card.family,
        tokenizer_key=tokenizer_key(tokenizer.family, paths["tokenizer"], config, extras),
        load_tokenizer=load_tokenizer,
        load_model=load_model,
        checkpoints={"tokenizer": paths["tokenizer"], "transformer": paths["transformer"], **extras},
        reference_bpp=card.reference_bpp,
        reference_bpp_source=reference_bpp_source(card),
        class_names=class_names.for_config(card.family, config),
        order=scoring_order,
    )


@dataclass
class JobPlan:
    """A selection as scoring jobs, with what kept a model out (missing files, other errors)."""

    jobs: list[ScoringJob] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)   # (model id, message with the expected paths)
    errors: list[tuple[str, str]] = field(default_factory=list)    # (model id, message)

    def data_dir(self) -> str | None:
        """The data folder every planned job's family ships (the micro zoo's digits), else None."""
        return common_data_dir(j.family for j in self.jobs)


def plan_jobs(ids: Iterable[str], checkpoint_dir: str | None = None,
              own: Mapping[str, Callable[[str | None], ScoringJob]] | None = None,
              order: str | None = None) -> JobPlan:
    """The selected ids as scoring jobs in one pass, in order: each registered id (or alias) resolved
    to its card once and the card passed down (:func:`job_for_card`; an id named twice is planned
    once); ``own`` builds a front-end's own models by their label, given ``order``
    (``job_from_config``). ``order`` (``--order``, the TUI's order setting) is the scoring order of
    the models whose family has an order axis (:func:`order_for`; the others have none, and
    `visbpp run` refuses it for them first, :func:`check_order_applies`). A missing checkpoint or
    any other visbpp error is collected for its id, so every problem is reported at once."""
    plan, seen, own = JobPlan(), set(), own or {}
    for mid in ids:
        try:
            if mid in own:
                job = own[mid](order)
            else:
                card, tokenizer = card_pair(mid)
                if card.id in seen:
                    continue
                job = _registered_job(card, tokenizer, checkpoint_dir, order_for(card.family, order))
            seen.add(job.model_id)
            plan.jobs.append(job)
        except MissingCheckpointError as e:
            plan.missing.append((mid, str(e)))
        except (VisbppError, OSError) as e:
            plan.errors.append((mid, str(e)))
    return plan


def read_config(config_path: str) -> dict:
    if not os.path.isfile(config_path):
        raise ConfigFileError(f"{config_path}: config file not found")
    try:
        with open(config_path) as f:
            cfg = json.load(f)
    except ValueError as e:
        raise ConfigFileError(f"{config_path}: not valid JSON ({e})") from None
    if not isinstance(cfg, dict):
        raise ConfigFileError(f"{config_path}: expected a JSON object with the official constructor arguments")
    return cfg


def _extras(fam: Any, extras: Mapping[str, str] | None) -> dict[str, str]:
    """--extra NAME=PATH files checked against the family's ``extra_files`` (name -> description)."""
    wanted = getattr(fam, "extra_files", {}) or {}
    extras = dict(extras or {})
    for name in extras:
        if name not in wanted:
            known = ", ".join(wanted) or "none"
            raise ConfigFileError(f"--extra {name}=...: family {fam.name} takes no extra file {name!r} (it takes: {known})")
    for name, desc in wanted.items():
        if name not in extras:
            raise MissingCheckpointError(f"family {fam.name} needs the extra file {name!r}: {desc}; pass --extra {name}=PATH")
        if not os.path.isfile(extras[name]):
            raise CheckpointError(f"{extras[name]}: extra file {name!r} not found (--extra {name}=PATH)")
    return {k: os.path.abspath(v) for k, v in extras.items()}


def job_from_config(family: str, config_path: str, tokenizer_path: str, transformer_path: str,
                    model_id: str | None = None, extras: Mapping[str, str] | None = None,
                    order: str | None = None) -> ScoringJob:
    """A user's own checkpoints of a supported architecture, built from ``config_path``; ``extras``
    are the further files the family needs (``--extra NAME=PATH``), ``order`` the scoring order
    (families with an order axis; default: the config's ``order``, else the family's)."""
    fam = get_family(family)
    name = fam.name
    cfg = read_config(config_path)
    declared = cfg.get("family")
    # a config's family may name a variant, "<family>-<variant>" (e.g. "rar-robusttok"), as fixture folders do
    if isinstance(declared, str) and declared not in (name, family) and not declared.startswith(name + "-"):
        raise ConfigFileError(f"{config_path}: this config is for family {declared!r}, but --family is {family!r}; "
                              f"pass --family {declared} (or the config of a {name} model)")
    parse = getattr(fam, "parse_config", None)
    if parse is not None:
        parse(cfg, config_path)  # unknown keys and wrong types named with the file, before any work
    for role, p in (("tokenizer", tokenizer_path), ("transformer", transformer_path)):
        if not os.path.isfile(p):
            raise CheckpointError(f"{p}: {role} checkpoint file not found (--{role})")
    tok_path, tr_path = os.path.abspath(tokenizer_path), os.path.abspath(transformer_path)
    extra_paths = _extras(fam, extras)
    if extra_paths:
        cfg["extra_files"] = extra_paths
    scoring_order = resolve_order(name, order, cfg, config_path)
    if model_id is None:
        # the id names the weights and the config: two configs of one file are two models (the scoring
        # order is not the model: it is recorded with the job)
        model = {k: v for k, v in cfg.items() if k != "order"}
        cfg_hash = hashlib.sha256(json.dumps(model, sort_keys=True, default=str).encode()).hexdigest()[:8]
        model_id = f"{name}:{os.path.splitext(os.path.basename(tr_path))[0]}@{file_sha256(tr_path)[:8]}-{cfg_hash}"
    if scoring_order is not None:
        cfg["order"] = scoring_order
    load_tokenizer, load_model = _loaders(name, cfg, tok_path, tr_path, config_path)
    return ScoringJob(
        model_id=model_id,
        family=name,
        tokenizer_key=tokenizer_key(getattr(fam, "tokenizer_family", name), tok_path, cfg, extra_paths),
        load_tokenizer=load_tokenizer,
        load_model=load_model,
        checkpoints={"tokenizer": tok_path, "transformer": tr_path, "config": os.path.abspath(config_path), **extra_paths},
        class_names=class_names.for_config(name, cfg),
        order=scoring_order,
    )


def random_modules(model_id: str | None = None, family: str | None = None, config_path: str | None = None):
    """(tokenizer, AR model) of a registered size (or a --config file) with random weights, for bench."""
    from visbpp.core.registry.build import finish  # torch

    if model_id is not None:
        card, tokenizer = card_pair(model_id)
        fam, config = get_family(card.family), official_config(card, tokenizer)
    else:
        fam, config = get_family(family), read_config(config_path)
    tok = finish(fam.build_tokenizer(config))
    return tok, finish(fam.build_transformer(config, tok))   # as loaded models are handed out (CPU linears too)
