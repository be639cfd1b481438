"""How every `visbpp` command reports bad input: one ``error:`` line on stderr, exit code 2."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer


def fail(msg: object, code: int = 2) -> NoReturn:
    """``error: <msg>`` (whitespace folded to one line; under torchrun prefixed with the rank) on
    stderr, then exit with ``code``."""
    rank = f"[rank {os.environ.get('RANK', '0')}] " if int(os.environ.get("WORLD_SIZE", 1)) > 1 else ""
    sys.stderr.write(f"error: {rank}" + " ".join(str(msg).split()) + "\n")
    sys.stderr.flush()
    raise typer.Exit(code)
