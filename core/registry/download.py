"""Getting checkpoint files onto disk: the Hugging Face hub, plain HTTPS with resume, archives, and
Google Drive files (through the optional ``gdown`` package: ``pip install visbpp[gdrive]``).

Every download goes to ``<target>.part`` first (resumed with an HTTP Range request when a partial
file exists), is verified, and only then renamed into place; a checksum mismatch leaves no file.
Concurrent fetches of the same file serialise on a file lock and the second one finds it done.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

from filelock import FileLock

from visbpp.core.files import cache_root
from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry.catalog import CheckpointFile, ModelCard

USER_AGENT = "visbpp/0.1 (+checkpoint fetch)"
MIRROR_ENV = "VISBPP_HTTP_MIRROR"
READ_CHUNK = 64 << 10  # bytes per read: what arrived is on disk before the next read blocks
PROBE_SECONDS = 2.5    # name resolution + TCP connect to a download host, at most (one try, no retries)


class NetworkUnreachable(ck.FetchError):
    """A download host cannot be resolved or connected to: no network (or no route to it)."""


_probed: dict[tuple[str, int], str] = {}   # (host, port) -> "" when reachable, else why not (this process)


def _resolve_and_connect(host: str, port: int) -> str:
    """"" when ``host:port`` takes a TCP connection, else the reason; never longer than PROBE_SECONDS."""
    result: list[str] = []

    def probe() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            result.append(f"cannot resolve {host} ({e.strerror or e})")
            return
        last = ""
        for family, kind, proto, _, addr in infos[:4]:
            try:
                with socket.socket(family, kind, proto) as sock:
                    sock.settimeout(PROBE_SECONDS)
                    sock.connect(addr)
                result.append("")
                return
            except OSError as e:
                last = f"cannot connect to {host}:{port} ({e.strerror or e})"
        result.append(last or f"cannot connect to {host}:{port}")

    t = threading.Thread(target=probe, daemon=True, name=f"probe {host}")
    t.start()
    t.join(PROBE_SECONDS)
    return result[0] if result else f"no answer from {host}:{port} within {PROBE_SECONDS:g} s"


def check_reachable(url: str, what: str) -> None:
    """:class:`NetworkUnreachable` (within about PROBE_SECONDS, once per host and process) when the
    host of ``url`` cannot be resolved or connected to, naming it and what to do instead."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    key = (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    if key not in _probed:
        _probed[key] = _resolve_and_connect(*key)
    if _probed[key]:
        raise NetworkUnreachable(
            f"network unreachable: {_probed[key]}; {what} was not downloaded. Without a network, copy the file "
            f"from {url} by hand and pass --checkpoint-dir (or list it in {cache_root() / 'checkpoints.toml'}); "
            f"behind a mirror, set HF_ENDPOINT (hub files) or {MIRROR_ENV} (HTTPS files)")


def _hub_progress(name: str, progress: ck.ProgressFn | None):
    """A tqdm class for ``hf_hub_download`` that reports to ``progress`` under the file's own name
    (the hub shortens long names in its bars) and prints nothing itself."""
    if progress is None:
        return None
    from tqdm.std import tqdm

    class HubProgress(tqdm):
        def __init__(self, *a, **kw):
            kw["disable"] = True
            super().__init__(*a, **kw)
            self.done, self.size = 0, kw.get("total")
            progress(name, self.done, self.size)

        def update(self, n=1):
            self.done += int(n or 0)
            progress(name, self.done, self.size)

    return HubProgress


