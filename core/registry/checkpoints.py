"""Checkpoint management: where files live, downloading them, and knowing they are the right ones.

Layout under the cache dir (``VISBPP_HOME`` or the platformdirs user cache):

    checkpoints/<host-or-hf-repo>/<member path>   downloaded (and unpacked) checkpoint files
    hf/                                          the Hugging Face hub cache (hub-hosted files)
    downloads/                                   archives and partial downloads (``*.part``, resumable)
    checksums.json                               sha256 recorded on first sight (trust on first use)
    safetensors/<sha256>.safetensors             optional fast-loading copies, keyed by the source sha256

Where a file is looked up, in order: a per-model path from ``checkpoints.toml`` (in the cache dir or
``VISBPP_CHECKPOINTS``), an explicit ``--checkpoint-dir`` (by archive member path, then by file name),
then the cache. Nothing here imports torch at module level.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from filelock import FileLock

from visbpp.core.files import ASSETS_DIR, atomic_write_text, cache_root
from visbpp.core.registry.catalog import CheckpointFile, ModelCard, TokenizerCard, get_card, get_tokenizer_card, model_cards

# progress(description, done_bytes, total_bytes_or_None)
ProgressFn = Callable[[str, int, "int | None"], None]
CHUNK = 1 << 20


from visbpp.core.errors import FetchError  # noqa: E402 - a checkpoint could not be fetched or verified


class MissingCheckpointError(FetchError):
    """A needed checkpoint is not on disk."""


# --------------------------------------------------------------------------- locating


def files_for(card: ModelCard) -> list[CheckpointFile]:
    """Every file a model needs: its transformer file(s) and its tokenizer file (unless a file carries it)."""
    files = list(card.files)
    if not any(f.contains_tokenizer for f in files):
        tcard = get_tokenizer_card(card.tokenizer_id)
        files += [tcard.file, *tcard.extra_files]
    return files


def cached_path(f: CheckpointFile) -> Path:
    """Where the cache keeps this file (whether or not it is there)."""
    return cache_root() / "checkpoints" / f.cache_relpath


def _toml_path() -> Path:
    return Path(os.environ.get("VISBPP_CHECKPOINTS", cache_root() / "checkpoints.toml"))


def _toml() -> dict:
    p = _toml_path()
    if not p.is_file():
        return {}
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise FetchError(f"{p}: not valid TOML ({e}); expected lines like \"c2i_B_256.pt\" = \"/data/c2i_B_256.pt\"") from None


def _user_paths() -> dict[str, str]:
    """Per-file paths a user declared in checkpoints.toml: ``"<repo-slug>/<member>" = "/path"`` or by file name."""
    data = _toml()
    return {str(k): str(v) for k, v in data.get("paths", data).items() if isinstance(v, str)}


def http_mirror() -> str | None:
    """``[mirror] http = "URL"`` of checkpoints.toml: a mirror for plain-HTTPS downloads (or None)."""
    m = _toml().get("mirror")
    url = m.get("http") if isinstance(m, dict) else None
    return url if isinstance(url, str) and url else None


def bundled_path(f: CheckpointFile) -> Path:
    """Where a file shipped inside the package lives (``repo`` = "bundled:<folder under core/assets>")."""
    return ASSETS_DIR / f.repo[len("bundled:"):] / f.filename


def locate(f: CheckpointFile, checkpoint_dir: str | os.PathLike | None = None) -> Path | None:
    """The existing file on disk for ``f``, or None."""
    if f.source_kind == "bundled":
        p = bundled_path(f)
        return p if p.is_file() else None
    user = _user_paths()
    for key in (f.cache_relpath, f.archive_member, f.filename):
        if key and key in user:
            p = Path(user[key]).expanduser()
            if not p.is_file():
                raise MissingCheckpointError(
                    f"{_toml_path()}: the path given for {key!r} does not exist: {p}; fix or remove that line")
            return p
    if checkpoint_dir is not None:
        d = Path(checkpoint_dir).expanduser()
        for rel in (f.archive_member, f.cache_relpath, f.filename):
            if rel and (d / rel).is_file():
                return d / rel
    p = cached_path(f)
    if p.is_file():
        return p
    if f.source_kind == "hub":
        return _hub_cached(f)
    return None


def _hub_cached(f: CheckpointFile) -> Path | None:
    """The file in the Hugging Face cache under the cache dir, if a previous fetch put it there."""
    from huggingface_hub import try_to_load_from_cache

    # visbpp's own hub cache first, then huggingface_hub's default one (files a user already has)
    for cache_dir in (str(cache_root() / "hf"), None):
        hit = try_to_load_from_cache(f.repo[3:], f.filename, cache_dir=cache_dir, revision=f.revision)
        if isinstance(hit, str) and Path(hit).is_file():
            return Path(hit)
    return None


def require(f: CheckpointFile, checkpoint_dir: str | os.PathLike | None = None, model_id: str = "") -> Path:
    """Like :func:`locate` but raises :class:`MissingCheckpointError` with the expected path and how to get it."""
    p = locate(f, checkpoint_dir)
    if p is not None:
        return p
    what = f"{model_id}: " if model_id else ""
    how = (
        f"run `visbpp fetch {model_id}`" if f.source_kind != "manual" and model_id
        else f"download it from {f.url}"
    )
    where = f"{checkpoint_dir}/{f.archive_member or f.filename}" if checkpoint_dir else str(cached_path(f))
    raise MissingCheckpointError(
        f"{what}checkpoint {f.filename} ({f.role}) not found. Expected at {where}; {how}, "
        f"or pass --checkpoint-dir DIR containing {f.archive_member or f.filename}."
    )


# --------------------------------------------------------------------------- checksums


def sha256_file(path: str | os.PathLike, progress: ProgressFn | None = None) -> str:
    h = hashlib.sha256()
    total = os.path.getsize(path)
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK * 8):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(f"sha256 {Path(path).name}", done, total)
    return h.hexdigest()


def _checksum_db() -> Path:
    return cache_root() / "checksums.json"


def _load_db() -> dict:
    p = _checksum_db()
    try:
        return json.loads(p.read_text()) if p.is_file() else {}
    except json.JSONDecodeError:
        raise FetchError(f"{p}: corrupt checksum database; delete it to re-record checksums") from None


def _fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised by (path, size, mtime) in the checksum database."""
    path = Path(path).resolve()
    with FileLock(str(_checksum_db()) + ".lock"):
        db = _load_db()
        entry = db.get("files", {}).get(str(path))
        fp = _fingerprint(path)
        if entry and entry.get("size") == fp["size"] and entry.get("mtime_ns") == fp["mtime_ns"]:
            return entry["sha256"]
    digest = sha256_file(path)
    _record(path, digest)
    return digest


