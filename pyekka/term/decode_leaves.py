"""Reading the external format's leaf terms: what :mod:`pyekka.term.decode` calls.

Each reader takes the whole input and the offset of a term's tag byte and returns
``(value, next_offset)``: atoms (with the caches of atoms already seen), integers,
bignums, old text floats, bitstrings, pids, ports, references, export funs and the
fixed part of a local fun. They check what OTP checks and raise
:class:`DecodeError`; a read past the end of the input raises ``IndexError`` or
``struct.error``, which the decoder turns into :func:`truncated_error`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from struct import Struct
from typing import Any

from pyekka.term.errors import DecodeError
from pyekka.term.tags import (
    ATOM_CACHE_REF,
    ATOM_EXT,
    ATOM_UTF8_EXT,
    BINARY_EXT,
    BIT_BINARY_EXT,
    FLOAT_EXT,
    FLOAT_EXT_SIZE,
    INTEGER_EXT,
    LARGE_BIG_EXT,
    LARGE_TUPLE_EXT,
    LIST_EXT,
    MAP_EXT,
    MAX_ATOM_CHARS,
    MAX_ATOM_UTF8_BYTES,
    MAX_OLD_CREATION,
    MAX_OLD_REF_WORD0,
    MAX_REF_WORDS,
    NEW_FLOAT_EXT,
    NEW_PID_EXT,
    NEW_PORT_EXT,
    NEW_REFERENCE_EXT,
    NEWER_REFERENCE_EXT,
    PID_EXT,
    REFERENCE_EXT,
    SMALL_ATOM_EXT,
    SMALL_ATOM_UTF8_EXT,
    SMALL_BIG_EXT,
    SMALL_INTEGER_EXT,
    SMALL_TUPLE_EXT,
    STRING_EXT,
    V4_PORT_EXT,
    tag_name,
)
from pyekka.term.types import Atom, BitString, ExportFun, Pid, Port, Reference

__all__ = [
    "ATOM_CACHE_LIMIT",
    "BIG_TAGS",
    "latin1_atoms",
    "new_latin1_atom",
    "new_utf8_atom",
    "read_atom",
    "read_big",
    "read_bit_binary",
    "read_export",
    "read_fun_head",
    "read_node",
    "read_old_float",
    "read_pid",
    "read_port",
    "read_ref",
    "short_error",
    "truncated_error",
    "utf8_atoms",
]

_U16 = Struct(">H").unpack_from
_U32 = Struct(">I").unpack_from
_I32 = Struct(">i").unpack_from
_U32X2 = Struct(">II").unpack_from
_U32X3 = Struct(">III").unpack_from
_U32_U8 = Struct(">IB").unpack_from
_U32X2_U8 = Struct(">IIB").unpack_from
_U64_U32 = Struct(">QI").unpack_from
_FUN_HEAD = Struct(">B16sII").unpack_from  # arity, uniq, index, num_free (after Size)

# Syntax OTP's sys_chars_to_double accepts for the text of a FLOAT_EXT.
_FLOAT_TEXT = re.compile(rb"[+-]?[0-9]+[.,][0-9]+(?:[eE][+-]?[0-9]+)?")

_SMALL_MIN = -(1 << 59)  # OTP's immediate integers (64-bit VM): old fun index/uniq
_SMALL_MAX = (1 << 59) - 1
_MAX_EXPORT_ARITY = (1 << 31) - 1  # larger arities are mis-handled by OTP 25 itself

_SHORT_ATOM_TAGS = frozenset((SMALL_ATOM_UTF8_EXT, SMALL_ATOM_EXT))
_LONG_ATOM_TAGS = frozenset((ATOM_UTF8_EXT, ATOM_EXT))
_UTF8_ATOM_TAGS = frozenset((SMALL_ATOM_UTF8_EXT, ATOM_UTF8_EXT))
BIG_TAGS = frozenset((SMALL_BIG_EXT, LARGE_BIG_EXT))

# Bytes each hot tag needs after the tag byte, for truncation messages.
_HEAD_SIZE = {
    SMALL_INTEGER_EXT: 1,
    INTEGER_EXT: 4,
    NEW_FLOAT_EXT: 8,
    SMALL_TUPLE_EXT: 1,
    LARGE_TUPLE_EXT: 4,
    LIST_EXT: 4,
    STRING_EXT: 2,
    BINARY_EXT: 4,
    BIT_BINARY_EXT: 5,
    MAP_EXT: 4,
    SMALL_ATOM_UTF8_EXT: 1,
    SMALL_ATOM_EXT: 1,
    ATOM_UTF8_EXT: 2,
    ATOM_EXT: 2,
    SMALL_BIG_EXT: 2,
    LARGE_BIG_EXT: 5,
    FLOAT_EXT: FLOAT_EXT_SIZE,
    ATOM_CACHE_REF: 1,
}

# ---------------------------------------------------------------- atoms

ATOM_CACHE_LIMIT = 4096
utf8_atoms: dict[bytes, Any] = {}
latin1_atoms: dict[bytes, Any] = {}
_TRUE_ATOM = Atom("true")
_FALSE_ATOM = Atom("false")


def _atom_value(name: str) -> Any:
    if name == "true":
        return True
    if name == "false":
        return False
    return Atom(name)


def new_utf8_atom(raw: bytes, pos: int) -> Any:
    """Validate a UTF-8 atom name seen for the first time and cache its value."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("atom name is not valid UTF-8", pos) from None
    if len(name) > MAX_ATOM_CHARS:
        raise DecodeError(f"atom has {len(name)} characters, more than {MAX_ATOM_CHARS}", pos)
    value = _atom_value(name)
    if len(utf8_atoms) >= ATOM_CACHE_LIMIT:
        utf8_atoms.clear()
    utf8_atoms[raw] = value
    return value


