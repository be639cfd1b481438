"""One exception hierarchy: every error visbpp raises on purpose is a :class:`VisbppError`.

Front-ends catch ``VisbppError`` (``isinstance``, never by class name) and show its message,
which names what is wrong, where, and what to do. The subclasses that existed as
``ValueError``/``KeyError``/``RuntimeError`` keep those bases too, so older callers still work.
"""

from __future__ import annotations


class VisbppError(Exception):
    """Base of every error visbpp raises for bad input, missing files or unusable settings."""


class DataError(VisbppError, ValueError):
    """The image data (folder, labels CSV, subset) cannot be used as given."""


class CheckpointError(VisbppError):
    """A checkpoint file cannot be used: names the file and what is wrong."""


class ConfigError(VisbppError, ValueError):
    """A model configuration (a registered size or a user's config.json) is invalid."""


class FetchError(VisbppError):
    """A checkpoint cannot be found, downloaded or verified."""


class OutputError(VisbppError, ValueError):
    """An output/cache location cannot be written, or holds something else."""


class DeviceError(VisbppError, ValueError):
    """The requested device/dtype/TF32 combination is not available."""


class SettingsError(VisbppError, ValueError):
    """A settings file or setting value is invalid; ``field`` names the setting at fault, when one is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownModelError(VisbppError, KeyError):
    """A model id or alias the registry does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
