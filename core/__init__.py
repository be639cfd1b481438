"""visbpp core: interfaces, model registry, data, scoring engine, results and analysis.

Imports neither ``visbpp.models`` nor ``visbpp.tui`` (nor textual/typer).
"""
