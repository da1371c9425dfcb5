"""Decoding the external term format: :func:`binary_to_term` and :func:`decode_term`.

The decoder accepts what OTP 25's ``binary_to_term/1`` accepts and rejects what it
rejects (legacy tags included), and is safe on hostile input: one explicit stack
instead of recursion, every declared length checked against the bytes that are
really there before anything is allocated, and limits on nesting depth, bignum
size and inflated size. Every failure raises :class:`DecodeError` with the offset
of the offending term.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from struct import Struct
from struct import error as StructError
from typing import Any

from pyekka.term.encode import map_key
from pyekka.term.errors import DecodeError
from pyekka.term.tags import (
    ATOM_CACHE_REF,
    ATOM_EXT,
    ATOM_UTF8_EXT,
    BINARY_EXT,
    BIT_BINARY_EXT,
    COMPRESSED,
    DIST_FRAG_HEADER,
    DIST_HEADER,
    EXPORT_EXT,
    FLOAT_EXT,
    FLOAT_EXT_SIZE,
    FUN_EXT,
    INTEGER_EXT,
    LARGE_BIG_EXT,
    LARGE_TUPLE_EXT,
    LIST_EXT,
    LOCAL_EXT,
    MAP_EXT,
    MAX_ATOM_CHARS,
    MAX_ATOM_UTF8_BYTES,
    MAX_OLD_CREATION,
    MAX_OLD_REF_WORD0,
    MAX_REF_WORDS,
    NEW_FLOAT_EXT,
    NEW_FUN_EXT,
    NEW_PID_EXT,
    NEW_PORT_EXT,
    NEW_REFERENCE_EXT,
    NEWER_REFERENCE_EXT,
    NIL_EXT,
    PID_EXT,
    PORT_EXT,
    REFERENCE_EXT,
    SMALL_ATOM_EXT,
    SMALL_ATOM_UTF8_EXT,
    SMALL_BIG_EXT,
    SMALL_INTEGER_EXT,
    SMALL_TUPLE_EXT,
    STRING_EXT,
    V4_PORT_EXT,
    VERSION_MAGIC,
    tag_name,
)
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
)

__all__ = [
    "DEFAULT_MAX_BIGNUM_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_INFLATED",
    "binary_to_term",
    "decode_term",
]

DEFAULT_MAX_DEPTH = 10_000
"""Default limit on nested containers (tuples, lists, maps, fun environments)."""

DEFAULT_MAX_INFLATED = 64 << 20
"""Default limit on the inflated size of a ``COMPRESSED`` term, in bytes."""

DEFAULT_MAX_BIGNUM_BYTES = 1 << 20
"""Default limit on the magnitude of one bignum, in bytes (8 Mbit)."""

_U16 = Struct(">H").unpack_from
_U32 = Struct(">I").unpack_from
_I32 = Struct(">i").unpack_from
_F64 = Struct(">d").unpack_from
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
_OTHER_ATOM_TAGS = frozenset((SMALL_ATOM_EXT, ATOM_UTF8_EXT, ATOM_CACHE_REF))  # the rarer ones
_BIG_TAGS = frozenset((SMALL_BIG_EXT, LARGE_BIG_EXT))
_PID_TAGS = frozenset((NEW_PID_EXT, PID_EXT))
_PORT_TAGS = frozenset((V4_PORT_EXT, NEW_PORT_EXT, PORT_EXT))
_REF_TAGS = frozenset((NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT, REFERENCE_EXT))

_BYTE_RUN = 16  # LIST_EXTs of at least this many elements are checked for all small ints

# Container kinds on the decode stack.
_TOP, _TUPLE, _LIST, _MAP, _FUN = 0, 1, 2, 3, 4

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

_NOT_A_TERM = {
    LOCAL_EXT: "LOCAL_EXT (121) is a node-local encoding (OTP 26+) that cannot be decoded here",
    FUN_EXT: "FUN_EXT (117) is the pre-R8 fun encoding, no longer accepted by OTP",
    DIST_HEADER: "DIST_HEADER (68) starts a distribution frame, not a term",
    DIST_FRAG_HEADER: "DIST_FRAG_HEADER (69) starts a distribution fragment, not a term",
    COMPRESSED: "COMPRESSED (80) is only allowed right after the version byte",
    VERSION_MAGIC: "a version byte (131) inside a term",
}

# ---------------------------------------------------------------- atoms

_ATOM_CACHE_LIMIT = 4096
_utf8_atoms: dict[bytes, Any] = {}
_latin1_atoms: dict[bytes, Any] = {}
_TRUE_ATOM = Atom("true")
_FALSE_ATOM = Atom("false")


def _atom_value(name: str) -> Any:
    if name == "true":
        return True
    if name == "false":
        return False
    return Atom(name)


def _new_utf8_atom(raw: bytes, pos: int) -> Any:
    """Validate a UTF-8 atom name seen for the first time and cache its value."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("atom name is not valid UTF-8", pos) from None
    if len(name) > MAX_ATOM_CHARS:
        raise DecodeError(f"atom has {len(name)} characters, more than {MAX_ATOM_CHARS}", pos)
    value = _atom_value(name)
    if len(_utf8_atoms) >= _ATOM_CACHE_LIMIT:
        _utf8_atoms.clear()
    _utf8_atoms[raw] = value
    return value


