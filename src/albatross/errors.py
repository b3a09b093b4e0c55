"""The root of Albatross's exception tree.

Errors that reach the command line carry everything a user needs to act: the file, the place
inside it and the reason. ``AlbatrossError`` is what the CLI catches to print one clean line.
"""

from __future__ import annotations


class AlbatrossError(Exception):
    """Base class of every error Albatross raises on purpose."""


class ConfigError(AlbatrossError):
    """A configuration input (a file, a flag, a certificate) is unusable.

    ``source`` names the file (or flag), ``where`` the place inside it, if any.
    """

    def __init__(self, source: str, reason: str, where: str | None = None) -> None:
        self.source = source
        self.where = where
        self.reason = reason
        location = f"{source}: {where}" if where else source
        super().__init__(f"{location}: {reason}")
