"""The cache directory and atomic file writes (a crash never leaves a half-written file in place)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from visbpp.core.errors import SettingsError

ASSETS_DIR = Path(__file__).resolve().parent / "assets"  # files shipped inside the package (the micro zoo)


class CacheDirError(SettingsError):
    """The cache dir (``$VISBPP_HOME``) cannot be created: says which and what to do."""


def cache_root() -> Path:
    """``$VISBPP_HOME`` if set, else the platform's user cache dir for visbpp (created on demand)."""
    env = os.environ.get("VISBPP_HOME")
    if env:
        root = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("visbpp", appauthor=False))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheDirError(f"cache dir {root}: cannot create it ({e.strerror or e}); "
                            f"set VISBPP_HOME to a writable folder") from None
    return root


def default_cache_dir(override: str | None = None) -> str:
    """``override``, else the project cache dir (``$VISBPP_HOME`` or the platform's user cache)."""
    if override:
        return os.path.abspath(os.path.expanduser(override))
    return str(cache_root())


def umask() -> int:
    """The process umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def with_path(e: OSError, path: str | os.PathLike) -> OSError:
    """``e`` naming ``path`` when it names none (``[Errno 28] No space left on device: '<path>'``)."""
    if e.filename is None and e.errno is not None:
        return type(e)(e.errno, e.strerror, os.fspath(path))
    return e


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``. The file
    gets the permissions the umask gives a new file (not mkstemp's 0600); errors name ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise with_path(e, path) from None
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise with_path(e, path) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """UTF-8; file names that are not valid UTF-8 (surrogate-escaped by Python) keep their bytes."""
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))