def _new_latin1_atom(raw: bytes, pos: int) -> Any:
    """Validate a latin-1 atom name seen for the first time and cache its value."""
    if len(raw) > MAX_ATOM_CHARS:
        raise DecodeError(f"atom has {len(raw)} characters, more than {MAX_ATOM_CHARS}", pos)
    value = _atom_value(raw.decode("latin-1"))
    if len(_latin1_atoms) >= _ATOM_CACHE_LIMIT:
        _latin1_atoms.clear()
    _latin1_atoms[raw] = value
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


def _read_atom(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Any, int]:
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
        raise _short(data, pos, f"{tag_name(tag)} name", n, p)
    raw = data[p:end]
    if tag in _UTF8_ATOM_TAGS:
        if n > MAX_ATOM_UTF8_BYTES:
            raise DecodeError(f"atom has {n} bytes of UTF-8, more than 255 characters", pos)
        value = _utf8_atoms.get(raw)
        if value is None:
            value = _new_utf8_atom(raw, pos)
    else:
        value = _latin1_atoms.get(raw)
        if value is None:
            value = _new_latin1_atom(raw, pos)
    return value, end


def _read_node(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Atom, int]:
    """An atom in a node/module/function field: always an :class:`Atom`, never a bool."""
    value, pos = _read_atom(data, pos, atom_cache)
    if type(value) is bool:
        value = _TRUE_ATOM if value else _FALSE_ATOM
    return value, pos


# ---------------------------------------------------------------- leaves


def _short(data: bytes, pos: int, what: str, need: int, at: int) -> DecodeError:
    left = max(len(data) - at, 0)
    return DecodeError(f"truncated: need {need} bytes for {what}, {left} left", pos)


def _truncated(data: bytes, pos: int) -> DecodeError:
    """The error for a read past the end of ``data`` while decoding the term at ``pos``."""
    if pos >= len(data):
        return DecodeError("truncated: input ends where a term should start", len(data))
    tag = data[pos]
    need = _HEAD_SIZE.get(tag)
    left = len(data) - pos - 1
    if need is not None and need > left:
        return DecodeError(f"truncated: need {need} bytes for {tag_name(tag)}, {left} left", pos)
    return DecodeError(f"truncated: input ends inside {tag_name(tag)}", pos)


def _read_int(data: bytes, pos: int, max_big: int) -> tuple[int, int]:
    """An integer in any integer encoding (fun and export fields)."""
    tag = data[pos]
    if tag == SMALL_INTEGER_EXT:
        return data[pos + 1], pos + 2
    if tag == INTEGER_EXT:
        return _I32(data, pos + 1)[0], pos + 5
    if tag in _BIG_TAGS:
        return _big(data, pos, max_big)
    raise DecodeError(f"expected an integer, found {tag_name(tag)}", pos)


def _big(data: bytes, pos: int, max_big: int) -> tuple[int, int]:
    """``SMALL_BIG_EXT`` / ``LARGE_BIG_EXT``: any non-zero sign byte means negative."""
    if data[pos] == SMALL_BIG_EXT:
        n, sign = data[pos + 1], data[pos + 2]
        p = pos + 3
    else:
        n, sign = _U32_U8(data, pos + 1)
        p = pos + 6
    end = p + n
    if end > len(data):
        raise _short(data, pos, f"{tag_name(data[pos])} digits", n, p)
    if n > max_big:
        raise DecodeError(f"bignum of {n} bytes is over max_bignum_bytes={max_big}", pos)
    value = int.from_bytes(data[p:end], "little")
    return (-value if sign else value), end


