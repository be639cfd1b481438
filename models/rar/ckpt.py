"""Reading RobusTok's training checkpoints without executing code.

``main-train.pt`` / ``post-train.pt`` hold ``{"model", "ema", "optimizer", ..., "steps", "args"}``
with ``args`` an ``argparse.Namespace``. ``torch.load(weights_only=True)`` refuses that class
unless it is allow-listed; a Namespace is rebuilt from its attribute dict of plain values (no
code runs), and every other non-tensor global is still refused.
"""

from __future__ import annotations

import argparse

import torch

from visbpp.core.checkpoint_io import read_checkpoint

ALLOWED_GLOBALS = (argparse.Namespace,)


def read_training_checkpoint(path: str) -> dict:
    """The top-level dict of a RobusTok training checkpoint (weights_only, Namespace allowed)."""
    with torch.serialization.safe_globals(list(ALLOWED_GLOBALS)):
        return read_checkpoint(path)
