"""One config policy for every family: a declarative schema, unknown keys and wrong types are errors.

A family describes its ``config.json`` as a nested dict of key -> spec::

    SCHEMA = {"image_size": "int>0", "tokenizer": {"codebook_size": "int>0", "use_ema": "bool?"},
              "notes": "any", "upstream": "free"}

Specs: ``int``, ``int>0``, ``int>=0``, ``float``, ``float>0``, ``float>=0``, ``bool``, ``str``,
``ints``/``ints>0`` (list of ints), ``floats``, ``any`` (any value), ``free`` (a section whose
keys are not checked: provenance and statistics); a trailing ``?`` also allows null; a dict is a
nested section. :func:`check_config` raises :class:`~visbpp.core.errors.ConfigError` naming the
file (``where``), the dotted field and what is wrong: an unknown key (a typo must not be ignored),
a missing section, ``64.7`` or ``true`` for an int, ``"false"`` for a bool, a negative size,
``null`` where a value is required, a list where a number is expected.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import ConfigError

# Keys any family's config may carry beside its own: provenance, statistics and notes of the
# conformance fixtures and of ``config_for`` (never read to build a model).
METADATA: dict[str, Any] = {
    "family": "str", "model_id": "str", "notes": "any", "note": "any", "seed": "any", "set": "any",
    "images_source": "any", "weights": "any", "dtype": "str", "input_normalisation": "any",
    "upstream": "free", "derived": "free", "fixture_stats": "free",
}


def _type_ok(value: Any, base: str) -> bool:
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "bool":
        return isinstance(value, bool)
    if base == "str":
        return isinstance(value, str)
    if base in ("ints", "floats"):
        return isinstance(value, (list, tuple)) and all(_type_ok(v, base[:-1]) for v in value)
    raise ValueError(f"unknown config spec {base!r}")


_WHAT = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
         "ints": "a list of integers", "floats": "a list of numbers"}


def _check_value(value: Any, spec: str, field: str, where: str) -> None:
    nullable = spec.endswith("?")
    spec = spec.rstrip("?")
    if spec in ("any", "free"):
        if spec == "free" and value is not None and not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {field} must be a JSON object, got {value!r}")
        return
    if value is None:
        if nullable:
            return
        raise ConfigError(f"{where}: {field} must not be null")
    base, bound = spec, None
    for op in (">=0", ">0"):
        if spec.endswith(op):
            base, bound = spec[: -len(op)], op
    if not _type_ok(value, base):
        raise ConfigError(f"{where}: {field} must be {_WHAT[base]}{' (positive)' if bound == '>0' else ''}, "
                          f"got {value!r} ({type(value).__name__})")
    values = value if isinstance(value, (list, tuple)) else [value]
    if bound == ">0" and any(v <= 0 for v in values):
        raise ConfigError(f"{where}: {field} must be positive, got {value!r}")
    if bound == ">=0" and any(v < 0 for v in values):
        raise ConfigError(f"{where}: {field} must not be negative, got {value!r}")


def check_config(config: Any, schema: Mapping[str, Any], where: str = "config", prefix: str = "",
                 *, metadata: bool = True) -> None:
    """Check ``config`` against ``schema`` (see the module docstring); ``metadata``: also accept the
    shared :data:`METADATA` keys (top level only)."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where}: {prefix or 'the config'} must be a JSON object, got {type(config).__name__}")
    allowed = {**METADATA, **schema} if metadata and not prefix else dict(schema)
    for key, value in config.items():
        field = f"{prefix}.{key}" if prefix else str(key)
        if key not in allowed:
            known = ", ".join(sorted(k for k in allowed if k not in METADATA))
            raise ConfigError(f"{where}: unknown key {field!r}; known keys{' of ' + prefix if prefix else ''}: "
                              f"{known}. Fix its spelling or remove it")
        spec = allowed[key]
        if isinstance(spec, Mapping):
            if value is None:
                raise ConfigError(f"{where}: section {field!r} must be a JSON object, got null")
            check_config(value, spec, where, field, metadata=False)
        else:
            _check_value(value, spec, field, where)
