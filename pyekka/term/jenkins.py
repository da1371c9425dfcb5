"""Bob Jenkins' 1996 hash ("lookup2"), the core of both of the VM's term hashes.

``erlang:phash2`` (:mod:`pyekka.term.phash2`) and the internal hash that orders
large maps (:mod:`pyekka.term.maphash`) fold a term into 32 bits with the same 96-bit
mix and the same block hash for byte strings; only their constants and the way
they walk a term differ.

Besides the scalar functions, :func:`block_hashes` and :func:`word_hashes` hash many
inputs at once, with 32-bit arithmetic in the lanes of one big Python integer:
lane ``i`` is bits ``64*i .. 64*i+63``, a 32-bit value sits in its low half.
Adding ``2**34`` to a lane before subtracting two such values never borrows from
the next lane, left shifts by up to 16 stay inside it, and the bits a right shift
by up to 15 brings down from the next lane land at bit 49 or higher; so each line
of the mix is one expression on the whole integer, masked back to 32 bits per lane.
A group of keys then costs a few dozen big-integer operations instead of a few
dozen Python operations per key.
"""

from __future__ import annotations

import struct

__all__ = ["GOLDEN", "LANES_MIN", "block_hash", "block_hashes", "mix", "word_hashes"]

M32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9
"""The golden ratio constant that starts ``a`` and ``b`` of the block hash."""

LANES_MIN = 4
"""The fewest inputs for which hashing in lanes is faster (measured) than one by one."""

_words3 = struct.Struct("<3I").iter_unpack
_unpack3 = struct.Struct("<3I").unpack
_PADDING = tuple(bytes(12 - n) for n in range(12))
_LANE_ONE = (1).to_bytes(8, "little")


def mix(a: int, b: int, c: int) -> int:
    """Jenkins' 96-bit mix; returns the mixed ``c``.

    ``c`` must be in ``0 .. 2**32-1``; ``a`` and ``b`` need only be right modulo
    ``2**32`` (any ints: ``GOLDEN - x`` is fine).
    """
    a = ((a - b - c) ^ (c >> 13)) & M32
    b = ((b - c - a) ^ (a << 8)) & M32
    c = ((c - a - b) ^ (b >> 13)) & M32
    a = ((a - b - c) ^ (c >> 12)) & M32
    b = ((b - c - a) ^ (a << 16)) & M32
    c = ((c - a - b) ^ (b >> 5)) & M32
    a = ((a - b - c) ^ (c >> 3)) & M32
    b = ((b - c - a) ^ (a << 10)) & M32
    return ((c - a - b) ^ (b >> 15)) & M32


def block_hash(data: bytes | bytearray, initval: int) -> int:
    """Jenkins' lookup2 hash of ``data`` seeded with ``initval`` (in ``0 .. 2**32-1``)."""
    length = len(data)
    rem = length % 12
    a = b = GOLDEN
    c = initval
    if length >= 12:
        for x, y, z in _words3(memoryview(data)[: length - rem] if rem else data):
            a += x
            b += y
            c = (c + z) & M32
            a = ((a - b - c) ^ (c >> 13)) & M32
            b = ((b - c - a) ^ (a << 8)) & M32
            c = ((c - a - b) ^ (b >> 13)) & M32
            a = ((a - b - c) ^ (c >> 12)) & M32
            b = ((b - c - a) ^ (a << 16)) & M32
            c = ((c - a - b) ^ (b >> 5)) & M32
            a = ((a - b - c) ^ (c >> 3)) & M32
            b = ((b - c - a) ^ (a << 10)) & M32
            c = ((c - a - b) ^ (b >> 15)) & M32
    if rem:
        # The last 0..11 bytes: 0-3 into a, 4-7 into b, 8-10 into c above its low
        # byte (which is reserved for the length).
        x, y, z = _unpack3(data[length - rem :] + _PADDING[rem])
        a += x
        b += y
        c += z << 8
    return mix(a, b, (c + length) & M32)


# ---------------------------------------------------------------- in lanes


def _lane_constants(n: int) -> tuple[int, int, int]:
    """``(one, mask, bias)`` for ``n`` lanes: 1, 2**32-1 and 2**34 in every lane."""
    one = int.from_bytes(_LANE_ONE * n, "little")
    return one, M32 * one, one << 34


def _mix_lanes(a: int, b: int, c: int, m: int, z: int) -> tuple[int, int, int]:
    """:func:`mix` in every lane of clean lane integers.

    ``m`` is the lane mask and ``z`` the lane bias; ``x | z`` is ``x + z`` for a
    clean ``x`` (no bit above 31 in any lane), and cheaper.
    """
    a = (((a | z) - b - c) ^ (c >> 13)) & m
    b = (((b | z) - c - a) ^ (a << 8)) & m
    c = (((c | z) - a - b) ^ (b >> 13)) & m
    a = (((a | z) - b - c) ^ (c >> 12)) & m
    b = (((b | z) - c - a) ^ (a << 16)) & m
    c = (((c | z) - a - b) ^ (b >> 5)) & m
    a = (((a | z) - b - c) ^ (c >> 3)) & m
    b = (((b | z) - c - a) ^ (a << 10)) & m
    c = (((c | z) - a - b) ^ (b >> 15)) & m
    return a, b, c


def _lane_words(blob: bytes, size: int, offset: int, n: int) -> int:
    """The lane integer of the little-endian words at ``offset`` of ``n`` strings of
    ``size`` bytes each, held end to end in ``blob`` (zero past a string's end)."""
    if offset >= size:
        return 0
    lanes = bytearray(8 * n)
    for j in range(min(4, size - offset)):
        lanes[j::8] = blob[offset + j :: size]
    return int.from_bytes(lanes, "little")


def _lane_values(lanes: int, n: int) -> list[int]:
    """The low 32 bits of each of the ``n`` lanes."""
    raw = lanes.to_bytes(8 * n, "little")
    low = bytearray(4 * n)
    for j in range(4):
        low[j::4] = raw[j::8]
    return list(struct.unpack(f"<{n}I", low))


def block_hashes(items: list[bytes], size: int, initval: int) -> list[int]:
    """``[block_hash(x, initval) for x in items]`` for ``items`` that are all ``size``
    bytes long, computed in lanes (``initval`` in ``0 .. 2**32-1``)."""
    n = len(items)
    one, m, z = _lane_constants(n)
    blob = b"".join(items)
    a = b = GOLDEN * one
    c = initval * one
    last = size // 12  # the block that takes the length (it may hold no data)
    for block in range(last + 1):
        at = 12 * block
        a = (a + _lane_words(blob, size, at, n)) & m
        b = (b + _lane_words(blob, size, at + 4, n)) & m
        word = _lane_words(blob, size, at + 8, n)
        if block == last:
            word = size * one + (word << 8)
        a, b, c = _mix_lanes(a, b, (c + word) & m, m, z)
    return _lane_values(c, n)


def word_hashes(words: list[int], add: int, c: int) -> list[int]:
    """``[mix(add + (w & M32), add + (w >> 32), c) for w in words]`` for 64-bit
    ``words``, computed in lanes (``add`` and ``c`` in ``0 .. 2**32-1``)."""
    n = len(words)
    one, m, z = _lane_constants(n)
    packed = int.from_bytes(struct.pack(f"<{n}Q", *words), "little")
    a = (add * one + (packed & m)) & m
    b = (add * one + ((packed >> 32) & m)) & m
    return _lane_values(_mix_lanes(a, b, c * one, m, z)[2], n)
