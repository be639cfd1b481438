"""Entry point of ``visbpp-tui``: command-line flags (a custom checkpoint) and the worker import lock."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Sequence

_IMPORT_LOCK = threading.Lock()


def heavy_imports() -> None:
    """Import torch, pandas and statsmodels off the UI thread, one thread at a time.

    Every worker calls this first: first-time imports of these libraries from several threads at
    once can end in the import system's deadlock error (seen at start-up: analysis, checkpoint
    status and the torch warm-up all start together). After the first call it costs nothing.
    """
    with _IMPORT_LOCK:
        import pandas  # noqa: F401
        import statsmodels.formula.api  # noqa: F401
        import torch  # noqa: F401

        import visbpp.core.analysis.fits  # noqa: F401
        import visbpp.core.engine.runner  # noqa: F401
        import visbpp.core.registry.checkpoints  # noqa: F401


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="visbpp-tui", description="Interactive visbpp: pick models, score, compare.")
    p.add_argument("--family", help="family of a custom checkpoint (with --config/--tokenizer/--transformer)")
    p.add_argument("--config", help="config JSON with the official constructor argument names")
    p.add_argument("--tokenizer", help="tokenizer checkpoint of the custom model")
    p.add_argument("--transformer", help="AR transformer checkpoint of the custom model")
    p.add_argument("--name", help="name of the custom model in the tables (default: the transformer file name);"
                   " the same flag as `visbpp run --name`")
    p.add_argument("--label", dest="name", help=argparse.SUPPRESS)   # the earlier name of --name
    p.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                   help="a further file the custom model's family needs (repeatable; Hita, VFMTok: "
                        "--extra backbone=PATH), as `visbpp run --extra`")
    for flag, what in (("--unconditional", "also score every image with the null class"),
                       ("--recon", "also decode the tokens: PSNR and SSIM per image"),
                       ("--force", "recompute a finished run instead of reusing it")):
        p.add_argument(flag, action="store_true", help=f"start with the Run tab's {flag} switched on: {what}")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    from visbpp.core.errors import SettingsError

    from .app import VisbppApp
    from .settings import parse_extras
    from .state import CustomModel

    args = parse_args(argv)
    custom: list[CustomModel] = []
    given = [args.family, args.config, args.tokenizer, args.transformer]
    try:
        extras = parse_extras(args.extra)
    except SettingsError as e:
        raise SystemExit(f"visbpp-tui: {e}") from None
    if any(given):
        if not all(given):
            raise SystemExit("visbpp-tui: a custom model needs all of --family, --config, --tokenizer, --transformer")
        name = args.name or Path(args.transformer).stem
        custom.append(CustomModel(name, args.family, args.config, args.tokenizer, args.transformer,
                                  extras=tuple(extras.items())))
    elif extras:
        raise SystemExit("visbpp-tui: --extra is for a custom model (--family F --config C.json --tokenizer T.pt "
                         "--transformer M.pt)")
    switches = {k: "on" for k in ("unconditional", "recon", "force") if getattr(args, k)}
    app = VisbppApp(custom_models=custom, switches=switches)
    # Our own loop, not asyncio.run(): that would wait, after the app has exited, for the thread
    # workers in the loop's executor (the warm-up imports of torch, pandas, statsmodels: seconds).
    loop = asyncio.new_event_loop()
    app.run(loop=loop)
    if app.abandon_workers_on_exit():
        # Only read-only workers are left (imports, table loads, checkpoint status): end the process now
        # instead of waiting for them (a torch import alone can take seconds), so q quits at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(app.return_code or 0)
    loop.run_until_complete(loop.shutdown_default_executor())   # a run or download finishes its writes
    loop.close()


if __name__ == "__main__":
    main()
