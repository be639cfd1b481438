"""`visbpp fetch`: download official checkpoints into the cache, verified."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry import download
from visbpp.core.registry.catalog import UnknownModelError

err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def fetch(
        ids: List[str] = typer.Argument(None, help="Model ids or aliases (see `visbpp models`)."),
        family: Optional[str] = typer.Option(None, "--family", help="Every size of this family."),
        all_models: bool = typer.Option(False, "--all", help="Every model in the registry."),
        check: bool = typer.Option(False, "--check", help="Only report what is missing/present/verified; download nothing."),
        checkpoint_dir: Optional[Path] = typer.Option(
            None, "--checkpoint-dir", help="With --check: also look in this folder (as `visbpp run` does)."),
        repair: bool = typer.Option(
            False, "--repair", help="With --check: verify every present file (re-hashing it); a bad copy in the cache "
                                    "is removed and its first-seen checksum forgotten, so `visbpp fetch` gets it anew."),
    ) -> None:
        """Download each model's checkpoint files (tokenizer included, once when shared) into the cache."""
        try:
            cards = ck.resolve_ids(ids or (), family, all_models)
        except UnknownModelError as e:
            err.print(f"error: {e}")
            raise typer.Exit(2) from None
        if not cards:
            err.print("error: name model ids, --family F or --all (see `visbpp models`)")
            raise typer.Exit(2)
        try:
            from visbpp.core.files import cache_root

            cache_root()
        except ValueError as e:  # VISBPP_HOME cannot be created
            err.print(f"error: {e}")
            raise typer.Exit(2) from None
        if repair and not check:
            err.print("error: --repair goes with --check (`visbpp fetch --check --repair ID`)")
            raise typer.Exit(2)
        if check:
            for c in cards:
                for s in ck.status(c, checkpoint_dir):
                    where = s.path or ck.cached_path(s.file)
                    if repair and s.path is not None:
                        typer.echo(f"{c.id}\t{s.file.role}\t{ck.repair(s.file, s.path)}")
                    else:
                        typer.echo(f"{c.id}\t{s.file.role}\t{s.state}\t{where}")
            return
        failures = 0
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=err, transient=True, disable=not err.is_terminal) as bar:
            tasks: dict[str, int] = {}

            def progress(name: str, done: int, total: int | None) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=total)
                bar.update(tasks[name], completed=done, total=total)

            seen: dict[str, Path] = {}
            tried: set[str] = set()
            unreachable: list[str] = []   # files not tried once the network was found unreachable
            for c in cards:
                for f in ck.files_for(c):
                    if f.cache_relpath in tried:
                        continue
                    tried.add(f.cache_relpath)
                    if unreachable:
                        unreachable.append(f.filename)
                        continue
                    try:
                        seen[f.cache_relpath] = download.fetch_file(f, progress, c.id)
                        typer.echo(f"ok\t{c.id}\t{f.role}\t{seen[f.cache_relpath]}")
                    except download.NetworkUnreachable as e:
                        failures += 1
                        unreachable.append(f.filename)
                        err.print(f"error: {e}", highlight=False)
                    except ck.FetchError as e:
                        failures += 1
                        err.print(f"error: {e}", highlight=False)
        if len(unreachable) > 1:
            err.print(f"not tried without a network: {', '.join(unreachable[1:])}", highlight=False)
        if failures:
            raise typer.Exit(1)
