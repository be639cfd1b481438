"""``python -m visbpp.tui ...`` (and ``torchrun -m visbpp.tui run ...``) = the ``visbpp`` CLI."""

from .cli import main

main()
