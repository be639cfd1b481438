"""A tiny fake tokenizer + AR model satisfying visbpp.core.interfaces, for engine tests.

The AR model is a class- and previous-token-conditional table of logits drawn from a fixed
seed; ``FAKE_SLEEP`` (seconds per batch) slows it down for the kill/resume test and
``FAKE_COUNT_DIR`` makes every ``encode`` call leave a file there (to count calls across
processes).
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import torch

from visbpp.core.engine.runner import ScoringJob
from visbpp.core.nll import nll_from_logits

SIDE = 8
VOCAB = 16
NUM_CLASSES = 4


class FakeTokenizer:
    family = "fake"
    image_size = SIDE
    tokens_per_image = (SIDE // 2) ** 2
    vocab_size = VOCAB
    preprocess_id = "fake-resize8-v1"
    encode_calls = 0

    def preprocess(self, image):
        assert image.mode == "RGB"
        a = np.asarray(image.resize((SIDE, SIDE)), dtype=np.float32) / 255.0
        return torch.from_numpy(a).permute(2, 0, 1).contiguous()

    def encode(self, x):
        FakeTokenizer.encode_calls += 1
        d = os.environ.get("FAKE_COUNT_DIR")
        if d:
            open(os.path.join(d, f"encode-{uuid.uuid4().hex}"), "w").close()
        m = x.mean(1)[:, ::2, ::2]  # (B, 4, 4)
        return (m * (VOCAB - 1)).round().long().flatten(1)

    def decode(self, tokens):
        raise NotImplementedError


class FakeAR(torch.nn.Module):
    family = "fake"
    tokens_per_image = (SIDE // 2) ** 2
    vocab_size = VOCAB
    num_classes = NUM_CLASSES

    def __init__(self, seed: int = 0, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.num_classes = num_classes
        g = torch.Generator().manual_seed(seed)
        # logits of token j given (label, previous token or VOCAB for the first position)
        self.table = torch.nn.Parameter(torch.randn(num_classes, VOCAB + 1, VOCAB, generator=g) * 2)

    def token_nll(self, tokens, labels):
        s = float(os.environ.get("FAKE_SLEEP", "0"))
        if s:
            time.sleep(s)
        B, L = tokens.shape
        prev = torch.cat([torch.full((B, 1), VOCAB, dtype=torch.long, device=tokens.device), tokens[:, :-1]], 1)
        logits = self.table[labels[:, None].expand(B, L), prev]  # (B, L, V)
        return nll_from_logits(logits, tokens)


def fake_job(model_id: str = "fake-a", seed: int = 0, tokenizer_key: str = "fake-tok",
             class_names: tuple[str, ...] | None = None) -> ScoringJob:
    """A fake model; with ``class_names`` it has those classes (labels by folder name)."""
    n = len(class_names) if class_names else NUM_CLASSES
    return ScoringJob(model_id, "fake", tokenizer_key, FakeTokenizer, lambda tok: FakeAR(seed, n), class_names=class_names)


def reference_bits(path: str, label: int, seed: int = 0, num_classes: int = NUM_CLASSES) -> float:
    """Bits of one image scored alone (batch of 1), straight through the fakes."""
    from visbpp.core.engine.data import load_image

    tok = FakeTokenizer()
    x = tok.preprocess(load_image(path))[None]
    t = (x.mean(1)[:, ::2, ::2] * (VOCAB - 1)).round().long().flatten(1)
    with torch.inference_mode():
        nll = FakeAR(seed, num_classes).token_nll(t, torch.tensor([label]))
    return float(nll.double().sum() / np.log(2))


def make_imagefolder(root, per_class=(3, 2, 0, 4), seed=0) -> list[tuple[str, int]]:
    """Class folders c0..c3 (c2 empty) of random RGB PNGs; returns (relative path, label)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for c, n in enumerate(per_class):
        d = os.path.join(root, f"c{c}")
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            a = rng.integers(0, 256, size=(10 + i, 12, 3), dtype=np.uint8)
            name = f"img{i:02d}.png"
            Image.fromarray(a).save(os.path.join(d, name))
            out.append((f"c{c}/{name}", c))
    return out