def _old_float(data: bytes, pos: int) -> tuple[float, int]:
    """``FLOAT_EXT``: 31 bytes of ``"%.20e"`` text, checked like OTP checks it."""
    p = pos + 1
    end = p + FLOAT_EXT_SIZE
    if end > len(data):
        raise _short(data, pos, "FLOAT_EXT", FLOAT_EXT_SIZE, p)
    m = _FLOAT_TEXT.match(data, p)
    # OTP reads the text as a C string: it must end at a NUL (even one past the 31 bytes).
    if m is None or m.end() >= len(data) or data[m.end()] != 0:
        text = data[p:end].split(b"\0", 1)[0]
        raise DecodeError(f"FLOAT_EXT text {text!r} is not a float", pos)
    value = float(data[p : m.end()].replace(b",", b"."))
    if value - value != 0.0:
        raise DecodeError("FLOAT_EXT value is out of range", pos)
    return value, end


def _bit_binary(data: bytes, pos: int) -> tuple[Any, int]:
    n, bits = _U32_U8(data, pos + 1)
    if (bits == 0) != (n == 0) or bits > 8:
        raise DecodeError(f"BIT_BINARY_EXT with {n} bytes cannot have {bits} bits in the last", pos)
    p = pos + 6
    end = p + n
    if end > len(data):
        raise _short(data, pos, "BIT_BINARY_EXT data", n, p)
    if bits == 8 or n == 0:
        return data[p:end], end
    return BitString(data[p:end], bits), end


def _pid(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Pid, int]:
    """``NEW_PID_EXT`` or legacy ``PID_EXT`` (8-bit creation, at most 3)."""
    tag = data[pos]
    node, p = _read_node(data, pos + 1, atom_cache)
    if tag == NEW_PID_EXT:
        num, serial, creation = _U32X3(data, p)
        return Pid(node, num, serial, creation), p + 12
    num, serial, creation = _U32X2_U8(data, p)
    if creation > MAX_OLD_CREATION:
        raise DecodeError(f"PID_EXT creation {creation} is over {MAX_OLD_CREATION}", pos)
    return Pid(node, num, serial, creation), p + 9


def _port(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Port, int]:
    """``V4_PORT_EXT``, ``NEW_PORT_EXT`` or legacy ``PORT_EXT``."""
    tag = data[pos]
    node, p = _read_node(data, pos + 1, atom_cache)
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


