"""Events shared by the distribution state machines."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SendBytes"]


@dataclass(frozen=True, slots=True)
class SendBytes:
    """Bytes the owner must write to the peer, in order."""

    data: bytes
