"""Discovery of official-code conformance fixture sets for the family tests.

Every folder under ``$VISBPP_CONFORMANCE_DIR`` (default ``../shared/conformance`` beside
the repo root) whose name is the family name or starts with ``<family>-`` is one set.
When the root is missing the tests fail under CI (``CI`` set) and skip elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def conformance_root() -> Path:
    return Path(os.environ.get("VISBPP_CONFORMANCE_DIR", REPO.parent / "shared" / "conformance"))


def fixture_sets(family: str) -> list:
    """pytest params, one per fixture folder of ``family`` (test id = folder name)."""
    root = conformance_root()
    if not root.is_dir():
        return [pytest.param(None, id=f"{family}-missing-root")]
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and (p.name == family or p.name.startswith(family + "-")))
    if not dirs:
        return [pytest.param(None, id=f"{family}-no-sets")]
    return [pytest.param(d, id=d.name) for d in dirs]


def require(folder: Path | None) -> Path:
    """Fail (CI) or skip (elsewhere) when a fixture set is unavailable."""
    if folder is None:
        msg = f"conformance fixtures not found under {conformance_root()} (set VISBPP_CONFORMANCE_DIR)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return folder


def optional_file(folder: Path, name: str, what: str) -> Path:
    """``folder / name``, a file a set may leave out; skips the calling check (with the reason) when absent."""
    path = folder / name
    if not path.is_file():
        pytest.skip(f"{folder.name}: no {name} in this set (optional: {what}); check not applicable")
    return path


def optional_entry(fs: "FixtureSet", key: str):
    """``expected.pt[key]`` of an entry a set may leave out; skips the calling check (with the reason) when absent."""
    if key not in fs.expected:
        pytest.skip(f"{fs.folder.name}: expected.pt has no {key!r} (optional entry); check not applicable")
    return fs.expected[key]


class FixtureSet:
    """Loaded content of one fixture folder."""

    def __init__(self, folder: Path):
        import torch

        self.folder = folder
        self.config = json.loads((folder / "config.json").read_text())
        self.images = np.load(folder / "images.npy")
        self.labels = np.load(folder / "labels.npy")
        self.expected = torch.load(folder / "expected.pt", weights_only=True)
        self.tokenizer_path = folder / "tokenizer.pt"
        self.transformer_path = folder / "transformer.pt"


def assert_nll_matches(nll, fs: FixtureSet, *, nats: float = 1e-5, bits: float = 4e-5) -> None:
    """Per-token NLL (float32, tokens' shape) within ``nats`` of the fixture's ``token_nll`` and its
    float64 bits per image within ``bits`` of ``nll_bits``."""
    import math

    import torch

    tokens = fs.expected["tokens"]
    assert nll.dtype == torch.float32 and nll.shape == tokens.shape
    torch.testing.assert_close(nll, fs.expected["token_nll"], atol=nats, rtol=0)
    torch.testing.assert_close(nll.double().sum(-1) / math.log(2), fs.expected["nll_bits"], atol=bits, rtol=0)


def manifests(family: str) -> list:
    """pytest params, one per ``keys/*.json`` manifest of the family's main fixture folder."""
    root = conformance_root() / family / "keys"
    if not root.is_dir():
        return [pytest.param(None, id=f"{family}-no-manifests")]
    return [pytest.param(p, id=p.stem) for p in sorted(root.glob("*.json"))]
