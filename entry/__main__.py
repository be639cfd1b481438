"""python -m visbpp ... (and torchrun -m visbpp run ...) = the visbpp CLI."""

from visbpp.tui.cli import main

main()
