"""Identifiers a node hands out: pids, references and unlink ids.

Pids use OTP's classic layout, a 15-bit process number (``id``) and a 13-bit
``serial`` bumped each time the number wraps: every OTP release accepts them in
``NEW_PID_EXT`` (older ones refuse a number of 2^15 or more). References have
three id words, the first of 18 bits, as the references OTP makes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from pyekka.term.types import Atom, Pid, Reference

__all__ = [
    "PID_ID_LIMIT",
    "PID_SERIAL_LIMIT",
    "REF_WORD0_LIMIT",
    "PidAllocator",
    "RefAllocator",
    "UnlinkIdAllocator",
]

PID_ID_LIMIT = 1 << 15
PID_SERIAL_LIMIT = 1 << 13
REF_WORD0_LIMIT = 1 << 18
_REF_BITS = 18 + 32 + 32


class PidAllocator:
    """Hands out the pids of one node incarnation, skipping those still in use.

    ``<node.0.0>`` is reserved (the runtime's own pid, never a process).
    """

    def __init__(self, node: Atom, creation: int) -> None:
        self.node = node
        self.creation = creation
        self._id = 0
        self._serial = 0

    def _advance(self) -> None:
        self._id += 1
        if self._id == PID_ID_LIMIT:
            self._id = 0
            self._serial = (self._serial + 1) % PID_SERIAL_LIMIT
        if self._id == 0 and self._serial == 0:
            self._id = 1

    def next(self, in_use: Callable[[Pid], bool]) -> Pid:
        """The next pid for which ``in_use`` is false.

        Raises ``RuntimeError`` when all 2^28 - 1 pids are in use.
        """
        for _ in range(PID_ID_LIMIT * PID_SERIAL_LIMIT):
            self._advance()
            pid = Pid(self.node, self._id, self._serial, self.creation)
            if not in_use(pid):
                return pid
        raise RuntimeError("every pid of this node is in use")


class RefAllocator:
    """Hands out unique references: an 82-bit counter spread over three words.

    The counter starts at a random point (or ``start``) so that a restarted node
    that gets the same creation does not repeat the references of its predecessor.
    """

    def __init__(self, node: Atom, creation: int, start: int | None = None) -> None:
        self.node = node
        self.creation = creation
        self._next = secrets.randbits(64) if start is None else start

    def next(self) -> Reference:
        """A reference never handed out before by this allocator."""
        n = self._next
        self._next = (n + 1) % (1 << _REF_BITS)
        words = (n % REF_WORD0_LIMIT, (n >> 18) & 0xFFFFFFFF, (n >> 50) & 0xFFFFFFFF)
        return Reference(self.node, self.creation, words)


class UnlinkIdAllocator:
    """Ids for ``UNLINK_ID`` signals: 1 .. 2^64 - 1, unique among outstanding ones."""

    def __init__(self) -> None:
        self._next = 1

    def next(self) -> int:
        """A fresh unlink id (never 0)."""
        n = self._next
        self._next = n + 1 if n < (1 << 64) - 1 else 1
        return n
