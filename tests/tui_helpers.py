"""Shared pieces of the TUI tests: an ImageFolder from the LlamaGen conformance fixture, the tiny
custom model built from it, a slow fake scoring job, and a Pilot wait helper."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

from conformance_utils import conformance_root, require


def fixture_dir() -> Path:
    """The LlamaGen conformance set A; skips the test (fails it when CI is set) if absent."""
    d = conformance_root() / "llamagen"
    return require(d if (d / "transformer.pt").is_file() else None)


async def wait_for(pilot, cond, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)
    await asyncio.sleep(0)


def make_imagefolder(root: Path, n_classes: int = 10) -> Path:
    """The fixture's 4 images as PNGs in class folders c0..c9 (class index = sorted position)."""
    from PIL import Image

    images = np.load(fixture_dir() / "images.npy")
    labels = np.load(fixture_dir() / "labels.npy")
    for c in range(n_classes):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    for i, (img, lab) in enumerate(zip(images, labels)):
        Image.fromarray(img).save(root / f"c{int(lab)}" / f"img{i}.png")
    return root


def expected_bpp() -> float:
    """BPP of the fixture images from the official code's NLL: Σbits / Σ(3·H·W)."""
    import torch

    exp = torch.load(fixture_dir() / "expected.pt", weights_only=True)
    bits = exp["nll_bits"].double()
    h = w = 64
    return float(bits.sum()) / (len(bits) * 3 * h * w)


def tiny_custom_model(label: str = "tiny-llamagen"):
    from visbpp.tui.state import CustomModel

    d = fixture_dir()
    return CustomModel(label, "llamagen", str(d / "config.json"), str(d / "tokenizer.pt"), str(d / "transformer.pt"))


def write_settings(home: Path, **values) -> None:
    home.mkdir(parents=True, exist_ok=True)
    base = {"data_dir": "", "batch_size": "2", "device": "cpu", "dtype": "fp32", "selection": ""}
    (home / "tui_settings.json").write_text(json.dumps(base | values))


class FakeTokenizer:
    """Deterministic stand-in tokenizer: every image -> 16 zero tokens (scoring cost is the model's)."""

    family = "fake"
    image_size = 64
    tokens_per_image = 16
    vocab_size = 8
    preprocess_id = "fake-64-v1"

    def preprocess(self, image):
        import torch

        arr = np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    def encode(self, x):
        import torch

        return torch.zeros(x.shape[0], 16, dtype=torch.long)

    def decode(self, tokens):  # pragma: no cover - not used by scoring
        raise NotImplementedError


class SlowModel:
    """Uniform model over 8 symbols (3 bits per token) that sleeps per batch, like a slow GPU."""

    family = "fake"
    tokens_per_image = 16
    vocab_size = 8
    num_classes = 10

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.batches = 0

    def token_nll(self, tokens, labels):
        import math

        import torch

        time.sleep(self.delay)
        self.batches += 1
        return torch.full(tokens.shape, math.log(8.0), dtype=torch.float32)


def slow_job(delay: float, label: str = "slow-fake"):
    from visbpp.core.engine.runner import ScoringJob
    from visbpp.tui.state import CustomModel

    job = ScoringJob(model_id=label, family="fake", tokenizer_key=f"fake-tokenizer-{label}",
                     load_tokenizer=FakeTokenizer, load_model=lambda tok: SlowModel(delay))
    return CustomModel(label, "fake", job=job)


class GatedModel(SlowModel):
    """A uniform model whose every batch waits for ``release`` (set by the test) after setting
    ``entered``: the test decides what happens while a batch is being scored, whatever the load."""

    def __init__(self, entered, release, scored: list) -> None:
        super().__init__(0.0)
        self.entered, self.release, self.scored = entered, release, scored

    def token_nll(self, tokens, labels):
        self.entered.set()
        assert self.release.wait(120), "the test never released the batch"
        self.scored.append(len(tokens))
        return super().token_nll(tokens, labels)


def counting_job(label: str, scored: list, entered=None, release=None):
    """A custom model scoring 3 bits per token that appends each batch's size to ``scored``; with
    ``entered``/``release`` (threading.Event) each batch waits to be released (``GatedModel``)."""
    import threading

    from visbpp.core.engine.runner import ScoringJob
    from visbpp.tui.state import CustomModel

    if entered is None:
        entered, release = threading.Event(), threading.Event()
        release.set()
    job = ScoringJob(model_id=label, family="fake", tokenizer_key=f"fake-tokenizer-{label}",
                     load_tokenizer=FakeTokenizer, load_model=lambda tok: GatedModel(entered, release, scored))
    return CustomModel(label, "fake", job=job)
