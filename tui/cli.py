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
    """The console script: usage errors (an unknown option or choice, a missing argument) are one
    ``error:`` line on stderr with exit code 2, like every other error of visbpp."""
    import sys

    try:  # typer bundles its own click from 0.2x on
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older typer on the click package
        from click import exceptions as cx

    try:
        code = app(standalone_mode=False)
    except cx.NoArgsIsHelpError as e:
        e.show()
        code = e.exit_code
    except cx.UsageError as e:
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        msg = " ".join(e.format_message().split()).replace("Value error, ", "")  # pydantic wording
        sys.stderr.write(f"error: {msg}{where}\n")
        code = e.exit_code
    except cx.ClickException as e:
        sys.stderr.write("error: " + " ".join(e.format_message().split()) + "\n")
        code = e.exit_code
    except typer.Abort:
        sys.stderr.write("aborted\n")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