def _record(path: Path, digest: str, key: str | None = None) -> None:
    with FileLock(str(_checksum_db()) + ".lock"):
        db = _load_db()
        db.setdefault("files", {})[str(path)] = {"sha256": digest, **_fingerprint(path)}
        if key:
            db.setdefault("first_seen", {}).setdefault(key, digest)
        atomic_write_text(_checksum_db(), json.dumps(db, indent=1, sort_keys=True))


def hub_blob_sha256(path: str | os.PathLike) -> str | None:
    """The sha256 a Hugging Face cache file must have: its blob is named after the ETag, which for
    LFS files is the sha256 of the content (None for other files and paths outside a hub cache)."""
    path = Path(path)
    blob = path.resolve()
    if blob.parent.name != "blobs" or not re.fullmatch(r"[0-9a-f]{64}", blob.name):
        return None
    return blob.name


def _forget_first_seen(key: str) -> None:
    with FileLock(str(_checksum_db()) + ".lock"):
        db = _load_db()
        if db.get("first_seen", {}).pop(key, None) is not None:
            atomic_write_text(_checksum_db(), json.dumps(db, indent=1, sort_keys=True))


def _expected(f: CheckpointFile, path: Path, db: dict) -> tuple[str | None, str]:
    """(expected sha256, where it comes from): the registry, the hub blob name, else first seen."""
    if f.sha256:
        return f.sha256, "the registry"
    hub = hub_blob_sha256(path)
    if hub:
        return hub, "the hub's ETag (the blob's name)"
    return db.get("first_seen", {}).get(f.cache_relpath), "the checksum recorded when this file was first seen"


def verify(f: CheckpointFile, path: str | os.PathLike) -> str:
    """Check ``path`` against the registry sha256/size, the sha256 a hub blob is named after, or the
    sha256 recorded the first time this file (by repository and member path) was seen; record it
    then. Returns the sha256."""
    path = Path(path)
    if f.size_bytes is not None and path.stat().st_size != f.size_bytes:
        raise FetchError(f"{path}: size {path.stat().st_size} bytes, expected {f.size_bytes} for {f.filename}")
    digest = file_sha256(path)
    expected, src = _expected(f, path, _load_db())
    if expected and digest != expected:
        raise FetchError(
            f"{path}: sha256 {digest} does not match {src} ({expected}) for {f.cache_relpath}. " + (
                "The file shipped with visbpp was changed: reinstall visbpp, or regenerate the micro zoo with "
                "`visbpp zoo train --out <its folder>` (`visbpp fetch` cannot restore bundled files)."
                if f.source_kind == "bundled" else
                "The file is corrupt or not the official one: `visbpp fetch --check --repair MODEL` removes a "
                "bad copy from the cache and forgets a recorded checksum; then `visbpp fetch MODEL` gets it again.")
        )
    first = _load_db().get("first_seen", {}).get(f.cache_relpath)
    if first != digest and (not first or expected != first):  # nothing recorded, or an authority overrules it
        _forget_first_seen(f.cache_relpath)
        _record(path.resolve(), digest, key=f.cache_relpath)
    return digest



