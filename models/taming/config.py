"""Taming configurations: the registered size in the conformance ``config.json`` schema, and the
architecture read from a run folder's ``configs/*-project.yaml`` (or a VQGAN ``configs/model.yaml``).

The real transformer's head count cannot be read from tensor shapes, so when a checkpoint
comes with its run folder's project yaml, that yaml is the authority: its values replace
the given ones and every disagreement is reported (a :class:`ProjectConfigWarning` naming
the yaml, the field and both values).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any, Mapping

from visbpp.core.errors import CheckpointError

# The family's base config: VQGAN f16-16384 (configs/model.yaml of the VQGAN download) + the cin
# GPT, whose sizes (n_layer, n_head, n_embd) come from the card (``card.arch``); block_size and
# vocab_size follow from the checkpoint's tensor shapes.
BASE_CONFIG: dict[str, Any] = {
    "tokenizer": {
        "target": "taming.models.vqgan.VQModel",
        "ddconfig": {
            "double_z": False, "z_channels": 256, "resolution": 256, "in_channels": 3, "out_ch": 3,
            "ch": 128, "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 2, "attn_resolutions": [16],
            "dropout": 0.0,
        },
        "n_embed": 16384,
        "embed_dim": 256,
        "lossconfig": {"target": "taming.modules.losses.DummyLoss"},
    },
    "transformer": {
        "target": "taming.modules.transformer.mingpt.GPT",
        "vocab_size": 16384, "block_size": 256, "n_layer": None, "n_head": None, "n_embd": None,
        "embd_pdrop": 0.0, "resid_pdrop": 0.0, "attn_pdrop": 0.0, "n_unmasked": 0,
    },
    "net2net": {
        "target": "taming.models.cond_transformer.Net2NetTransformer",
        "first_stage_key": "image",
        "cond_stage_key": "class_label",
        "cond_stage_config": {"target": "taming.modules.util.Labelator", "params": {"n_classes": 1000}},
        "permuter": "taming.modules.transformer.permuter.Identity (default)",
        "pkeep": 1.0,
    },
    "image_size": 256,
    "num_classes": 1000,
    "latent_hw": [16, 16],
    "tokens_per_image": 256,
    "notes": "n_head=16 inferred (not visible in tensor shapes); the run folder's configs/*-project.yaml "
             "overrides it when present.",
}


def config_for_card(arch: Mapping[str, Any]) -> dict[str, Any]:
    """The base config with the card's GPT sizes (``n_layer``, ``n_head``, ``n_embd``)."""
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["transformer"].update({k: arch[k] for k in ("n_layer", "n_head", "n_embd")})
    return cfg

_GPT_FIELDS = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "n_unmasked")
_DD_FIELDS = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "z_channels", "resolution", "in_channels",
              "out_ch", "double_z")


class ProjectConfigWarning(UserWarning):
    """The run folder's project yaml disagrees with the configuration passed in; the yaml wins."""


def find_project_yaml(checkpoint: str | Path) -> Path | None:
    """``configs/*-project.yaml`` (cin run folder) or ``configs/model.yaml`` (VQGAN download) of a checkpoint.

    Only the two official layouts are searched: ``<run>/checkpoints/<file>`` or
    ``<download>/ckpts/<file>`` -> ``<run or download>/configs/``. Among several project
    yamls (one per resumed run) the newest, i.e. last by timestamped name, is taken.
    """
    ckpt = Path(checkpoint)
    if ckpt.parent.name not in ("checkpoints", "ckpts"):
        return None
    cfg_dir = ckpt.parent.parent / "configs"
    if not cfg_dir.is_dir():
        return None
    found = sorted(cfg_dir.glob("*-project.yaml")) or sorted(cfg_dir.glob("model.yaml"))
    return found[-1] if found else None


def _load_yaml(path: Path) -> Any:
    try:
        import yaml  # PyYAML, installed with huggingface_hub
    except ImportError as e:  # pragma: no cover - environment problem
        raise RuntimeError(f"{path}: reading the project yaml needs PyYAML (pip install pyyaml)") from e
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path}: not a readable YAML file ({str(e).splitlines()[0]})") from None


def _norm(v: Any) -> Any:
    return [int(x) for x in v] if isinstance(v, (list, tuple)) else v


