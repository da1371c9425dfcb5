"""Member guids with ekka_guid's layout: ``<<Ts:64, NPid:48, Seq:16>>`` (spec 3.2).

Nothing in ekka decodes a guid: only its byte order (``oldest``, spec 5.4) and its
use in the member hash matter. pyekka keeps the layout and offers two policies for
the time field (spec 16.2), see :class:`GuidPolicy`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from functools import reduce
from operator import xor
from typing import Final

from pyekka.term.types import Atom, Pid

__all__ = [
    "DEFER_BIT",
    "GUID_SIZE",
    "MAX_SEQ",
    "GuidGenerator",
    "GuidParts",
    "GuidPolicy",
    "from_hexstr",
    "guid_bytes",
    "is_deferred",
    "npid",
    "to_hexstr",
]

GUID_SIZE: Final = 16
MAX_SEQ: Final = 0xFFFF
DEFER_BIT: Final = 1 << 63
"""Top bit of the time field, set by :attr:`GuidPolicy.DEFER`."""

_TS_MASK = (1 << 64) - 1
_NPID_MASK = (1 << 48) - 1
_HEX = re.compile(r"[0-9A-Fa-f]+")


class GuidPolicy(Enum):
    """What a Python node puts in the 64-bit time field of its guid (spec 16.2).

    ``leader()``, ``coordinator()`` and autocluster's target are the member with the
    smallest guid, so the time field decides who leads.

    * ``GENUINE``: microseconds since the epoch, exactly as ekka. The Python node is
      as old as it is, and may lead genuine Erlang nodes (they then send it
      ``leader`` lock requests and autoheal reports).
    * ``DEFER`` (pyekka's default): the same microseconds with bit 63 set. Every
      genuine guid (whose time stays below 2**63 for some 290,000 years) is older,
      so a genuine member always leads a mixed cluster, whereas Python nodes keep
      their chronological order among themselves, so a Python-only cluster is led by
      its oldest Python node. ekka 0.8.1.9 never decodes the field, so this has no
      other effect on genuine nodes; it is also how :func:`is_deferred` recognises
      a pyekka member.
    """

    GENUINE = "genuine"
    DEFER = "defer"

    def time_field(self, now_us: int) -> int:
        """The 64-bit time field for a guid made at ``now_us`` microseconds."""
        if not 0 <= now_us < DEFER_BIT:
            raise ValueError(f"timestamp out of range: {now_us!r}")
        return now_us | DEFER_BIT if self is GuidPolicy.DEFER else now_us


@dataclass(frozen=True)
class GuidParts:
    """The three fields of a guid."""

    timestamp: int
    npid: int
    seq: int

    @classmethod
    def from_bytes(cls, guid: bytes) -> GuidParts:
        """Split a 16-byte guid (``ValueError`` for another size)."""
        if len(guid) != GUID_SIZE:
            raise ValueError(f"a guid has {GUID_SIZE} bytes, not {len(guid)}")
        value = int.from_bytes(guid, "big")
        return cls(value >> 64, (value >> 16) & _NPID_MASK, value & MAX_SEQ)

    def to_bytes(self) -> bytes:
        """The 16-byte guid."""
        return guid_bytes(self.timestamp, self.npid, self.seq)


def guid_bytes(timestamp: int, npid: int, seq: int) -> bytes:
    """``<<Ts:64, NPid:48, Seq:16>>``; fields out of range raise ``ValueError``."""
    if not (0 <= timestamp <= _TS_MASK and 0 <= npid <= _NPID_MASK and 0 <= seq <= MAX_SEQ):
        raise ValueError(f"guid field out of range: {(timestamp, npid, seq)!r}")
    return ((timestamp << 64) | (npid << 16) | seq).to_bytes(GUID_SIZE, "big")


def _node_text_bytes(node: Atom | str) -> bytes:
    # ekka hashes list_to_binary(atom_to_list(node())): one byte per character.
    # A name with a character above 255 makes genuine ekka crash; UTF-8 instead.
    text = node.name if isinstance(node, Atom) else node
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def npid(node: Atom | str, pid: Pid, *, legacy_pid_ext: bool = False) -> int:
    """The 48-bit NPid of a guid made by ``pid`` on ``node`` (spec 3.2).

    ``legacy_pid_ext`` reproduces nodes older than OTP 23, whose ``term_to_binary``
    wrote the old PID_EXT with a one-byte creation.
    """
    digest = hashlib.sha1(_node_text_bytes(node)).digest()
    ident = (pid.id & 0xFFFFFFFF).to_bytes(4, "big")
    serial = (pid.serial & 0xFFFFFFFF).to_bytes(4, "big")
    if legacy_pid_ext:
        creation = (pid.creation & 0xFF).to_bytes(1, "big")
    else:
        creation = (pid.creation & 0xFFFFFFFF).to_bytes(4, "big")
    node_byte1 = reduce(xor, digest[:10])
    node_byte2 = reduce(xor, digest[10:]) ^ reduce(xor, creation)
    pid_bytes = bytes(i ^ s for i, s in zip(ident, reversed(serial), strict=True))
    return int.from_bytes(bytes((node_byte1, node_byte2)) + pid_bytes, "big")


class GuidGenerator:
    """ekka_guid:gen/0 for one generating process: a fresh time, seq 0, 1, ... 65535, 0.

    Pure: the caller passes the clock reading (``erlang:system_time(microsecond)``).
    """

    def __init__(self, node: Atom | str, pid: Pid, policy: GuidPolicy = GuidPolicy.DEFER) -> None:
        self.npid = npid(node, pid)
        self.policy = policy
        self._seq: int | None = None

    def next(self, now_us: int) -> bytes:
        """The next guid, made at ``now_us``."""
        self._seq = 0 if self._seq is None or self._seq >= MAX_SEQ else self._seq + 1
        return guid_bytes(self.policy.time_field(now_us), self.npid, self._seq)


def is_deferred(guid: bytes | None) -> bool:
    """Whether ``guid`` was made with :attr:`GuidPolicy.DEFER` (a pyekka member)."""
    return guid is not None and len(guid) == GUID_SIZE and guid[0] >= 0x80


def to_hexstr(guid: bytes) -> str:
    """``ekka_guid:to_hexstr/1``: upper-case hex of the 128-bit integer, no leading zeros."""
    return format(int.from_bytes(guid, "big"), "X")


def from_hexstr(text: str) -> bytes:
    """``ekka_guid:from_hexstr/1``: the 16-byte guid of a hex string (any case)."""
    if not _HEX.fullmatch(text):
        raise ValueError(f"not a hex string: {text!r}")
    value = int(text, 16)
    if value >> 128:
        raise ValueError(f"not a 128-bit guid: {text!r}")
    return value.to_bytes(GUID_SIZE, "big")
