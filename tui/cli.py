"""The ``visbpp`` command line (Typer). Each command group lives in its own ``cmd_*`` module
that exposes ``register(app)``; this file only assembles them."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="visbpp",
    help="Compression (bpp = bits / (3·H·W)) of class-conditional AR image generators, and how it relates to FID.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("visbpp")
        except PackageNotFoundError:
            v = "unknown (not installed)"
        typer.echo(f"visbpp {v}")
        raise typer.Exit()


@app.callback()
def _root(
    _show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
) -> None:
    """Compression (bpp = bits / (3·H·W)) of class-conditional AR image generators, and how it relates to FID."""


# command modules, in help order
COMMAND_MODULES = ("cmd_analysis", "cmd_run", "cmd_runs", "cmd_inspect", "cmd_fetch", "cmd_zoo")


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
