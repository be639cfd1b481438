"""visbpp terminal front-ends: the Textual app and the Typer CLI (the only users of textual/typer)."""
