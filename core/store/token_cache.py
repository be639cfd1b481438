"""On-disk cache of image tokens, shared by every AR model that uses the same tokenizer.

Key of a cache folder: (tokenizer_key, preprocess_id, resolution) — the tokenizer weights'
identity (sha256 of its checkpoint file), the family's preprocessing and the input side.
Precision is not part of the key because tokens are always computed the same way: fp32 with
TF32 off (the engine and bench encode so whatever ``--dtype`` / ``--tf32`` say).
Key of an image inside it: its absolute path, size and modification time (no re-reading of
unchanged files; a changed file gets a new key). Images that cannot be decoded are cached
too, with the reason, so a resumed run does not decode them again.

Storage: ``<cache_dir>/tokens/<folder key>/shard-*.pt`` files, each a dict
``{"keys": [str], "tokens": LongTensor (N, ...), "bad_keys": [str], "bad_reasons": [str]}``
written to a temporary name and renamed (atomic); the engine writes one shard per flush
(:meth:`TokenCache.add` in memory, :meth:`TokenCache.write_many` on the background writer). A :class:`filelock.FileLock` on the
folder serialises writers and the occasional merge of many shards into one, so several
processes (torchrun ranks, two terminals) can fill the same cache safely.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import torch

from visbpp.core.files import atomic_write_bytes, atomic_write_text, default_cache_dir  # noqa: F401 - re-exported

MERGE_AT = 64  # merge the shards of a folder into one when it has more than this many


def image_key(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:  # a dangling link or a vanished file: decoding reports why it is skipped
        try:
            st = os.lstat(path)
        except OSError:
            return f"{os.path.abspath(path)}|missing"
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


class TokenCache:
    """Tokens of images for one (tokenizer_key, preprocess_id, resolution)."""

    def __init__(self, cache_dir: str | None, tokenizer_key: str, preprocess_id: str, resolution: int,
                 tokens_per_image: int | None = None, vocab_size: int | None = None):
        ident = json.dumps([tokenizer_key, preprocess_id, int(resolution)])
        self.folder_key = hashlib.sha256(ident.encode()).hexdigest()[:24]
        self.folder = os.path.join(default_cache_dir(cache_dir), "tokens", self.folder_key)
        os.makedirs(self.folder, exist_ok=True)
        info = os.path.join(self.folder, "key.json")
        if not os.path.exists(info):
            atomic_write_text(info, json.dumps({"tokenizer_key": tokenizer_key, "preprocess_id": preprocess_id,
                                                "resolution": int(resolution)}, indent=1))
        self.tokens: dict[str, torch.Tensor] = {}
        self.bad: dict[str, str] = {}
        self._loaded: set[str] = set()
        self.expect = (tokens_per_image, vocab_size)
        self.set_aside: list[str] = []  # one line per damaged shard moved aside (its images are encoded again)
        self.reload()

    @classmethod
    def open_existing(cls, cache_dir: str | None, folder_key: str) -> "TokenCache | None":
        """The cache folder ``folder_key`` as its ``key.json`` describes it, or None when it is not there."""
        info = os.path.join(default_cache_dir(cache_dir), "tokens", folder_key, "key.json")
        try:
            with open(info) as f:
                k = json.load(f)
            return cls(cache_dir, k["tokenizer_key"], k["preprocess_id"], int(k["resolution"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _lock(self):
        from filelock import FileLock

        return FileLock(os.path.join(self.folder, ".lock"))

    def _shards(self) -> list[str]:
        return sorted(f for f in os.listdir(self.folder) if f.startswith("shard-") and f.endswith(".pt"))

    def _read(self, name: str) -> None:
        path = os.path.join(self.folder, name)
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            problem = self._check(d)
        except Exception as e:  # noqa: BLE001 - truncated, empty or foreign file
            problem = f"unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})"
        if problem:
            aside = os.path.join(self.folder, "damaged")
            os.makedirs(aside, exist_ok=True)
            os.replace(path, os.path.join(aside, name))
            self.set_aside.append(f"token cache shard {path}: {problem}; moved it to {aside}/, "
                                  f"its images are encoded again")
            return
        for k, t in zip(d["keys"], d["tokens"]):
            self.tokens[k] = t.long()
        self.bad.update(zip(d["bad_keys"], d["bad_reasons"]))
        self._loaded.add(name)

    def _check(self, d) -> str | None:
        """What is wrong with a shard's content, or None."""
        if not isinstance(d, dict) or not {"keys", "tokens", "bad_keys", "bad_reasons"} <= set(d):
            return "not a token shard (keys, tokens, bad_keys, bad_reasons expected)"
        t, keys = d["tokens"], d["keys"]
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int32, torch.int64, torch.int16, torch.uint8):
            return f"tokens are not an integer tensor ({getattr(t, 'dtype', type(t).__name__)})"
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) or (keys and len(keys) != len(t)):
            return f"{len(keys) if isinstance(keys, list) else '?'} keys for {len(t)} token rows"
        if len(d["bad_keys"]) != len(d["bad_reasons"]):
            return "bad_keys and bad_reasons differ in length"
        n, vocab = self.expect
        if keys and n is not None and t[0].numel() != n:
            return f"{t[0].numel()} tokens per image, the tokenizer gives {n}"
        if keys and vocab is not None and (int(t.min()) < 0 or int(t.max()) >= vocab):
            return f"token ids outside 0..{vocab - 1}"
        return None

    def reload(self) -> None:
        """Read shards written since the last read (also by other processes)."""
        with self._lock():
            names = self._shards()
            for name in names:
                if name not in self._loaded:
                    self._read(name)
            if len(names) > MERGE_AT:
                self._merge(names)

    def _merge(self, names: list[str]) -> None:
        keys = list(self.tokens)
        shapes = {tuple(t.shape) for t in self.tokens.values()}
        if len(shapes) > 1:
            return
        name = self._write(keys, [self.tokens[k] for k in keys], list(self.bad), list(self.bad.values()))
        for n in names:
            if n != name:
                os.remove(os.path.join(self.folder, n))
        self._loaded = {name}

    def _write(self, keys, tokens, bad_keys, bad_reasons) -> str:
        import io

        t = torch.stack([x.long() for x in tokens]) if tokens else torch.zeros(0, dtype=torch.long)
        dtype = torch.int32 if (t.numel() == 0 or int(t.max()) < 2**31) else torch.long
        buf = io.BytesIO()
        torch.save({"keys": list(keys), "tokens": t.to(dtype), "bad_keys": list(bad_keys),
                    "bad_reasons": list(bad_reasons)}, buf)
        name = f"shard-{uuid.uuid4().hex}.pt"
        atomic_write_bytes(os.path.join(self.folder, name), buf.getvalue())
        return name

    def put(self, keys, tokens: torch.Tensor, bad: dict[str, str] | None = None) -> None:
        """Store tokens (N, ...) of images ``keys`` (and bad images with reasons) atomically."""
        bad = bad or {}
        toks = [t.detach().cpu() for t in tokens] if tokens is not None else []
        with self._lock():
            name = self._write(keys, toks, list(bad), list(bad.values()))
            self._loaded.add(name)
        for k, t in zip(keys, toks):
            self.tokens[k] = t.long()
        self.bad.update(bad)

    def add(self, keys, tokens: torch.Tensor | None, bad: dict[str, str] | None = None) -> None:
        """Keep tokens of images ``keys`` (and bad images) in memory only; :meth:`write_many` makes them durable."""
        for k, t in zip(keys, [t.detach().cpu() for t in tokens] if tokens is not None else []):
            self.tokens[k] = t.long()
        self.bad.update(bad or {})

    def write_many(self, items) -> None:
        """Write ``[(keys, tokens | None, bad)]`` (as given to :meth:`add`) as one shard, atomically."""
        keys, toks, bad = [], [], {}
        for k, t, b in items:
            if t is not None:
                keys += list(k)
                toks += [x.detach().cpu() for x in t]
            bad.update(b or {})
        with self._lock():
            self._loaded.add(self._write(keys, toks, list(bad), list(bad.values())))

    def has(self, key: str) -> bool:
        return key in self.tokens or key in self.bad