def architecture_from_yaml(path: str | Path) -> dict[str, Any]:
    """The architecture fields of a taming project yaml as a partial family config.

    Keys present: ``tokenizer`` (ddconfig, n_embed, embed_dim) when the yaml describes the
    VQGAN, ``transformer`` (GPT fields) and ``num_classes`` when it describes the
    class-conditional transformer. Unsupported setups (a permuter, a non-label condition)
    raise :class:`CheckpointError`.
    """
    path = Path(path)
    y = _load_yaml(path)
    model = y.get("model") if isinstance(y, Mapping) else None
    if not isinstance(model, Mapping) or not isinstance(model.get("params"), Mapping):
        raise CheckpointError(f"{path}: no 'model.params' section: not a taming project config")
    p = model["params"]
    out: dict[str, Any] = {}
    first = p.get("first_stage_config", {}).get("params") if "transformer_config" in p else p
    if isinstance(first, Mapping) and "ddconfig" in first:
        dd = first["ddconfig"]
        out["tokenizer"] = {"ddconfig": {k: _norm(dd[k]) for k in _DD_FIELDS if k in dd},
                            **{k: int(first[k]) for k in ("n_embed", "embed_dim") if k in first}}
    if "transformer_config" in p:
        tp = p["transformer_config"].get("params", {})
        out["transformer"] = {k: int(tp[k]) for k in _GPT_FIELDS if k in tp}
        perm = p.get("permuter_config")
        if perm and not str(perm.get("target", "")).endswith("Identity"):
            raise CheckpointError(f"{path}: permuter {perm.get('target')!r} is not supported (only the identity order)")
        cond = p.get("cond_stage_config", {})
        if not str(cond.get("target", "")).endswith("Labelator"):
            raise CheckpointError(f"{path}: condition {cond.get('target')!r} is not supported: visbpp scores "
                                  "class-conditional taming models (Labelator)")
        if "n_classes" in cond.get("params", {}):
            out["num_classes"] = int(cond["params"]["n_classes"])
    return out


def disagreements(config: Mapping[str, Any], arch: Mapping[str, Any]) -> list[str]:
    """'field: given X, yaml Y' for every architecture field where ``arch`` differs from ``config``."""
    diffs = []
    for k, v in arch.get("transformer", {}).items():
        have = config.get("transformer", {}).get(k, 0 if k == "n_unmasked" else None)
        if _norm(have) != v:
            diffs.append(f"transformer.{k}: given {have!r}, yaml {v!r}")
    tok = arch.get("tokenizer", {})
    for k, v in tok.get("ddconfig", {}).items():
        have = config.get("tokenizer", {}).get("ddconfig", {}).get(k)
        if _norm(have) != v:
            diffs.append(f"tokenizer.ddconfig.{k}: given {have!r}, yaml {v!r}")
    for k in ("n_embed", "embed_dim"):
        if k in tok and config.get("tokenizer", {}).get(k) != tok[k]:
            diffs.append(f"tokenizer.{k}: given {config.get('tokenizer', {}).get(k)!r}, yaml {tok[k]!r}")
    if "num_classes" in arch and config.get("num_classes") != arch["num_classes"]:
        diffs.append(f"num_classes: given {config.get('num_classes')!r}, yaml {arch['num_classes']!r}")
    return diffs


def merge(config: Mapping[str, Any], arch: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the architecture fields of ``arch`` written over it (derived fields updated)."""
    out = copy.deepcopy(dict(config))
    out.setdefault("transformer", {}).update(arch.get("transformer", {}))
    tok = arch.get("tokenizer", {})
    if tok:
        t = out.setdefault("tokenizer", {})
        t.setdefault("ddconfig", {}).update(tok.get("ddconfig", {}))
        t.update({k: v for k, v in tok.items() if k != "ddconfig"})
        dd = t["ddconfig"]
        side = dd["resolution"] // 2 ** (len(dd["ch_mult"]) - 1)
        out["image_size"] = dd["resolution"]
        out["latent_hw"] = [side, side]
        out["tokens_per_image"] = side * side
    if "num_classes" in arch:
        out["num_classes"] = arch["num_classes"]
        out.setdefault("net2net", {}).setdefault("cond_stage_config", {}).setdefault("params", {})["n_classes"] = (
            arch["num_classes"])
    return out


def resolve(config: Mapping[str, Any], checkpoint: str | Path, part: str) -> tuple[dict[str, Any], list[str]]:
    """The configuration to build ``part`` ("tokenizer" or "transformer") of ``checkpoint`` from.

    ``config`` unless a run-folder yaml says otherwise. Returns (config, disagreements
    that concern ``part``); those are also issued as one :class:`ProjectConfigWarning`.
    """
    yml = find_project_yaml(checkpoint)
    if yml is None:
        return dict(config), []
    arch = architecture_from_yaml(yml)
    diffs = [d for d in disagreements(config, arch) if d.startswith("tokenizer.") == (part == "tokenizer")]
    if diffs:
        warnings.warn(ProjectConfigWarning(
            f"{yml}: the run's own config disagrees with the configuration passed in for {checkpoint} "
            f"({'; '.join(diffs)}); building the architecture from the yaml."), stacklevel=3)
    return merge(config, arch), diffs
