"""The exceptions of the term layer."""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes that are not a valid external term.

    ``offset`` is the position in the input where decoding failed. Every failure of
    the decoder on bad input (truncation, unknown tag, bad length, nesting too deep,
    compressed data that lies about its size or inflates past the limit, ...) raises
    this one type; nothing else escapes from it.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.reason = message
        self.offset = offset


class EncodeError(ValueError):
    """A Python value that has no external term form (or is out of range for it)."""


class TermSyntaxError(ValueError):
    """Text that is not a valid Erlang term; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})")
        self.reason = message
        self.line = line
        self.column = column
