"""Reading Lightning ``.ckpt`` files whose training extras reference Lightning classes.

Lightning checkpoints of the 2021 era store, beside ``"state_dict"``, entries such as
``"callbacks": {ModelCheckpoint: {...}}`` whose dict keys are *classes*. A
``weights_only`` load refuses those globals. Instead of unpickling them, every such global
is mapped to an inert stand-in class (it only stores the data it is given), so the file is
still read with ``torch.load(weights_only=True)`` and no code from it ever runs. Only the
tensors of ``"state_dict"`` are used afterwards.
"""

from __future__ import annotations

from pathlib import Path

import torch

from visbpp.core.checkpoint_io import CheckpointError, read_checkpoint


class TrainingExtra:
    """Inert stand-in for a class referenced by a checkpoint's training extras; keeps data only."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 - not a zip checkpoint / unreadable: read_checkpoint reports it
        return []


def read_lightning_checkpoint(path: str | Path) -> dict:
    """``read_checkpoint`` that tolerates non-tensor globals in a Lightning file's extras."""
    names = _unsafe_globals(Path(path)) if Path(path).is_file() else []
    if not names:
        return read_checkpoint(path)
    stand_ins = [(type(n.rsplit(".", 1)[-1], (TrainingExtra,), {}), n) for n in names]
    with torch.serialization.safe_globals(stand_ins):
        obj = read_checkpoint(path)
    sd = obj.get("state_dict")
    if isinstance(sd, dict):
        bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise CheckpointError(f"{path}: state_dict entries that are not tensors: {', '.join(map(str, bad[:5]))}")
    return obj
