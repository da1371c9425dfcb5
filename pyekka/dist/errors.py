"""The one exception type of the distribution layer."""

from __future__ import annotations

__all__ = ["ProtocolError"]


class ProtocolError(ValueError):
    """Bytes from a peer (or from epmd) that break the protocol.

    Raised for malformed, truncated-beyond-repair or oversized frames and messages.
    The connection they came on cannot be trusted any more and should be closed;
    ``str(error)`` says what was wrong.
    """
