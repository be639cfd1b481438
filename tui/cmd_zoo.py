"""`visbpp zoo`: the micro zoo (train it, write its data split, show it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

zoo_app = typer.Typer(help="The micro zoo: tiny LlamaGen-architecture models on the sklearn digits.", no_args_is_help=True)


def _default_out() -> Path:
    """A folder in the cache dir: retraining never overwrites the shipped weights unless asked
    (`--out core/assets/micro` in a checkout regenerates them, zoo.json included)."""
    from visbpp.core.files import cache_root

    return cache_root() / "zoo" / "micro"


@zoo_app.command("train")
def train(
    out: Optional[Path] = typer.Option(
        None, "--out", help="Folder for the weights and zoo.json (default: <cache>/zoo/micro; the shipped files "
                            "are core/assets/micro in a checkout)."),
    seed: int = typer.Option(0, "--seed"),
    tokenizer_steps: Optional[int] = typer.Option(None, "--tokenizer-steps", help="Default: as shipped."),
    gpt_steps: Optional[int] = typer.Option(None, "--gpt-steps", help="Default: as shipped."),
) -> None:
    """Train the tokenizer, four AR sizes and the micro-FID classifier (seeded, CPU, minutes)."""
    from dataclasses import replace

    from visbpp.models.micro.train import TrainSettings, train_zoo

    target = out or _default_out()
    s = replace(TrainSettings(), seed=seed)
    if tokenizer_steps is not None:
        s = replace(s, tokenizer_steps=tokenizer_steps)
    if gpt_steps is not None:
        s = replace(s, gpt_steps=gpt_steps)
    meta = train_zoo(target, s,
                     log=lambda m: typer.echo(m, err=True))
    typer.echo(json.dumps({k: meta[k] for k in ("models", "tokenizer", "classifier", "train_seconds")}, indent=1))
    typer.echo(f"wrote {target}", err=True)


@zoo_app.command("data")
def data(
    out: Path = typer.Argument(..., help="Folder to write the split to, as an ImageFolder (<digit>/<n>.png)."),
    split: str = typer.Option("heldout", "--split", help="heldout (360 images) or train (1437)."),
) -> None:
    """Write a split of the digits dataset as an ImageFolder for `visbpp run --data`."""
    from visbpp.models.micro.data import write_imagefolder

    if split not in ("heldout", "train"):
        typer.echo(f"error: --split must be heldout or train, not {split!r}", err=True)
        raise typer.Exit(2)
    typer.echo(write_imagefolder(out, split))


def register(app: typer.Typer) -> None:
    app.add_typer(zoo_app, name="zoo")
