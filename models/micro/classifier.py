"""A small digits classifier whose penultimate features define *micro-FID*.

Micro-FID = Fréchet distance between Gaussians fitted to these 64-d features of generated
(or reconstructed) images and of the held-out real images. It is a miniature of FID for the
micro zoo and is never reported as FID.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from visbpp.core.analysis.frechet import frechet_distance_features


@dataclass(frozen=True)
class ClassifierConfig:
    width: int = 32        # channels of the first conv
    feature_dim: int = 64  # penultimate width = micro-FID feature dimension
    num_classes: int = 10


class DigitClassifier(nn.Module):
    """conv(3->w) -> pool -> conv(w->2w) -> pool -> fc(2w*4*4 -> feature_dim) -> fc(-> classes)."""

    def __init__(self, cfg: ClassifierConfig = ClassifierConfig()):
        super().__init__()
        w = cfg.width
        self.conv1 = nn.Conv2d(3, w, 3, padding=1)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1)
        self.fc = nn.Linear(2 * w * 4 * 4, cfg.feature_dim)
        self.head = nn.Linear(cfg.feature_dim, cfg.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 16, 16) in [-1, 1] -> (B, feature_dim)."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, w, 8, 8)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 2w, 4, 4)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_input(images: np.ndarray) -> torch.Tensor:
    """(N, 16, 16, 3) uint8 -> (N, 3, 16, 16) float32 in [-1, 1] (the tokenizer's normalisation)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_classifier(images: np.ndarray, labels: np.ndarray, seed: int = 0, epochs: int = 30) -> DigitClassifier:
    """Adam, batch 64, light random shifts; deterministic for a seed."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = to_input(images), torch.from_numpy(labels)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 64):
            b = perm[i:i + 64]
            xb = x[b]
            dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(xb), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.inference_mode()
def accuracy(model: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    return float((model(to_input(images)).argmax(-1).numpy() == labels).mean())


@torch.inference_mode()
def features(model: DigitClassifier, x: torch.Tensor) -> np.ndarray:
    """(N, 3, 16, 16) in [-1, 1] (clamped) -> (N, feature_dim) float64."""
    return model.features(x.clamp(-1, 1)).double().numpy()


def micro_fid(model: DigitClassifier, generated: torch.Tensor, reference: torch.Tensor) -> float:
    """Micro-FID between generated and reference images, both (N, 3, 16, 16) in [-1, 1]."""
    return frechet_distance_features(features(model, generated), features(model, reference))


def load_bundled() -> DigitClassifier:
    """The classifier shipped with the micro zoo (float16 file, float32 in use)."""
    from safetensors.torch import load_file

    from visbpp.core.registry.cards.micro import ZOO_DIR

    net = DigitClassifier()
    sd = load_file(str(ZOO_DIR / "micro_classifier.safetensors"))
    net.load_state_dict({k: v.float() for k, v in sd.items()})
    return net.eval().requires_grad_(False)
