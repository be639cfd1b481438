"""Safe reading of checkpoint files and strict state-dict loading with clear errors.

Never executes pickled code: ``torch.load(weights_only=True)`` or safetensors only. Files
written by training scripts also pickle non-tensor objects (an ``argparse.Namespace`` of
arguments, Lightning callbacks keyed by their class): each class a file names is read as an
inert stand-in that only receives data (``__new__`` + state), then turned into plain data
(a dict of its state, or the class's dotted name). A file that *calls* anything other than
the few plain constructors allowed (``pathlib`` paths) is refused: calling is how pickles run code.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable, Mapping

import torch

from visbpp.core.errors import CheckpointError

__all__ = ["CheckpointError", "read_checkpoint", "read_state_dict", "strict_load", "unwrap"]


SAFETENSORS_CACHE_ENV = "VISBPP_SAFETENSORS_CACHE"  # "1": keep fast safetensors copies of loaded checkpoints


def read_checkpoint(path: str | os.PathLike, *, safetensors_cache: bool | None = None) -> dict:
    """Load a checkpoint file without executing code. Returns the top-level object (a dict).

    With ``safetensors_cache`` (default: ``$VISBPP_SAFETENSORS_CACHE`` is "1") the tensors of the
    file are also saved once as ``<cache>/safetensors/<sha256 of the source>.safetensors`` and
    read from there (memory-mapped) on later calls; non-tensor entries (epoch, args...) are not
    kept, which no loader needs.
    """
    path = os.fspath(path)
    if safetensors_cache is None:
        safetensors_cache = os.environ.get(SAFETENSORS_CACHE_ENV, "").lower() in ("1", "true", "yes")
    if safetensors_cache and not path.endswith(".safetensors") and os.path.isfile(path):
        return _read_through_safetensors(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: file is empty")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:  # noqa: BLE001 - rephrase with the file name
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    stand_ins = _stand_ins(path)
    try:
        with torch.serialization.safe_globals(stand_ins):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=_can_mmap(path))
    except Exception as e:  # noqa: BLE001
        text = _ANSI.sub("", str(e))
        refused = (_CALL_REFUSED, "unsupported global", "trying to call reduce")
        if any(m in text.lower() for m in refused):
            reason = _reason(text, refused)
            raise CheckpointError(
                f"{path}: refused to load: the file contains pickled code or objects other than tensors and "
                f"plain data ({reason}). visbpp never executes code from checkpoint files; re-save the state "
                f"dict alone (torch.save(ckpt['model'], 'clean.pt')) from a trusted environment."
            ) from None
        reason = _reason(text, ("WeightsUnpickler error:",)) or type(e).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (truncated or corrupt?): {reason}") from None
    obj = _plain(obj)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict (state dict or container), found {type(obj).__name__}")
    return obj


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CALL_REFUSED = "visbpp-refused-call"
# Constructors a file may call: plain values with no side effects (Path(*parts) -> the path as a str).
_CALLABLE = {"pathlib.PosixPath", "pathlib.PurePosixPath", "pathlib.WindowsPath", "pathlib.PureWindowsPath",
             "pathlib.Path"}


class _StandIn:
    """Inert stand-in for a class a checkpoint names: may be created and given state, never called."""

    _name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{_CALL_REFUSED}: the file calls {self._name}(...)")

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state


class _PathStandIn(_StandIn):
    def __init__(self, *parts: Any) -> None:
        import pathlib

        pure = pathlib.PureWindowsPath if "Windows" in self._name else pathlib.PurePosixPath
        self.__dict__["_state"] = str(pure(*(str(p) for p in parts)))


def _stand_ins(path: str) -> list:
    """A stand-in class per global the (zip-format) file names; [] for other files."""
    try:
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - legacy or unreadable file: torch.load reports it
        return []
    out = []
    for name in names:
        base = _PathStandIn if name in _CALLABLE else _StandIn
        out.append((type(name.rsplit(".", 1)[-1], (base,), {"_name": name}), name))
    return out


def _plain(obj: Any) -> Any:
    """Stand-ins -> plain data: an instance -> its state (a Namespace -> dict), a class -> its dotted name."""
    if isinstance(obj, _StandIn):
        return _plain(obj.__dict__.get("_state", {}))
    if isinstance(obj, type) and issubclass(obj, _StandIn):
        return obj._name
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        out = {_plain(k): _plain(v) for k, v in obj.items()}
        return out if type(obj) is dict else type(obj)(out)
    if type(obj) in (list, tuple):
        return type(obj)(_plain(v) for v in obj)
    return obj


def _reason(text: str, markers: Iterable[str]) -> str:
    """The line of torch's message that says what went wrong (torch wraps it in advice about weights_only)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for m in markers:
        for i, ln in enumerate(lines):
            if m.lower() in ln.lower():
                ln = ln[ln.lower().index(m.lower()):].replace(f"{_CALL_REFUSED}: ", "")
                if ln.endswith(":") and i + 1 < len(lines):
                    ln = f"{ln} {lines[i + 1]}"
                return ln[:300]
    return lines[0][:300] if lines else ""


