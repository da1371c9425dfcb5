"""Erlang's bit syntax, for building the binary literals of term text.

A segment ``Value:Size/Types`` is built in three steps: :class:`SegmentSpec`
merges its type list (``/integer-little-unit:8``, names from :func:`type_settings`)
as ``erl_bits`` does, :meth:`SegmentSpec.resolve` applies Erlang's defaults, and
:func:`put_value` appends the value's bits to a :class:`BitWriter`. Failures raise
``ValueError`` where OTP raises ``badarg``; a literal over 16 MiB is refused.
"""

from __future__ import annotations

import math
import struct
import sys
from typing import Any

from pyekka.term.types import BitString

__all__ = ["MAX_BINARY_BITS", "BitWriter", "SegmentSpec", "put_value", "type_settings"]

MAX_BINARY_BITS = 8 << 24  # 16 MiB per binary literal
_SEGMENT_TYPES = frozenset(("integer", "float", "binary", "utf8", "utf16", "utf32"))
_TYPE_UNITS = {"bytes": 8, "bitstring": 1, "bits": 1}  # binary with a fixed unit
_UTF_TYPES = frozenset(("utf8", "utf16", "utf32"))
_ENDIANS = frozenset(("big", "little", "native"))
_SIGNS = frozenset(("signed", "unsigned"))


def type_settings(name: str) -> tuple[tuple[str, Any], ...] | None:
    """The ``(field, value)`` pairs a bit type name sets, or None if not one.

    ``unit:N`` is not a name: its parser sets ``("unit", N)`` itself.
    """
    if name in _TYPE_UNITS:
        return (("type", "binary"), ("unit", _TYPE_UNITS[name]))
    if name in _SEGMENT_TYPES:
        return (("type", name),)
    if name in _ENDIANS:
        return (("endian", name),)
    if name in _SIGNS:
        return (("sign", name),)
    return None


class SegmentSpec:
    """The type list of a binary segment, merged as ``erl_bits:set_bit_type/2`` does."""

    __slots__ = ("endian", "sign", "type", "unit")

    def __init__(self) -> None:
        self.type: str | None = None
        self.unit: int | None = None
        self.endian: str | None = None
        self.sign: str | None = None

    def merge(self, field: str, value: Any) -> None:
        """Set ``field``; ValueError if the list already set it to another value."""
        old = getattr(self, field)
        if old is not None and old != value:
            raise ValueError(f"conflicting bit types: {field} {old} and {value}")
        setattr(self, field, value)

    def resolve(self, size: int | None) -> tuple[str, int | None, int, str]:
        """``(type, size, unit, endian)`` with Erlang's defaults; size None = all."""
        stype = self.type or "integer"
        unit = self.unit
        endian = self.endian or "big"
        if endian == "native":
            endian = sys.byteorder
        if stype in _UTF_TYPES:
            if size is not None or unit is not None:
                raise ValueError(f"{stype} segments take no size or unit")
            return stype, None, 1, endian
        if size is None:
            if stype == "binary":
                return stype, None, unit or 8, endian
            if unit is not None:
                raise ValueError("a unit needs a size")
            return stype, (64 if stype == "float" else 8), 1, endian
        return stype, size, unit or (8 if stype == "binary" else 1), endian


class BitWriter:
    """Collects bits: whole bytes in a bytearray, the last partial byte apart."""

    __slots__ = ("data", "nbits", "pending", "pending_bits")

    def __init__(self) -> None:
        self.data = bytearray()
        self.pending = 0
        self.pending_bits = 0
        self.nbits = 0

    def put(self, value: int, bits: int) -> None:
        """Append the low ``bits`` bits of ``value`` (non-negative), big-endian."""
        if bits <= 0:
            return
        if self.nbits + bits > MAX_BINARY_BITS:
            raise ValueError("binary literal too large")
        value &= (1 << bits) - 1
        total = (self.pending << bits) | value
        total_bits = self.pending_bits + bits
        whole, rest = divmod(total_bits, 8)
        if whole:
            self.data += (total >> rest).to_bytes(whole, "big")
        self.pending = total & ((1 << rest) - 1)
        self.pending_bits = rest
        self.nbits += bits

    def put_bytes(self, data: bytes) -> None:
        """Append whole bytes."""
        self.put_bits(data, 8 * len(data))

    def put_bits(self, v: bytes | BitString, bits: int) -> None:
        """Append the first ``bits`` bits of a binary or bitstring."""
        data = v.data if type(v) is BitString else v
        have = v.bit_size if type(v) is BitString else 8 * len(v)
        if bits > have:
            raise ValueError(f"the value has only {have} bits")
        if self.nbits + bits > MAX_BINARY_BITS:
            raise ValueError("binary literal too large")
        whole, rest = divmod(bits, 8)
        if not self.pending_bits:
            self.data += data[:whole]
            self.nbits += 8 * whole
        else:
            for b in data[:whole]:
                self.put(b, 8)
        if rest:
            self.put(data[whole] >> (8 - rest), rest)

    def value(self) -> bytes | BitString:
        """What was written: a binary, or a bitstring if the last byte is partial."""
        if not self.pending_bits:
            return bytes(self.data)
        last = self.pending << (8 - self.pending_bits)
        return BitString(bytes(self.data) + bytes([last]), self.pending_bits)


def put_value(
    out: BitWriter, value: Any, stype: str, size: int | None, unit: int, endian: str
) -> None:
    """Erlang's bit-syntax construction of one value (ValueError where OTP says badarg)."""
    if stype == "integer":
        if type(value) is not int:
            raise ValueError("an integer segment needs an integer")
        bits = size * unit  # type: ignore[operator]
        if bits > MAX_BINARY_BITS:
            raise ValueError("binary literal too large")
        if endian == "big" or bits <= 8:
            out.put(value, bits)
            return
        whole, rest = divmod(bits, 8)  # little-endian: low bytes first, the high bits last
        value &= (1 << bits) - 1
        out.put_bits(value.to_bytes(whole + 1, "little")[:whole], 8 * whole)
        out.put(value >> (8 * whole), rest)
    elif stype == "float":
        if type(value) is not int and type(value) is not float:
            raise ValueError("a float segment needs a number")
        bits = size * unit  # type: ignore[operator]
        fmt = {16: "e", 32: "f", 64: "d"}.get(bits)
        if fmt is None:
            raise ValueError("float segments are 16, 32 or 64 bits")
        fmt = ("<" if endian == "little" else ">") + fmt
        number = float(value)
        try:
            packed = struct.pack(fmt, number)
        except OverflowError:  # as OTP 25: too big for the size gives infinity
            packed = struct.pack(fmt, math.copysign(math.inf, number))
        out.put_bits(packed, bits)
    elif stype == "binary":
        if type(value) is not bytes and type(value) is not BitString:
            raise ValueError("a binary segment needs a binary")
        have = value.bit_size if type(value) is BitString else 8 * len(value)
        if size is None and have % unit:
            raise ValueError(f"the binary's size is not a multiple of the unit {unit}")
        out.put_bits(value, have if size is None else size * unit)
    else:
        if type(value) is not int or not _is_code_point(value):
            raise ValueError(f"{value!r} is not a Unicode code point")
        codec = "utf-8" if stype == "utf8" else f"{stype[:3]}-{stype[3:]}-{endian[0]}e"
        encoded = chr(value).encode(codec)
        out.put_bits(encoded, 8 * len(encoded))


def _is_code_point(c: int) -> bool:
    return 0 <= c < 0xD800 or 0xDFFF < c <= 0x10FFFF