def resolve(f: CheckpointFile, checkpoint_dir: str | os.PathLike | None = None, model_id: str = "") -> str:
    """Path of checkpoint file ``f`` on disk, verified (:func:`require`, then :func:`verify`: the
    registry sha256, or the sha256 recorded the first time this file was seen, memoised by size and
    mtime). Raises :class:`MissingCheckpointError` naming the expected path, or :class:`FetchError`."""
    path = require(f, checkpoint_dir, model_id)
    verify(f, path)
    return str(path)


def resolve_card_files(card: ModelCard, tokenizer: TokenizerCard, checkpoint_dir: str | os.PathLike | None = None
                       ) -> dict[str, str]:
    """Verified paths of every file a registered model is scored with: ``transformer``, ``tokenizer``
    (the AR file itself when it carries the tokenizer it was trained with) and the tokenizer's extra
    files by role."""
    tr_file = next(f for f in card.files if f.role == "transformer")
    paths = {"transformer": resolve(tr_file, checkpoint_dir, card.id)}
    paths["tokenizer"] = paths["transformer"] if tr_file.contains_tokenizer else resolve(tokenizer.file, checkpoint_dir, card.id)
    for f in tokenizer.extra_files:
        paths[f.role] = resolve(f, checkpoint_dir, card.id)
    return paths

def repair(f: CheckpointFile, path: Path) -> str:
    """Make a file that fails verification fetchable again; returns what was done (one line).

    A copy in the cache (visbpp's or the hub's) that fails is removed and its first-seen checksum
    forgotten, so `visbpp fetch` downloads and checks it anew. A file of the user's own (from
    checkpoints.toml or --checkpoint-dir) is never removed: when only the first-seen checksum
    disagrees, that checksum is replaced by the file's (the user vouches for it by asking)."""
    try:
        verify(f, path)
        return f"ok\t{path}"
    except FetchError as e:
        reason = str(e).split(". ")[0]
    root = cache_root().resolve()
    in_cache = root in path.resolve().parents or root in path.absolute().parents
    authority = f.sha256 or hub_blob_sha256(path)
    _forget_first_seen(f.cache_relpath)
    if in_cache:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        blob.unlink(missing_ok=True)
        return f"removed\t{path} ({reason}); run `visbpp fetch` to download it again"
    if authority:
        return f"bad\t{path} ({reason}); replace this file of yours with the official one"
    verify(f, path)  # records its checksum as first seen
    return f"reset\t{path}: its sha256 is now the recorded one"


@dataclass(frozen=True)
class FileStatus:
    file: CheckpointFile
    state: str            # "missing" | "present" | "verified"
    path: Path | None
    size_bytes: int | None


def status(card: ModelCard, checkpoint_dir: str | os.PathLike | None = None) -> list[FileStatus]:
    """Local status of each file of a model, cheap: "verified" when its recorded checksum still
    applies (same size and mtime) and matches the registry/first-seen value, without re-hashing."""
    db = _load_db()
    out = []
    for f in files_for(card):
        try:
            p = locate(f, checkpoint_dir)
        except MissingCheckpointError:  # a checkpoints.toml line pointing nowhere: reported by run/fetch
            p = None
        if p is None:
            out.append(FileStatus(f, "missing", None, None))
            continue
        entry = db.get("files", {}).get(str(p.resolve()))
        fp = _fingerprint(p)
        expected = _expected(f, p, db)[0]
        ok = bool(entry and expected and entry["sha256"] == expected and entry.get("size") == fp["size"]
                  and entry.get("mtime_ns") == fp["mtime_ns"])
        out.append(FileStatus(f, "verified" if ok else "present", p, fp["size"]))
    return out


def summary_status(card: ModelCard, checkpoint_dir: str | os.PathLike | None = None) -> tuple[str, int]:
    """One word for a model (worst of its files) and its total size on disk."""
    st = status(card, checkpoint_dir)
    order = {"missing": 0, "present": 1, "verified": 2}
    worst = min(st, key=lambda s: order[s.state]).state if st else "missing"
    return worst, sum(s.size_bytes or 0 for s in st)


def resolve_ids(ids: Iterable[str] = (), family: str | None = None, all_models: bool = False) -> list[ModelCard]:
    """Cards named by ids/aliases, a family, or all of them (order kept, duplicates removed)."""
    cards = list(model_cards()) if all_models else []
    if family:
        cards += list(model_cards(family))
    cards += [get_card(i) for i in ids]
    seen: dict[str, ModelCard] = {}
    for c in cards:
        seen.setdefault(c.id, c)
    return list(seen.values())