def _can_mmap(path: str) -> bool:
    # zip-format torch files can be memory-mapped; legacy files cannot.
    try:
        import zipfile

        return zipfile.is_zipfile(path)
    except OSError:
        return False


def unwrap(obj: Mapping, containers: Iterable[str | None], path: str = "<checkpoint>") -> dict:
    """Pick the state dict out of a container.

    ``containers`` lists the accepted layouts in order, ``None`` meaning a bare state dict,
    e.g. ``("model", None)`` for files saved either as ``{"model": sd}`` or as ``sd``.
    """
    containers = list(containers)
    for c in containers:
        if c is None:
            if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
                return dict(obj)
        elif c in obj and isinstance(obj[c], Mapping):
            return dict(obj[c])
    top = ", ".join(sorted(map(str, obj.keys()))[:8])
    want = " or ".join("a bare state dict" if c is None else f"{{'{c}': state_dict}}" for c in containers)
    raise CheckpointError(f"{path}: unexpected container layout: expected {want}; top-level keys are [{top}]")


def strict_load(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    path: str = "<checkpoint>",
    *,
    drop: Iterable[str] = (),
    drop_prefixes: Iterable[str] = (),
    optional: Iterable[str] = (),
    dtype: torch.dtype = torch.float32,
) -> None:
    """Load ``state_dict`` into ``module`` requiring exactly its keys and shapes.

    ``drop``/``drop_prefixes``: keys of the file removed before matching (documented
    exceptions such as a stray ``freqs_cis`` or the VQGAN loss networks).
    ``optional``: module keys the file may lack (kept at their built value).
    Floating tensors are cast to ``dtype``. Raises :class:`CheckpointError` naming the
    file and the first mismatching keys; nothing is loaded on error.
    """
    drop = set(drop)
    drop_prefixes = tuple(drop_prefixes)
    sd = {k: v for k, v in state_dict.items() if k not in drop and not k.startswith(drop_prefixes)}
    not_tensors = [str(k) for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {', '.join(not_tensors[:5])}")
    own = module.state_dict()
    missing = [k for k in own if k not in sd and k not in set(optional)]
    unexpected = [k for k in sd if k not in own]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), first: {', '.join(missing[:5])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), first: {', '.join(unexpected[:5])}")
    bad_shapes = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in sd.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if bad_shapes:
        problems.append(f"{len(bad_shapes)} shape mismatch(es), first: {'; '.join(bad_shapes[:3])}")
    if problems:
        raise CheckpointError(
            f"{path}: does not match {type(module).__name__} ({'; '.join(problems)}). "
            f"Is this the right file for this model/size?"
        )
    cast = {
        k: (v.to(dtype) if v.is_floating_point() and own[k].is_floating_point() else v.to(own[k].dtype))
        for k, v in sd.items()
    }
    module.load_state_dict(cast, strict=not optional, assign=any(p.is_meta for p in own.values()))


def read_state_dict(path: str | os.PathLike, containers: Iterable[str | None], *, safetensors_cache: bool | None = None) -> dict:
    """``unwrap(read_checkpoint(path))`` (optionally through the safetensors copy)."""
    return unwrap(read_checkpoint(path, safetensors_cache=safetensors_cache), containers, os.fspath(path))


_SEP = "::"  # container/key separator inside the flat safetensors copy


def _read_through_safetensors(path: str) -> dict:
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from visbpp.core.files import atomic_write_text, cache_root
    from visbpp.core.registry.checkpoints import file_sha256, sha256_file

    fast = cache_root() / "safetensors" / f"{file_sha256(path)}.safetensors"
    sidecar = fast.with_name(fast.name + ".sha256")  # the copy's own sha256, written with it
    if fast.is_file():
        try:
            if sidecar.read_text().strip() != file_sha256(fast):
                raise ValueError("sha256 differs from the one recorded when it was written")
            with safe_open(str(fast), framework="pt") as fh:
                containers = json.loads((fh.metadata() or {}).get("containers", "[]"))
            flat = load_file(str(fast))
        except Exception:  # noqa: BLE001 - altered, truncated or unrecorded copy: rebuilt from the source below
            fast.unlink(missing_ok=True)
        else:
            obj: dict = {}
            for k, v in flat.items():
                c, sep, rest = k.partition(_SEP)
                if sep and c in containers:
                    obj.setdefault(c, {})[rest] = v
                else:
                    obj[k] = v
            return obj
    obj = read_checkpoint(path, safetensors_cache=False)
    flat, containers = {}, []
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            flat[k] = v
        elif isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values()):
            containers.append(k)
            flat.update({f"{k}{_SEP}{kk}": t for kk, t in v.items()})
    fast.parent.mkdir(parents=True, exist_ok=True)
    tmp = fast.with_name(fast.name + f".{os.getpid()}.tmp")
    # safetensors refuses tensors that share storage (e.g. aliased codebooks): save private copies
    save_file({k: v.detach().clone().contiguous() for k, v in flat.items()}, str(tmp),
              metadata={"source": path, "containers": json.dumps(containers)})
    atomic_write_text(sidecar, sha256_file(tmp) + "\n")
    os.replace(tmp, fast)
    return obj
