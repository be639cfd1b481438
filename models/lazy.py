"""Lazy exports of a family package (PEP 562 ``__getattr__``).

A family package names its public objects (``FAMILY``, module classes, ...) without importing
its torch modules until one of them is used, so that its torch-free module ``official.py``
(the configuration of every registered size) imports without torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Callable, Mapping


class _LazyPackage(types.ModuleType):
    """A package whose exported name may equal a submodule's (``llamagen.preprocess``, a function of
    ``llamagen/preprocess.py``): importing that submodule does not replace the export, as an eager
    ``from .preprocess import preprocess`` in ``__init__`` would not have."""

    def __setattr__(self, name: str, value: object) -> None:
        where = self.__dict__.get("_EXPORTS", {}).get(name)
        if (isinstance(value, types.ModuleType) and where is not None
                and value.__name__ == f"{self.__name__}.{name}" == importlib.util.resolve_name(where, self.__name__)):
            value = getattr(value, name)
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` (the package's ``_EXPORTS``) maps each
    public name to the module defining it (relative to ``package`` or absolute); a name is imported
    on first access."""
    sys.modules[package].__class__ = _LazyPackage

    def __getattr__(name: str) -> object:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