def new_latin1_atom(raw: bytes, pos: int) -> Any:
    """Validate a latin-1 atom name seen for the first time and cache its value."""
    if len(raw) > MAX_ATOM_CHARS:
        raise DecodeError(f"atom has {len(raw)} characters, more than {MAX_ATOM_CHARS}", pos)
    value = _atom_value(raw.decode("latin-1"))
    if len(latin1_atoms) >= ATOM_CACHE_LIMIT:
        latin1_atoms.clear()
    latin1_atoms[raw] = value
    return value


def _cached_atom(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> Atom:
    """The atom an ``ATOM_CACHE_REF`` at ``pos`` points to."""
    if atom_cache is None:
        raise DecodeError("ATOM_CACHE_REF (82) is only valid inside a distribution frame", pos)
    index = data[pos + 1]
    try:
        atom = atom_cache[index]
    except (IndexError, KeyError):
        atom = None
    if type(atom) is bool:
        atom = _TRUE_ATOM if atom else _FALSE_ATOM
    if type(atom) is not Atom:
        raise DecodeError(f"ATOM_CACHE_REF {index} is not in the atom cache", pos)
    return atom


def read_atom(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Any, int]:
    """Any atom encoding at ``pos``: ``(value, next_pos)``; ``true``/``false`` are bools."""
    tag = data[pos]
    if tag in _SHORT_ATOM_TAGS:
        n = data[pos + 1]
        p = pos + 2
    elif tag in _LONG_ATOM_TAGS:
        n = _U16(data, pos + 1)[0]
        p = pos + 3
    elif tag == ATOM_CACHE_REF:
        atom = _cached_atom(data, pos, atom_cache)
        if atom.name == "true":
            return True, pos + 2
        if atom.name == "false":
            return False, pos + 2
        return atom, pos + 2
    else:
        raise DecodeError(f"expected an atom, found {tag_name(tag)}", pos)
    end = p + n
    if end > len(data):
        raise short_error(data, pos, f"{tag_name(tag)} name", n, p)
    raw = data[p:end]
    if tag in _UTF8_ATOM_TAGS:
        if n > MAX_ATOM_UTF8_BYTES:
            raise DecodeError(f"atom has {n} bytes of UTF-8, more than 255 characters", pos)
        value = utf8_atoms.get(raw)
        if value is None:
            value = new_utf8_atom(raw, pos)
    else:
        value = latin1_atoms.get(raw)
        if value is None:
            value = new_latin1_atom(raw, pos)
    return value, end


def read_node(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Atom, int]:
    """An atom in a node/module/function field: always an :class:`Atom`, never a bool."""
    value, pos = read_atom(data, pos, atom_cache)
    if type(value) is bool:
        value = _TRUE_ATOM if value else _FALSE_ATOM
    return value, pos


# ---------------------------------------------------------------- leaves


def short_error(data: bytes, pos: int, what: str, need: int, at: int) -> DecodeError:
    """The error for ``need`` bytes of ``what`` at ``at`` that the input does not hold."""
    left = max(len(data) - at, 0)
    return DecodeError(f"truncated: need {need} bytes for {what}, {left} left", pos)


def truncated_error(data: bytes, pos: int) -> DecodeError:
    """The error for a read past the end of ``data`` while decoding the term at ``pos``."""
    if pos >= len(data):
        return DecodeError("truncated: input ends where a term should start", len(data))
    tag = data[pos]
    need = _HEAD_SIZE.get(tag)
    left = len(data) - pos - 1
    if need is not None and need > left:
        return DecodeError(f"truncated: need {need} bytes for {tag_name(tag)}, {left} left", pos)
    return DecodeError(f"truncated: input ends inside {tag_name(tag)}", pos)


def read_int(data: bytes, pos: int, max_big: int) -> tuple[int, int]:
    """An integer in any integer encoding (fun and export fields)."""
    tag = data[pos]
    if tag == SMALL_INTEGER_EXT:
        return data[pos + 1], pos + 2
    if tag == INTEGER_EXT:
        return _I32(data, pos + 1)[0], pos + 5
    if tag in BIG_TAGS:
        return read_big(data, pos, max_big)
    raise DecodeError(f"expected an integer, found {tag_name(tag)}", pos)


def read_big(data: bytes, pos: int, max_big: int) -> tuple[int, int]:
    """``SMALL_BIG_EXT`` / ``LARGE_BIG_EXT``: any non-zero sign byte means negative."""
    if data[pos] == SMALL_BIG_EXT:
        n, sign = data[pos + 1], data[pos + 2]
        p = pos + 3
    else:
        n, sign = _U32_U8(data, pos + 1)
        p = pos + 6
    end = p + n
    if end > len(data):
        raise short_error(data, pos, f"{tag_name(data[pos])} digits", n, p)
    if n > max_big:
        raise DecodeError(f"bignum of {n} bytes is over max_bignum_bytes={max_big}", pos)
    value = int.from_bytes(data[p:end], "little")
    return (-value if sign else value), end


def read_old_float(data: bytes, pos: int) -> tuple[float, int]:
    """``FLOAT_EXT``: 31 bytes of ``"%.20e"`` text, checked like OTP checks it."""
    p = pos + 1
    end = p + FLOAT_EXT_SIZE
    if end > len(data):
        raise short_error(data, pos, "FLOAT_EXT", FLOAT_EXT_SIZE, p)
    m = _FLOAT_TEXT.match(data, p)
    # OTP reads the text as a C string: it must end at a NUL (even one past the 31 bytes).
    if m is None or m.end() >= len(data) or data[m.end()] != 0:
        text = data[p:end].split(b"\0", 1)[0]
        raise DecodeError(f"FLOAT_EXT text {text!r} is not a float", pos)
    value = float(data[p : m.end()].replace(b",", b"."))
    if value - value != 0.0:
        raise DecodeError("FLOAT_EXT value is out of range", pos)
    return value, end


def read_bit_binary(data: bytes, pos: int) -> tuple[Any, int]:
    n, bits = _U32_U8(data, pos + 1)
    if (bits == 0) != (n == 0) or bits > 8:
        raise DecodeError(f"BIT_BINARY_EXT with {n} bytes cannot have {bits} bits in the last", pos)
    p = pos + 6
    end = p + n
    if end > len(data):
        raise short_error(data, pos, "BIT_BINARY_EXT data", n, p)
    if bits == 8 or n == 0:
        return data[p:end], end
    return BitString(data[p:end], bits), end


def read_pid(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Pid, int]:
    """``NEW_PID_EXT`` or legacy ``PID_EXT`` (8-bit creation, at most 3)."""
    tag = data[pos]
    node, p = read_node(data, pos + 1, atom_cache)
    if tag == NEW_PID_EXT:
        num, serial, creation = _U32X3(data, p)
        return Pid(node, num, serial, creation), p + 12
    num, serial, creation = _U32X2_U8(data, p)
    if creation > MAX_OLD_CREATION:
        raise DecodeError(f"PID_EXT creation {creation} is over {MAX_OLD_CREATION}", pos)
    return Pid(node, num, serial, creation), p + 9


def read_port(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Port, int]:
    """``V4_PORT_EXT``, ``NEW_PORT_EXT`` or legacy ``PORT_EXT``."""
    tag = data[pos]
    node, p = read_node(data, pos + 1, atom_cache)
    if tag == V4_PORT_EXT:
        num, creation = _U64_U32(data, p)
        return Port(node, num, creation), p + 12
    if tag == NEW_PORT_EXT:
        num, creation = _U32X2(data, p)
        return Port(node, num, creation), p + 8
    num, creation = _U32_U8(data, p)
    if creation > MAX_OLD_CREATION:
        raise DecodeError(f"PORT_EXT creation {creation} is over {MAX_OLD_CREATION}", pos)
    return Port(node, num, creation), p + 5


def read_ref(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Reference, int]:
    """``NEWER_REFERENCE_EXT``, ``NEW_REFERENCE_EXT`` or ``REFERENCE_EXT``."""
    tag = data[pos]
    if tag == REFERENCE_EXT:
        node, p = read_node(data, pos + 1, atom_cache)
        word, creation = _U32_U8(data, p)
        if word > MAX_OLD_REF_WORD0:
            raise DecodeError(f"REFERENCE_EXT id {word} does not fit 18 bits", pos)
        if creation > MAX_OLD_CREATION:
            raise DecodeError(f"REFERENCE_EXT creation {creation} is over 3", pos)
        return Reference(node, creation, (word,)), p + 5
    count = _U16(data, pos + 1)[0]
    if count > MAX_REF_WORDS:
        raise DecodeError(f"{tag_name(tag)} has {count} id words, more than {MAX_REF_WORDS}", pos)
    node, p = read_node(data, pos + 3, atom_cache)
    if tag == NEWER_REFERENCE_EXT:
        creation = _U32(data, p)[0]
        p += 4
    else:
        creation = data[p]
        p += 1
        if creation > MAX_OLD_CREATION:
            raise DecodeError(f"NEW_REFERENCE_EXT creation {creation} is over 3", pos)
    ids = Struct(f">{count}I").unpack_from(data, p) if count else ()
    if tag == NEW_REFERENCE_EXT and count and ids[0] > MAX_OLD_REF_WORD0:
        raise DecodeError(f"NEW_REFERENCE_EXT first id {ids[0]} does not fit 18 bits", pos)
    return Reference(node, creation, ids), p + 4 * count


def read_export(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[ExportFun, int]:
    """``EXPORT_EXT``: module and function atoms, then the arity as an integer term."""
    module, p = read_node(data, pos + 1, atom_cache)
    function, p = read_node(data, p, atom_cache)
    arity, end = read_int(data, p, 16)
    if not 0 <= arity <= _MAX_EXPORT_ARITY:
        raise DecodeError(f"EXPORT_EXT arity {arity} is out of range", pos)
    return ExportFun(module, function, arity), end


def read_fun_head(
    data: bytes, pos: int, atom_cache: Sequence[Any] | None
) -> tuple[tuple, int, int]:
    """The fixed part of ``NEW_FUN_EXT``: ``(fields, num_free, next_pos)``.

    The Size field is not checked (OTP does not check it either).
    """
    arity, uniq, index, num_free = _FUN_HEAD(data, pos + 5)
    module, p = read_node(data, pos + 30, atom_cache)
    old_index, p = read_int(data, p, 16)
    old_uniq, p = read_int(data, p, 16)
    if not (_SMALL_MIN <= old_index <= _SMALL_MAX and _SMALL_MIN <= old_uniq <= _SMALL_MAX):
        raise DecodeError("NEW_FUN_EXT OldIndex/OldUniq is not a small integer", pos)
    if data[p] != NEW_PID_EXT and data[p] != PID_EXT:
        raise DecodeError(f"NEW_FUN_EXT creator must be a pid, found {tag_name(data[p])}", p)
    pid, p = read_pid(data, p, atom_cache)
    return (module, arity, old_index, old_uniq, index, uniq, pid), num_free, p
