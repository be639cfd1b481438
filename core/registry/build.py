"""The one build/load path of every family: read -> unwrap -> family filter -> build on meta ->
strict load -> fp32, eval, no grad, the process's CPU linears (``core/linear``).

A family supplies only what is its own: how to build the module (a zero-argument callable),
which containers its files use, a ``select`` filter (prefixes, EMA mapping, documented
rewrites) and a ``check`` run after loading (structural buffers, aliases)::

    model = build_and_load(path, lambda: GPT(cfg), containers=("model", None),
                           drop=("freqs_cis",), check=my_check)

Modules are built on the meta device with every initialiser skipped (:func:`skip_init`), so no
random numbers are drawn, no memory is touched and no lazy torch subsystem is imported; the
file's tensors are then assigned.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterable, Iterator, Mapping, TypeVar

import torch
from torch import nn

from visbpp.core.linear import use_backend_linears
from visbpp.core.registry.checkpoint_io import read_checkpoint, strict_load, unwrap

M = TypeVar("M", bound=nn.Module)
StateDict = dict[str, torch.Tensor]
Select = Callable[[StateDict, nn.Module, str], StateDict]   # (state dict, meta module, path) -> state dict
Check = Callable[[nn.Module, str], None]                    # (loaded module, path) -> raise CheckpointError


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Within this block ``torch.nn.init.*`` and ``reset_parameters`` of every module do nothing.

    Used to build modules whose every tensor is then loaded from a file: the initialisers
    (e.g. ``nn.Embedding``'s ``normal_``) would only waste time and, on the meta device, pull
    in torch's symbolic-shape machinery.
    """
    init = torch.nn.init
    names = [n for n in dir(init) if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))]
    saved_init = {n: getattr(init, n) for n in names}
    classes = {c for c in _module_classes() if "reset_parameters" in vars(c)}
    saved_reset = {c: vars(c)["reset_parameters"] for c in classes}

    def keep(tensor, *args, **kwargs):  # noqa: ANN001 - same signature as the initialisers
        return tensor

    try:
        for n in names:
            setattr(init, n, keep)
        for c in classes:
            c.reset_parameters = lambda self, *a, **k: None
        yield
    finally:
        for n, f in saved_init.items():
            setattr(init, n, f)
        for c, f in saved_reset.items():
            c.reset_parameters = f


def _module_classes() -> set[type]:
    seen: set[type] = set()
    todo = [nn.Module]
    while todo:
        c = todo.pop()
        for s in c.__subclasses__():
            if s not in seen:
                seen.add(s)
                todo.append(s)
    return seen


def build_on_meta(build: Callable[[], M]) -> M:
    """``build()`` on the meta device without running any initialiser (see :func:`skip_init`)."""
    with torch.device("meta"), skip_init():
        return build()


def finish(module: M) -> M:
    """fp32, eval mode, no gradients, and the process's float32 CPU linears (``core/linear``: the
    plain ``nn.Linear`` layers of the model files become ``Linear``, same parameters): the state every
    loaded module is handed out in."""
    module.float()
    module.eval()
    module.requires_grad_(False)
    return use_backend_linears(module)


def build_and_load(
    path: str | os.PathLike,
    build: Callable[[], M],
    *,
    containers: Iterable[str | None] = (None,),
    select: Select | None = None,
    drop: Iterable[str] = (),
    drop_prefixes: Iterable[str] = (),
    optional: Iterable[str] = (),
    check: Check | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> M:
    """Read ``path`` (never executing code), pick the state dict out of one of ``containers``
    (``None`` = a bare state dict), apply the family's ``select`` filter, build the module on
    meta, load it strictly (``drop``/``drop_prefixes``: documented extra keys of the file;
    ``optional``: module keys the file may lack), run ``check`` and return it fp32/eval/no-grad.

    ``state_dict``: an already read and unwrapped state dict of ``path`` (when a family reads
    one file for several modules); ``containers`` is then not used.
    Every mismatch raises :class:`~visbpp.core.errors.CheckpointError` naming the file.
    """
    path = os.fspath(path)
    sd = dict(state_dict) if state_dict is not None else unwrap(read_checkpoint(path), containers, path)
    module = build_on_meta(build)
    if select is not None:
        sd = select(sd, module, path)
    strict_load(module, sd, path, drop=drop, drop_prefixes=drop_prefixes, optional=optional)
    if check is not None:
        check(module, path)
    return finish(module)
