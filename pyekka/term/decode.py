"""Decoding the external term format: :func:`binary_to_term` and :func:`decode_term`.

The decoder accepts what OTP 25's ``binary_to_term/1`` accepts and rejects what it
rejects (legacy tags included), and is safe on hostile input: one explicit stack
instead of recursion, every declared length checked against the bytes that are
really there before anything is allocated, and limits on nesting depth, bignum
size and inflated size. Every failure raises :class:`DecodeError` with the offset
of the offending term.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from struct import Struct
from struct import error as StructError
from typing import Any

from pyekka.term.decode_leaves import (
    BIG_TAGS,
    latin1_atoms,
    new_latin1_atom,
    new_utf8_atom,
    read_atom,
    read_big,
    read_bit_binary,
    read_export,
    read_fun_head,
    read_old_float,
    read_pid,
    read_port,
    read_ref,
    short_error,
    truncated_error,
    utf8_atoms,
)
from pyekka.term.errors import DecodeError
from pyekka.term.order import map_key_sort_key
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
    FUN_EXT,
    INTEGER_EXT,
    LARGE_TUPLE_EXT,
    LIST_EXT,
    LOCAL_EXT,
    MAP_EXT,
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
    SMALL_INTEGER_EXT,
    SMALL_TUPLE_EXT,
    STRING_EXT,
    V4_PORT_EXT,
    VERSION_MAGIC,
)
from pyekka.term.types import ErlMap, Fun, ImproperList

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

_OTHER_ATOM_TAGS = frozenset((SMALL_ATOM_EXT, ATOM_UTF8_EXT, ATOM_CACHE_REF))  # the rarer ones
_PID_TAGS = frozenset((NEW_PID_EXT, PID_EXT))
_PORT_TAGS = frozenset((V4_PORT_EXT, NEW_PORT_EXT, PORT_EXT))
_REF_TAGS = frozenset((NEWER_REFERENCE_EXT, NEW_REFERENCE_EXT, REFERENCE_EXT))

_BYTE_RUN = 16  # LIST_EXTs of at least this many elements are checked for all small ints

# Container kinds on the decode stack.
_TOP, _TUPLE, _LIST, _MAP, _FUN = 0, 1, 2, 3, 4

_NOT_A_TERM = {
    LOCAL_EXT: "LOCAL_EXT (121) is a node-local encoding (OTP 26+) that cannot be decoded here",
    FUN_EXT: "FUN_EXT (117) is the pre-R8 fun encoding, no longer accepted by OTP",
    DIST_HEADER: "DIST_HEADER (68) starts a distribution frame, not a term",
    DIST_FRAG_HEADER: "DIST_FRAG_HEADER (69) starts a distribution fragment, not a term",
    COMPRESSED: "COMPRESSED (80) is only allowed right after the version byte",
    VERSION_MAGIC: "a version byte (131) inside a term",
}

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
    keys = {map_key_sort_key(k) for k, _ in pairs}
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
    utf8_cache = utf8_atoms
    latin1_cache = latin1_atoms
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
                    raise short_error(data, pos, "SMALL_ATOM_UTF8_EXT name", q - p, p)
                raw = data[p:q]
                value = utf8_cache.get(raw)
                if value is None:
                    value = new_utf8_atom(raw, pos)
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
                    raise short_error(data, pos, "BINARY_EXT data", n, p)
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
                    raise short_error(data, pos, "STRING_EXT characters", n, p)
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
                    raise short_error(data, pos, "ATOM_EXT name", n, p)
                raw = data[p:q]
                value = latin1_cache.get(raw)
                if value is None:
                    value = new_latin1_atom(raw, pos)
                pos = q
            elif tag in BIG_TAGS:
                value, pos = read_big(data, pos, max_big)
            elif tag in _PID_TAGS:
                value, pos = read_pid(data, pos, atom_cache)
            elif tag in _REF_TAGS:
                value, pos = read_ref(data, pos, atom_cache)
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
                value, pos = read_atom(data, pos, atom_cache)
            elif tag == BIT_BINARY_EXT:
                value, pos = read_bit_binary(data, pos)
            elif tag in _PORT_TAGS:
                value, pos = read_port(data, pos, atom_cache)
            elif tag == EXPORT_EXT:
                value, pos = read_export(data, pos, atom_cache)
            elif tag == FLOAT_EXT:
                value, pos = read_old_float(data, pos)
            elif tag == NEW_FUN_EXT:
                head, n, p = read_fun_head(data, pos, atom_cache)
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
        raise truncated_error(data, pos) from None


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
