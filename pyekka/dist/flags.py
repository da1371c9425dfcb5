"""Distribution capability flags (``DFLAG_*``): every flag, what pyekka advertises,
what it requires from a peer, and a describer for logs.

The values are those of OTP's ``dist.hrl`` (OTP 25-28). Flags travel as a 64-bit
word in the ``N`` handshake messages (only the low 32 bits in the old ``n``
messages; the ``c`` complement then carries the high 32 bits). The flags used on
a connection are the bitwise AND of both sides' flags (``dist_util`` since OTP 21).
"""

from __future__ import annotations

from enum import IntFlag

__all__ = [
    "DEFAULT_FLAGS",
    "HEADER_FLAGS",
    "MANDATORY_25",
    "MANDATORY_26",
    "REQUIRED_FLAGS",
    "DFlag",
    "describe",
    "expand_mandatory_25",
    "missing_flags",
    "negotiate",
    "uses_dist_header",
]


class DFlag(IntFlag):
    """One distribution capability flag. Members are plain ``int`` bit values."""

    PUBLISHED = 0x01
    ATOM_CACHE = 0x02  # obsolete
    EXTENDED_REFERENCES = 0x04
    DIST_MONITOR = 0x08
    FUN_TAGS = 0x10
    DIST_MONITOR_NAME = 0x20
    HIDDEN_ATOM_CACHE = 0x40  # obsolete
    NEW_FUN_TAGS = 0x80
    EXTENDED_PIDS_PORTS = 0x100
    EXPORT_PTR_TAG = 0x200
    BIT_BINARIES = 0x400
    NEW_FLOATS = 0x800
    UNICODE_IO = 0x1000
    DIST_HDR_ATOM_CACHE = 0x2000
    SMALL_ATOM_TAGS = 0x4000
    ETS_COMPRESSED = 0x8000  # internal to the VM, never on the wire
    UTF8_ATOMS = 0x10000
    MAP_TAG = 0x20000
    BIG_CREATION = 0x40000
    SEND_SENDER = 0x80000
    BIG_SEQTRACE_LABELS = 0x100000
    PENDING_CONNECT = 0x200000  # internal to the VM, never on the wire
    EXIT_PAYLOAD = 0x400000
    FRAGMENTS = 0x800000
    HANDSHAKE_23 = 0x1000000
    UNLINK_ID = 0x2000000
    MANDATORY_25_DIGEST = 0x4000000
    SPAWN = 1 << 32
    NAME_ME = 2 << 32
    V4_NC = 4 << 32
    ALIAS = 8 << 32
    LOCAL_EXT = 16 << 32  # internal to the VM, never on the wire
    ALTACT_SIG = 32 << 32


#: The flags OTP 25 refuses to connect without (``MANDATORY_DFLAGS_25``).
MANDATORY_25: int = int(
    DFlag.EXTENDED_REFERENCES
    | DFlag.FUN_TAGS
    | DFlag.EXTENDED_PIDS_PORTS
    | DFlag.NEW_FUN_TAGS
    | DFlag.EXPORT_PTR_TAG
    | DFlag.BIT_BINARIES
    | DFlag.NEW_FLOATS
    | DFlag.UTF8_ATOMS
    | DFlag.MAP_TAG
    | DFlag.BIG_CREATION
    | DFlag.HANDSHAKE_23
)

#: Added to the mandatory set by OTP 26 (``MANDATORY_DFLAGS_26``).
MANDATORY_26: int = int(DFlag.V4_NC | DFlag.UNLINK_ID)

#: Flags that make the peer send distribution headers (tags 68/69/70) instead of
#: pass-through frames (112). pyekka can receive them; it need not advertise them.
HEADER_FLAGS: int = int(DFlag.DIST_HDR_ATOM_CACHE | DFlag.FRAGMENTS)

#: What pyekka advertises by default: every feature OTP 25-28 require or that ekka
#: uses (monitors, spawn for erpc, aliases, unlink ids), as a visible node, without
#: the atom cache and fragments (so peers send plain pass-through frames).
DEFAULT_FLAGS: int = int(
    MANDATORY_25
    | MANDATORY_26
    | DFlag.PUBLISHED
    | DFlag.DIST_MONITOR
    | DFlag.DIST_MONITOR_NAME
    | DFlag.UNICODE_IO
    | DFlag.SMALL_ATOM_TAGS
    | DFlag.SEND_SENDER
    | DFlag.BIG_SEQTRACE_LABELS
    | DFlag.EXIT_PAYLOAD
    | DFlag.MANDATORY_25_DIGEST
    | DFlag.SPAWN
    | DFlag.ALIAS
)

#: What pyekka requires from a peer: the OTP 25 mandatory set (OTP 23 and 24 nodes,
#: which ekka 0.8 runs on, have all of it).
REQUIRED_FLAGS: int = MANDATORY_25

_NAMES: dict[int, str] = {int(f): f.name for f in DFlag if f.name}


def expand_mandatory_25(flags: int) -> int:
    """``flags`` with every OTP 25 mandatory flag added when MANDATORY_25_DIGEST is set.

    OTP 25 and later accept that single bit as shorthand for the whole set.
    """
    if flags & DFlag.MANDATORY_25_DIGEST:
        return int(flags) | MANDATORY_25
    return int(flags)


def missing_flags(required: int, flags: int) -> int:
    """The bits of ``required`` that ``flags`` lacks."""
    return int(required) & ~int(flags)


def negotiate(ours: int, theirs: int) -> int:
    """The flags a connection uses: the AND of both sides (after digest expansion)."""
    return expand_mandatory_25(ours) & expand_mandatory_25(theirs)


def uses_dist_header(flags: int) -> bool:
    """Whether a connection with these negotiated flags carries distribution headers.

    With DIST_HDR_ATOM_CACHE or FRAGMENTS every frame is ``131, 68|69|70, ...``;
    otherwise every frame is a pass-through frame starting with 112.
    """
    return bool(flags & HEADER_FLAGS)


def describe(flags: int) -> str:
    """Flag names joined by ``|`` (low bit first); unknown bits as hex. ``0`` -> ``"0"``."""
    if flags < 0:
        raise ValueError("flags cannot be negative")
    parts = []
    unknown = 0
    bit = 1
    rest = flags
    while rest:
        if rest & bit:
            name = _NAMES.get(bit)
            if name is None:
                unknown |= bit
            else:
                parts.append(name)
            rest &= ~bit
        bit <<= 1
    if unknown:
        parts.append(f"UNKNOWN<{unknown:#x}>")
    return "|".join(parts) if parts else "0"
