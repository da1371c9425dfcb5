"""The one exception of the configuration readers, and where a value came from."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "Origin"]


@dataclass(frozen=True)
class Origin:
    """Where a setting was written: a file and line, ``$VARIABLE`` or ``command line``."""

    source: str
    line: int | None = None

    def __str__(self) -> str:
        return self.source if self.line is None else f"{self.source}:{self.line}"


class ConfigError(ValueError):
    """A configuration that cannot be used.

    The message reads ``source:line: key: reason``, e.g.
    ``etc/a.conf:12: cluster.mcast.ttl: expected an integer in 0..255, got 'abc'``;
    parts that do not apply are left out. The parts are also attributes.
    """

    def __init__(
        self, reason: str, *, origin: Origin | None = None, key: str | None = None
    ) -> None:
        parts = [str(origin)] if origin is not None else []
        if key is not None:
            parts.append(key)
        parts.append(reason)
        super().__init__(": ".join(parts))
        self.reason = reason
        self.origin = origin
        self.key = key

    @property
    def source(self) -> str | None:
        """The file (or ``$VARIABLE``, ``command line``) the error is in."""
        return self.origin.source if self.origin else None

    @property
    def line(self) -> int | None:
        """The 1-based line of the error, when the source has lines."""
        return self.origin.line if self.origin else None
