"""Getting checkpoint files onto disk: the Hugging Face hub, plain HTTPS with resume, archives, and
Google Drive files (through the optional ``gdown`` package: ``pip install visbpp[gdrive]``).

Every download goes to ``<target>.part`` first (resumed with an HTTP Range request when a partial
file exists), is verified, and only then renamed into place; a checksum mismatch leaves no file.
Concurrent fetches of the same file serialise on a file lock and the second one finds it done.
"""

from __future__ import annotations

import http.client
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from filelock import FileLock

from . import checkpoints as ck
from .registry import CheckpointFile, ModelCard
from .store import cache_root

USER_AGENT = "visbpp/0.1 (+checkpoint fetch)"


def offline() -> bool:
    """True when the user asked for no network (``VISBPP_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``)."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("VISBPP_OFFLINE", "HF_HUB_OFFLINE"))


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
                        while chunk := resp.read(ck.CHUNK):
                            fh.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(dest.name, done, total)
                except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                    raise ck.FetchError(
                        f"download of {dest.name} interrupted at {done} bytes ({e}); run the same command again to resume"
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


def _extract(archive: Path, into: Path) -> None:
    """Unpack an archive safely (no absolute paths, no links escaping ``into``)."""
    into.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                target = (into / name).resolve()
                if not str(target).startswith(str(into.resolve())):
                    raise ck.FetchError(f"{archive}: refusing member outside the target folder: {name}")
            z.extractall(into)
        return
    try:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise ck.FetchError(f"{archive}: cannot unpack ({e}); delete it and fetch again") from None


def _hub_download(f: CheckpointFile, progress: ck.ProgressFn | None) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(
            repo_id=f.repo[3:], filename=f.filename, revision=f.revision,
            cache_dir=str(cache_root() / "hf"), endpoint=os.environ.get("HF_ENDPOINT"),
        ))
    except Exception as e:  # noqa: BLE001 - huggingface_hub raises many types; name the file
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ck.FetchError(
            f"{f.filename} from {f.url}: {msg}. No network or offline mode? Download it by hand and pass "
            f"--checkpoint-dir, or list it in {cache_root() / 'checkpoints.toml'}."
        ) from None


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
        raise ck.MissingCheckpointError(
            f"offline mode: {f.filename} ({model_id or f.role}) is not on disk. Expected at {ck.cached_path(f)}; "
            f"download {f.url} there, or unset VISBPP_OFFLINE/HF_HUB_OFFLINE and run `visbpp fetch`."
        )
    if f.source_kind == "hub":
        path = _hub_download(f, progress)
    elif f.source_kind == "gdrive":
        path = _gdrive_download(f, progress, model_id)
    elif f.source_kind == "http":
        path = http_download(f.direct_url or f.url, ck.cached_path(f), progress, expected_sha256=f.sha256)
    else:  # archive: download once, unpack every member next to each other, drop the archive
        target_root = ck.cached_path(f).parents[len(Path(f.archive_member or f.filename).parts) - 1]
        with FileLock(str(target_root) + ".lock"):
            if not ck.cached_path(f).is_file():
                archive = cache_root() / "downloads" / Path(f.cache_relpath).parts[0] / Path(f.url).name
                http_download(f.url, archive, progress)
                _extract(archive, target_root)
                archive.unlink(missing_ok=True)
        path = ck.cached_path(f)
        if not path.is_file():
            raise ck.FetchError(f"{f.url}: archive has no member {f.archive_member}; the archive layout changed?")
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