def _ref(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[Reference, int]:
    """``NEWER_REFERENCE_EXT``, ``NEW_REFERENCE_EXT`` or ``REFERENCE_EXT``."""
    tag = data[pos]
    if tag == REFERENCE_EXT:
        node, p = _read_node(data, pos + 1, atom_cache)
        word, creation = _U32_U8(data, p)
        if word > MAX_OLD_REF_WORD0:
            raise DecodeError(f"REFERENCE_EXT id {word} does not fit 18 bits", pos)
        if creation > MAX_OLD_CREATION:
            raise DecodeError(f"REFERENCE_EXT creation {creation} is over 3", pos)
        return Reference(node, creation, (word,)), p + 5
    count = _U16(data, pos + 1)[0]
    if count > MAX_REF_WORDS:
        raise DecodeError(f"{tag_name(tag)} has {count} id words, more than {MAX_REF_WORDS}", pos)
    node, p = _read_node(data, pos + 3, atom_cache)
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


def _export(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[ExportFun, int]:
    """``EXPORT_EXT``: module and function atoms, then the arity as an integer term."""
    module, p = _read_node(data, pos + 1, atom_cache)
    function, p = _read_node(data, p, atom_cache)
    arity, end = _read_int(data, p, 16)
    if not 0 <= arity <= _MAX_EXPORT_ARITY:
        raise DecodeError(f"EXPORT_EXT arity {arity} is out of range", pos)
    return ExportFun(module, function, arity), end


def _fun_head(data: bytes, pos: int, atom_cache: Sequence[Any] | None) -> tuple[tuple, int, int]:
    """The fixed part of ``NEW_FUN_EXT``: ``(fields, num_free, next_pos)``.

    The Size field is not checked (OTP does not check it either).
    """
    arity, uniq, index, num_free = _FUN_HEAD(data, pos + 5)
    module, p = _read_node(data, pos + 30, atom_cache)
    old_index, p = _read_int(data, p, 16)
    old_uniq, p = _read_int(data, p, 16)
    if not (_SMALL_MIN <= old_index <= _SMALL_MAX and _SMALL_MIN <= old_uniq <= _SMALL_MAX):
        raise DecodeError("NEW_FUN_EXT OldIndex/OldUniq is not a small integer", pos)
    if data[p] != NEW_PID_EXT and data[p] != PID_EXT:
        raise DecodeError(f"NEW_FUN_EXT creator must be a pid, found {tag_name(data[p])}", p)
    pid, p = _pid(data, p, atom_cache)
    return (module, arity, old_index, old_uniq, index, uniq, pid), num_free, p


# ---------------------------------------------------------------- containers


def _finish_list(items: list) -> Any:
    """A ``LIST_EXT`` whose elements and (last) tail are in ``items``."""
    tail = items.pop()
    if type(tail) is list:
        if tail:
            items.extend(tail)
        return items
    if not items:
        return tail  # a zero-length LIST_EXT is its tail
    if type(tail) is ImproperList:
        items.extend(tail.items)
        return ImproperList(items, tail.tail)
    return ImproperList(items, tail)


def _finish_map(items: list, pos: int) -> Any:
    """A ``MAP_EXT`` from its flattened pairs: a dict, or an ErlMap if a dict cannot hold it."""
    it = iter(items)
    try:
        d = dict(zip(it, it, strict=True))
        if 2 * len(d) == len(items):
            return d
    except TypeError:
        pass  # an unhashable key (list, dict, ...)
    except RecursionError:
        raise DecodeError("map keys are nested too deeply to compare", pos) from None
    it = iter(items)
    pairs = list(zip(it, it, strict=True))
    try:
        keys = {map_key(k) for k, _ in pairs}
    except (RecursionError, ValueError):
        raise DecodeError("map keys are nested too deeply to compare", pos) from None
    if len(keys) != len(pairs):
        raise DecodeError("MAP_EXT has duplicate keys", pos)
    return ErlMap(pairs)


def _finish_fun(items: list) -> Fun:
    module, arity, old_index, old_uniq, index, uniq, pid = items[0]
    return Fun(module, arity, old_index, old_uniq, index, uniq, pid, items[1:])


def _too_many(data: bytes, pos: int, what: str, count: int, at: int) -> DecodeError:
    return DecodeError(
        f"{what} declares {count} elements but only {len(data) - at} bytes remain", pos
    )


# ---------------------------------------------------------------- the decoder


def _decode(
    data: bytes,
    pos: int,
    atom_cache: Sequence[Any] | None,
    max_depth: int,
    max_big: int,
) -> tuple[Any, int]:
    """Decode one term at ``pos`` (its tag byte) with an explicit stack."""
    end = len(data)
    stack: list[tuple] = []
    push = stack.append
    pop = stack.pop
    utf8_atoms = _utf8_atoms
    latin1_atoms = _latin1_atoms
    kind = _TOP
    items: list = []
    need = 0
    start = pos
    try:
        while True:
            tag = data[pos]
            if tag == SMALL_INTEGER_EXT:
                value: Any = data[pos + 1]
                pos += 2
            elif tag == SMALL_ATOM_UTF8_EXT:
                p = pos + 2
                q = p + data[pos + 1]
                if q > end:
                    raise _short(data, pos, "SMALL_ATOM_UTF8_EXT name", q - p, p)
                raw = data[p:q]
                value = utf8_atoms.get(raw)
                if value is None:
                    value = _new_utf8_atom(raw, pos)
                pos = q
            elif tag == SMALL_TUPLE_EXT:
                n = data[pos + 1]
                if n == 0:
                    value = ()
                    pos += 2
                else:
                    if n > end - pos - 2:
                        raise _too_many(data, pos, "SMALL_TUPLE_EXT", n, pos + 2)
                    if len(stack) >= max_depth:
                        raise DecodeError(f"terms nest deeper than max_depth={max_depth}", pos)
                    push((kind, items, need, start))
                    kind, items, need, start = _TUPLE, [], n, pos
                    pos += 2
                    continue
            elif tag == BINARY_EXT:
                n = _U32(data, pos + 1)[0]
                p = pos + 5
                q = p + n
                if q > end:
                    raise _short(data, pos, "BINARY_EXT data", n, p)
                value = data[p:q]
                pos = q
            elif tag == INTEGER_EXT:
                value = _I32(data, pos + 1)[0]
                pos += 5
            elif tag == NIL_EXT:
                value = []
                pos += 1
            elif tag == LIST_EXT:
                n = _U32(data, pos + 1)[0]
                if n >= end - pos - 5:
                    raise _too_many(data, pos, "LIST_EXT (elements and tail)", n + 1, pos + 5)
                if len(stack) >= max_depth:
                    raise DecodeError(f"terms nest deeper than max_depth={max_depth}", pos)
                push((kind, items, need, start))
                kind, items, need, start = _LIST, [], n + 1, pos
                pos += 5
                if n >= _BYTE_RUN and data[pos] == SMALL_INTEGER_EXT:
                    # A long list of small integers (too long for STRING_EXT): in one go.
                    q = pos + 2 * n
                    if data[pos:q:2].count(SMALL_INTEGER_EXT) == n:
                        items = list(data[pos + 1 : q : 2])
                        need = 1  # the tail
                        pos = q
                continue
            elif tag == STRING_EXT:
                n = _U16(data, pos + 1)[0]
                p = pos + 3
                q = p + n
                if q > end:
                    raise _short(data, pos, "STRING_EXT characters", n, p)
                value = list(data[p:q])
                pos = q
            elif tag == NEW_FLOAT_EXT:
                value = _F64(data, pos + 1)[0]
                if value - value != 0.0:
                    raise DecodeError("NEW_FLOAT_EXT is NaN or infinite: not an Erlang float", pos)
                pos += 9
            elif tag == MAP_EXT:
                n = _U32(data, pos + 1)[0]
                if n == 0:
                    value = {}
                    pos += 5
                else:
                    if 2 * n > end - pos - 5:
                        raise _too_many(data, pos, "MAP_EXT", 2 * n, pos + 5)
                    if len(stack) >= max_depth:
                        raise DecodeError(f"terms nest deeper than max_depth={max_depth}", pos)
                    push((kind, items, need, start))
                    kind, items, need, start = _MAP, [], 2 * n, pos
                    pos += 5
                    continue
            elif tag == ATOM_EXT:
                n = _U16(data, pos + 1)[0]
                p = pos + 3
                q = p + n
                if q > end:
                    raise _short(data, pos, "ATOM_EXT name", n, p)
                raw = data[p:q]
                value = latin1_atoms.get(raw)
                if value is None:
                    value = _new_latin1_atom(raw, pos)
                pos = q
            elif tag in _BIG_TAGS:
                value, pos = _big(data, pos, max_big)
            elif tag in _PID_TAGS:
                value, pos = _pid(data, pos, atom_cache)
            elif tag in _REF_TAGS:
                value, pos = _ref(data, pos, atom_cache)
            elif tag == LARGE_TUPLE_EXT:
                n = _U32(data, pos + 1)[0]
                if n == 0:
                    value = ()
                    pos += 5
                else:
                    if n > end - pos - 5:
                        raise _too_many(data, pos, "LARGE_TUPLE_EXT", n, pos + 5)
                    if len(stack) >= max_depth:
                        raise DecodeError(f"terms nest deeper than max_depth={max_depth}", pos)
                    push((kind, items, need, start))
                    kind, items, need, start = _TUPLE, [], n, pos
                    pos += 5
                    continue
            elif tag in _OTHER_ATOM_TAGS:
                value, pos = _read_atom(data, pos, atom_cache)
            elif tag == BIT_BINARY_EXT:
                value, pos = _bit_binary(data, pos)
            elif tag in _PORT_TAGS:
                value, pos = _port(data, pos, atom_cache)
            elif tag == EXPORT_EXT:
                value, pos = _export(data, pos, atom_cache)
            elif tag == FLOAT_EXT:
                value, pos = _old_float(data, pos)
            elif tag == NEW_FUN_EXT:
                head, n, p = _fun_head(data, pos, atom_cache)
                if n == 0:
                    value = _finish_fun([head])
                    pos = p
                else:
                    if n > end - p:
                        raise _too_many(data, pos, "NEW_FUN_EXT environment", n, p)
                    if len(stack) >= max_depth:
                        raise DecodeError(f"terms nest deeper than max_depth={max_depth}", pos)
                    push((kind, items, need, start))
                    kind, items, need, start = _FUN, [head], n, pos
                    pos = p
                    continue
            else:
                reason = _NOT_A_TERM.get(tag)
                raise DecodeError(reason or f"unknown tag {tag}", pos)

            # Deliver ``value`` to the open container; close every container it completes.
            while True:
                if kind == _TOP:
                    return value, pos
                items.append(value)
                need -= 1
                if need:
                    break
                if kind == _TUPLE:
                    value = tuple(items)
                elif kind == _LIST:
                    value = _finish_list(items)
                elif kind == _MAP:
                    value = _finish_map(items, start)
                else:
                    value = _finish_fun(items)
                kind, items, need, start = pop()
    except (IndexError, StructError):
        raise _truncated(data, pos) from None


# ---------------------------------------------------------------- public API


def _as_bytes(data: Any) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"expected bytes, got {type(data).__name__}")


def _inflate(data: bytes, max_inflated: int) -> bytes:
    """The inflated payload of ``131, 80, Size:32, zlib stream`` (exactly Size bytes)."""
    if len(data) < 6:
        raise DecodeError(f"truncated: need 4 bytes for COMPRESSED size, {len(data) - 2} left", 1)
    size = _U32(data, 2)[0]
    if size == 0:
        raise DecodeError("COMPRESSED term declares 0 bytes", 1)
    if size > max_inflated:
        raise DecodeError(
            f"COMPRESSED term declares {size} bytes, over max_inflated={max_inflated}", 1
        )
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(memoryview(data)[6:], size)  # never more than size bytes
        extra = b""
        if not inflater.eof and len(out) == size:
            # One more byte would mean the declared size is too small.
            extra = inflater.decompress(inflater.unconsumed_tail, 1)
    except zlib.error as exc:
        raise DecodeError(f"COMPRESSED data is not a valid zlib stream: {exc}", 6) from None
    if extra or len(out) != size:
        raise DecodeError(
            f"COMPRESSED term declares {size} bytes but inflates to "
            f"{'more' if extra else len(out)}",
            1,
        )
    if not inflater.eof:
        raise DecodeError("COMPRESSED zlib stream is truncated", 6)
    return out


def decode_term(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    atom_cache: Sequence[Any] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_bignum_bytes: int = DEFAULT_MAX_BIGNUM_BYTES,
) -> tuple[Any, int]:
    """Decode one term starting at its tag byte (no version byte); return ``(term, end)``.

    ``atom_cache`` maps ``ATOM_CACHE_REF`` indexes to :class:`Atom` values (the
    references of a distribution header); without it such references are an error.
    Raises :class:`DecodeError` for anything OTP would not decode.
    """
    data = _as_bytes(data)
    if not 0 <= offset <= len(data):
        raise ValueError(f"offset {offset} is outside the data")
    return _decode(data, offset, atom_cache, max_depth, max_bignum_bytes)


def binary_to_term(
    data: bytes | bytearray | memoryview,
    *,
    max_inflated: int = DEFAULT_MAX_INFLATED,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_bignum_bytes: int = DEFAULT_MAX_BIGNUM_BYTES,
) -> Any:
    """Erlang's ``binary_to_term/1``: the term in ``data`` (version byte 131 first).

    ``COMPRESSED`` terms are inflated (at most ``max_inflated`` bytes, and exactly
    the declared size). Bytes after the term are ignored, as the VM ignores them.
    Raises :class:`DecodeError` (with ``.offset``) on any invalid input.
    """
    data = _as_bytes(data)
    if not data:
        raise DecodeError("empty input", 0)
    if data[0] != VERSION_MAGIC:
        raise DecodeError(f"missing version byte 131 (found {data[0]})", 0)
    if len(data) > 1 and data[1] == COMPRESSED:
        inflated = _inflate(data, max_inflated)
        try:
            return _decode(inflated, 0, None, max_depth, max_bignum_bytes)[0]
        except DecodeError as exc:
            raise DecodeError(
                f"in COMPRESSED data at inflated byte {exc.offset}: {exc.reason}", 6
            ) from None
    return _decode(data, 1, None, max_depth, max_bignum_bytes)[0]