def offline() -> bool:
    """True when the user asked for no network (``VISBPP_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("VISBPP_OFFLINE", "HF_HUB_OFFLINE"))


def mirrored(url: str) -> str:
    """``url`` through the HTTP mirror, if one is set (``$VISBPP_HTTP_MIRROR``, else ``[mirror] http``
    in checkpoints.toml): ``https://HOST/PATH`` becomes ``<mirror>/HOST/PATH``."""
    base = os.environ.get(MIRROR_ENV) or ck.http_mirror()
    parts = urllib.parse.urlsplit(url)
    if not base or parts.scheme not in ("http", "https"):
        return url
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def http_download(url: str, dest: Path, progress: ck.ProgressFn | None = None, timeout: float = 60.0,
                  expected_sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` resumably. Returns ``dest``. Raises FetchError with the reason."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with FileLock(str(dest) + ".lock"):
        if dest.is_file():
            return dest
        offset = part.stat().st_size if part.is_file() else 0
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:  # already complete
                resp = None
            else:
                raise ck.FetchError(f"{url}: HTTP {e.code} {e.reason}; cannot download {dest.name}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ck.FetchError(
                f"cannot reach {url} ({reason}). No network? Download the file by hand and put it at {dest}, "
                f"or point --checkpoint-dir at a folder that has it."
            ) from None
        if resp is not None:
            with resp:
                if offset and resp.status != 206:
                    offset = 0  # server ignored the Range request: start over
                length = resp.headers.get("Content-Length")
                total = offset + int(length) if length is not None else None
                done = offset
                try:
                    with open(part, "ab" if offset else "wb") as fh:
                        # read1: return what has arrived (up to READ_CHUNK) instead of waiting for a full
                        # chunk, and flush it, so Ctrl-C or a stall loses nothing already received
                        while chunk := resp.read1(READ_CHUNK):
                            fh.write(chunk)
                            fh.flush()
                            done += len(chunk)
                            if progress:
                                progress(dest.name, done, total)
                except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                    if isinstance(e, OSError) and e.errno is not None and not isinstance(e, TimeoutError):
                        raise ck.FetchError(f"{part}: cannot write the download ({e.strerror}); "
                                            f"free space or fix the folder, then run the same command again") from None
                    raise ck.FetchError(
                        f"download of {dest.name} from {url} interrupted at {done} bytes ({e}); "
                        f"run the same command again to resume"
                    ) from None
                if total is not None and done != total:
                    raise ck.FetchError(
                        f"download of {dest.name} ended early at {done} of {total} bytes; run the same command again to resume"
                    )
        if expected_sha256:
            got = ck.sha256_file(part)
            if got != expected_sha256:
                part.unlink()
                raise ck.FetchError(
                    f"{dest.name}: downloaded file has sha256 {got}, expected {expected_sha256}; removed it. "
                    f"The source may have changed or the transfer was corrupted; try again."
                )
        os.replace(part, dest)
    return dest


UNPACK_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


def _extract(archive: Path, into: Path) -> None:
    """Unpack an archive safely (no absolute paths, no links escaping ``into``); a truncated or
    corrupt archive is a FetchError naming it."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    target = (into / name).resolve()
                    if not str(target).startswith(str(into.resolve())):
                        raise ck.FetchError(f"{archive}: refusing member outside the target folder: {name}")
                z.extractall(into)
            return
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    except UNPACK_ERRORS as e:
        raise ck.FetchError(f"{archive}: cannot unpack ({type(e).__name__}: {e or 'archive ends early'}): "
                            f"the download is truncated or corrupt") from None


def _install_archive(f: CheckpointFile, archive: Path, target_root: Path) -> None:
    """Unpack ``archive`` into a temporary folder beside ``target_root``, check that it holds ``f``,
    then move every member into place: a kill or a bad archive never leaves a member that looks done."""
    target_root.parent.mkdir(parents=True, exist_ok=True)
    for stale in target_root.parent.glob(f".{target_root.name}.unpack-*"):  # from a killed fetch
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=target_root.parent, prefix=f".{target_root.name}.unpack-"))
    try:
        try:
            _extract(archive, tmp)
        except ck.FetchError as e:
            archive.unlink(missing_ok=True)
            raise ck.FetchError(f"{e}; removed it, run `visbpp fetch` again to download it anew") from None
        member = f.archive_member or f.filename
        if not (tmp / member).is_file():
            raise ck.FetchError(f"{f.url}: archive has no member {member}; the archive layout changed?")
        for p in sorted(tmp.rglob("*")):
            if p.is_file() and not p.is_symlink():
                dest = target_root / p.relative_to(tmp)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(p, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _hub_download(f: CheckpointFile, progress: ck.ProgressFn | None) -> Path:
    from huggingface_hub import errors as hfe
    from huggingface_hub import hf_hub_download

    endpoint = hub_endpoint()
    where = f"{endpoint}/{f.repo[3:]}/resolve/{f.revision or 'main'}/{f.filename}"
    check_reachable(where, f.filename)
    try:
        path = Path(hf_hub_download(
            repo_id=f.repo[3:], filename=f.filename, revision=f.revision,
            cache_dir=str(cache_root() / "hf"), endpoint=endpoint, tqdm_class=_hub_progress(f.filename, progress),
        ))
    except (hfe.EntryNotFoundError, hfe.RepositoryNotFoundError, hfe.RevisionNotFoundError) as e:
        raise ck.FetchError(f"{f.filename}: not found at {where} ({type(e).__name__}); "
                            f"is HF_ENDPOINT right, or did the repository move?") from None
    except hfe.LocalEntryNotFoundError:
        raise ck.FetchError(
            f"{f.filename}: cannot reach {endpoint} and the file is not in the cache. No network or offline "
            f"mode? Download {where} by hand and pass --checkpoint-dir, or list it in "
            f"{cache_root() / 'checkpoints.toml'}.") from None
    except Exception as e:  # noqa: BLE001 - huggingface_hub raises many types; name the file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ck.FetchError(
            f"{f.filename} from {where}: {msg}. Download it by hand and pass --checkpoint-dir, or list it in "
            f"{cache_root() / 'checkpoints.toml'}."
        ) from None
    _check_hub_blob(f, path, where)
    return path


def _check_hub_blob(f: CheckpointFile, path: Path, where: str) -> None:
    """The hub cache names an LFS file's blob after its ETag, the sha256 of the content: compare them,
    and on a mismatch remove the blob and its snapshot link (nothing wrong stays in place)."""
    expected = ck.hub_blob_sha256(path)
    if expected is None:
        return
    got = ck.file_sha256(path)  # memoised: the verification that follows does not hash it again
    if got == expected:
        return
    blob = path.resolve()
    blob.unlink(missing_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink(missing_ok=True)
    raise ck.FetchError(f"{f.filename} from {where}: received content has sha256 {got} but the server "
                        f"announced {expected}; removed it. The transfer or a proxy corrupted it: run "
                        f"`visbpp fetch` again.")


GDRIVE_URL_ENV = "VISBPP_GDRIVE_URL"  # download URL template with {id} (default: Google Drive's own)
GDRIVE_URL = "https://drive.google.com/uc?id={id}"


def _gdrive_by_hand(f: CheckpointFile, why: str, model_id: str = "") -> ck.MissingCheckpointError:
    fid = f.repo[len("gdrive:"):]
    return ck.MissingCheckpointError(
        f"{why}: {f.filename} ({model_id or f.role}) is a Google Drive file: {f.url} (file id {fid}). "
        f"Download it by hand (a browser, or `gdown {fid}`) and put it at {ck.cached_path(f)}, "
        f"or pass --checkpoint-dir DIR containing {f.filename}."
    )


def _gdrive_download(f: CheckpointFile, progress: ck.ProgressFn | None, model_id: str) -> Path:
    """Download a Drive file with gdown into a staging folder (gdown keeps its partial file there and
    resumes it on the next call), check it is not an HTML page, then move it into the cache."""
    try:
        import gdown
    except ImportError:
        raise _gdrive_by_hand(
            f, "the optional Google Drive downloader is not installed (pip install 'visbpp[gdrive]')", model_id
        ) from None
    import inspect

    dest = ck.cached_path(f)
    fid = f.repo[len("gdrive:"):]
    stage = cache_root() / "downloads" / "gdrive" / fid
    stage.mkdir(parents=True, exist_ok=True)
    staged = stage / f.filename
    url = os.environ.get(GDRIVE_URL_ENV, GDRIVE_URL).format(id=fid)
    try:
        check_reachable(url, f.filename)
    except NetworkUnreachable as e:
        raise _gdrive_by_hand(f, str(e).split(";")[0], model_id) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(dest) + ".lock"):
        if dest.is_file():
            return dest
        if not staged.is_file():
            kwargs: dict = {"quiet": progress is not None, "resume": True}
            if progress is not None and "progress" in inspect.signature(gdown.download).parameters:
                kwargs["progress"] = lambda done, total: progress(f.filename, done, total)
            try:
                got = gdown.download(url=url, output=str(staged), **kwargs)
            except Exception as e:  # noqa: BLE001 - gdown/requests raise many types; name the file
                msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise _gdrive_by_hand(f, f"download from {url} failed ({msg}); rerun `visbpp fetch` to resume",
                                      model_id) from None
            if got is None or not staged.is_file():
                raise _gdrive_by_hand(f, f"download from {url} returned no file", model_id)
        with open(staged, "rb") as fh:
            head = fh.read(512).lstrip().lower()
        if not head or head.startswith((b"<!doctype", b"<html")):
            staged.unlink()
            raise _gdrive_by_hand(f, f"{url} returned a web page, not the checkpoint (quota or access limit?)", model_id)
        try:
            digest = ck.verify(f, staged)  # registry sha256, else the one recorded on the first download
        except ck.FetchError:
            staged.unlink()
            raise
        os.replace(staged, dest)
        ck._record(dest.resolve(), digest)  # same bytes: remember the checksum under the final path
    return dest


def fetch_file(f: CheckpointFile, progress: ck.ProgressFn | None = None, model_id: str = "") -> Path:
    """Make sure ``f`` is on disk and verified; returns its path."""
    have = ck.locate(f)
    if have is not None:
        ck.verify(f, have)
        return have
    if f.source_kind == "bundled":
        raise ck.FetchError(
            f"{f.filename} should ship inside the visbpp package at {ck.bundled_path(f)} but is missing; "
            f"reinstall visbpp (or regenerate it with `visbpp zoo train`)."
        )
    if f.source_kind == "manual":
        raise ck.MissingCheckpointError(
            f"{f.filename} ({model_id or f.role}) has no direct download link: get the folder from {f.url} "
            f"and put {f.archive_member or f.filename} at {ck.cached_path(f)} (or pass --checkpoint-dir)."
        )
    if f.source_kind == "gdrive" and offline():
        raise _gdrive_by_hand(f, "offline mode (VISBPP_OFFLINE/HF_HUB_OFFLINE)", model_id)
    if offline():
        src = (f"{hub_endpoint()}/{f.repo[3:]}/resolve/{f.revision or 'main'}/{f.filename}"
               if f.source_kind == "hub" else mirrored(f.direct_url or f.url))
        raise ck.MissingCheckpointError(
            f"offline mode: {f.filename} ({model_id or f.role}) is not on disk. Expected at {ck.cached_path(f)}; "
            f"download {src} there, or unset VISBPP_OFFLINE/HF_HUB_OFFLINE and run `visbpp fetch`."
        )
    if progress is not None:   # a line from the first moment, before any byte arrives
        progress(f.filename, 0, None)
    if f.source_kind == "hub":
        path = _hub_download(f, progress)
    elif f.source_kind == "gdrive":
        path = _gdrive_download(f, progress, model_id)
    elif f.source_kind == "http":
        check_reachable(mirrored(f.direct_url or f.url), f.filename)
        path = http_download(mirrored(f.direct_url or f.url), ck.cached_path(f), progress, expected_sha256=f.sha256)
    else:  # archive: download once, unpack every member next to each other, drop the archive
        check_reachable(mirrored(f.url), f.filename)
        target_root = ck.cached_path(f).parents[len(Path(f.archive_member or f.filename).parts) - 1]
        with FileLock(str(target_root) + ".lock"):
            if not ck.cached_path(f).is_file():
                archive = cache_root() / "downloads" / Path(f.cache_relpath).parts[0] / Path(f.url).name
                http_download(mirrored(f.url), archive, progress)
                _install_archive(f, archive, target_root)
                archive.unlink(missing_ok=True)
        path = ck.cached_path(f)
    ck.verify(f, path)
    return path


def fetch_models(cards: list[ModelCard], progress: ck.ProgressFn | None = None) -> dict[str, Path]:
    """Fetch every file of ``cards`` (a tokenizer shared by several models is fetched once)."""
    done: dict[str, Path] = {}
    for card in cards:
        for f in ck.files_for(card):
            key = f.cache_relpath
            if key not in done:
                done[key] = fetch_file(f, progress, card.id)
    return done

