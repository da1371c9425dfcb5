"""Encoding the external term format: :func:`term_to_binary` and :func:`encode_term`.

The output is byte for byte what OTP 25's ``term_to_binary`` writes: with
``minor_version=2`` (the default here) the canonical form, with ``1`` the OTP 25
default (latin-1 ``ATOM_EXT``), with ``0`` also text floats. The encoder uses an
explicit stack, so deep terms cannot overflow the Python stack; values with no
Erlang form or out of range raise :class:`EncodeError`, and so does a map holding
one Erlang key twice (``"a"`` and ``b"a"``, say).

The order of a map's pairs:

* **At most 32 keys**: map-key order (:func:`pyekka.term.order.map_key_sort_key`),
  as OTP writes these "flatmaps".
* **More than 32 keys**, when every key is built only from numbers, binaries,
  bitstrings, tuples, lists, maps and ``true``/``false``: OTP 25's hash-trie order
  (:func:`pyekka.term.maphash.reproducible_hashmap_sort`), which follows from the
  keys alone, so any Python ``dict`` of such keys gives the VM's bytes.
* **More than 32 keys**, when some key holds (at any depth) another atom (``None``
  included), a pid, port, reference or fun: the VM's order there depends on its
  atom table and memory addresses, not on the keys, so no encoder can reproduce
  it. Such a map is written in the ``dict``'s (or ``ErlMap``'s) own order; for a
  decoded map that is the order of the bytes it came from, so decoding and
  re-encoding gives back the VM's bytes exactly.
"""

from __future__ import annotations

import zlib
from itertools import chain, pairwise
from operator import itemgetter
from struct import Struct
from struct import error as StructError
from typing import Any

from pyekka.term.encode_leaves import (
    SMALL_INTS,
    atom_bytes,
    atom_caches,
    bitstring_bytes,
    export_bytes,
    float_bytes,
    fun_head_bytes,
    int_bytes,
    pid_bytes,
    port_bytes,
    ref_bytes,
)
from pyekka.term.errors import EncodeError
from pyekka.term.maphash import reproducible_hashmap_sort
from pyekka.term.order import map_key_sort_key
from pyekka.term.tags import (
    BINARY_EXT,
    COMPRESSED,
    INTEGER_EXT,
    LARGE_TUPLE_EXT,
    LIST_EXT,
    MAP_EXT,
    MAX_STRING_EXT_LEN,
    NEW_FLOAT_EXT,
    NIL_EXT,
    SMALL_INTEGER_EXT,
    SMALL_MAP_LIMIT,
    SMALL_TUPLE_EXT,
    STRING_EXT,
    VERSION_MAGIC,
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

__all__ = ["DEFAULT_MAX_DEPTH", "encode_term", "term_to_binary"]

DEFAULT_MAX_DEPTH = 10_000
"""Default limit on nested containers; also what stops a self-containing list."""

_HEAD16 = Struct(">BH").pack
_HEAD32 = Struct(">BI").pack
_INT = Struct(">Bi").pack
_NEW_FLOAT = Struct(">Bd").pack
_U32 = Struct(">I").pack

_TUPLE_HEADS = [bytes((SMALL_TUPLE_EXT, i)) for i in range(256)]
_VERSION = bytes((VERSION_MAGIC,))
_INT_ONLY = frozenset((int,))
# Key types of which distinct dict keys are always distinct Erlang terms.
_DISTINCT_KEYS_BYTES = frozenset((int, float, Atom, bytes))
_DISTINCT_KEYS_STR = frozenset((int, float, Atom, str))


class _Close:
    """Stack marker: the container opened before it is finished."""

    __slots__ = ()


class _PatchSize:
    """Stack marker: a NEW_FUN_EXT is finished; write its Size field.

    The field is at ``buf[at:at + 4]``; ``start`` is its offset in the whole output.
    """

    __slots__ = ("at", "buf", "start")

    def __init__(self, buf: bytearray, at: int, start: int) -> None:
        self.buf = buf
        self.at = at
        self.start = start


_CLOSE = _Close()

# ---------------------------------------------------------------- map order


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError("str with lone surrogates has no UTF-8 form") from None


def _flatten_improper(term: ImproperList) -> tuple[list, Any]:
    items = list(term.items)
    tail = term.tail
    while type(tail) is ImproperList:
        items.extend(tail.items)
        tail = tail.tail
    return items, tail


_first = itemgetter(0)


def _atom_pair_key(pair: tuple) -> str:
    return pair[0].name


def _map_keys(pairs: list) -> list[tuple]:
    """The map-key order keys of the pairs' keys; EncodeError for a key with no Erlang form."""
    try:
        return [map_key_sort_key(k) for k, _ in pairs]
    except (TypeError, ValueError) as exc:
        raise EncodeError(f"map key with no Erlang form: {exc}") from None


def _ordered_pairs(term: dict | ErlMap, is_erlmap: bool) -> list:
    """The pairs of a map in the order written (see the module doc); EncodeError on
    duplicate keys."""
    if is_erlmap:
        pairs = list(term.pairs)
        kinds = set(map(type, map(_first, pairs)))
    else:
        pairs = list(term.items())
        kinds = set(map(type, term))
    # distinct dict keys of these types are distinct Erlang terms
    unique = not is_erlmap and (kinds <= _DISTINCT_KEYS_BYTES or kinds <= _DISTINCT_KEYS_STR)
    if len(pairs) <= SMALL_MAP_LIMIT:
        if unique and len(kinds) == 1:
            return sorted(pairs, key=_atom_pair_key if Atom in kinds else _first)
        keys = _map_keys(pairs)
        order = sorted(range(len(pairs)), key=keys.__getitem__)
        for i, j in pairwise(order):
            if keys[i] == keys[j]:
                raise EncodeError(f"map has duplicate key {pairs[j][0]!r}")
        return [pairs[i] for i in order]
    if not unique and len(set(_map_keys(pairs))) != len(pairs):
        raise EncodeError("map has duplicate keys")
    try:
        ordered = reproducible_hashmap_sort(pairs)
    except UnicodeEncodeError:
        raise EncodeError("str with lone surrogates has no UTF-8 form") from None
    return pairs if ordered is None else ordered


def _coerce(term: Any) -> Any:
    """A subclass instance as its base type (IntEnum -> int, namedtuple -> tuple, ...)."""
    for base in (int, float, str, bytes, tuple, list, dict):
        if isinstance(term, base):
            return base(term)
    if isinstance(term, bytearray | memoryview):
        return bytes(term)
    raise EncodeError(f"cannot encode {type(term).__name__} as an Erlang term")


# ---------------------------------------------------------------- the encoder

_BIG_BINARY = 1 << 16  # binaries at least this long are joined in, not copied twice


def _encode(term: Any, prefix: bytes, minor: int, max_depth: int) -> bytes:
    """``prefix`` followed by the encoding of ``term``."""
    try:
        return _encode_loop(term, prefix, minor, max_depth)
    except StructError as exc:  # a length or value past what a wire field holds
        raise EncodeError(f"value out of range for the external format: {exc}") from None


def _encode_loop(term: Any, prefix: bytes, minor: int, max_depth: int) -> bytes:
    atoms = atom_caches[minor]
    small_ints = SMALL_INTS
    tuple_heads = _TUPLE_HEADS
    out = bytearray(prefix)
    chunks: list = []  # finished parts, when big binaries were joined in
    done = 0  # bytes in ``chunks``
    stack = [term]
    pop = stack.pop
    push = stack.append
    extend = stack.extend
    depth = 0
    while stack:
        t = pop()
        tp = type(t)
        if tp is int:
            if 0 <= t <= 255:
                out += small_ints[t]
            elif -0x80000000 <= t <= 0x7FFFFFFF:
                out += _INT(INTEGER_EXT, t)
            else:
                out += int_bytes(t)
        elif tp is Atom:
            b = atoms.get(t.name)
            out += b if b is not None else atom_bytes(t.name, minor)
        elif tp is tuple:
            n = len(t)
            if n <= 255:
                out += tuple_heads[n]
            else:
                out += _HEAD32(LARGE_TUPLE_EXT, n)
            if n:
                depth += 1
                if depth > max_depth:
                    raise EncodeError(f"term nests deeper than max_depth={max_depth}")
                push(_CLOSE)
                extend(reversed(t))
        elif tp is bytes:
            n = len(t)
            out += _HEAD32(BINARY_EXT, n)
            if n < _BIG_BINARY:
                out += t
            else:
                chunks.append(out)
                chunks.append(t)
                done += len(out) + n
                out = bytearray()
        elif tp is _Close:
            depth -= 1
        elif tp is list:
            n = len(t)
            if n == 0:
                out.append(NIL_EXT)
                continue
            if set(map(type, t)) == _INT_ONLY:
                _int_list(t, out)
                continue
            out += _HEAD32(LIST_EXT, n)
            depth += 1
            if depth > max_depth:
                raise EncodeError(f"term nests deeper than max_depth={max_depth}")
            push(_CLOSE)
            push([])
            extend(reversed(t))
        elif tp is float:
            if minor and t - t == 0.0:
                out += _NEW_FLOAT(NEW_FLOAT_EXT, t)
            else:
                out += float_bytes(t, minor)
        elif tp is str:
            b = _utf8(t)
            out += _HEAD32(BINARY_EXT, len(b))
            out += b
        elif tp is bool:
            out += atom_bytes("true" if t else "false", minor)
        elif tp is dict or tp is ErlMap:
            n = len(t)
            out += _HEAD32(MAP_EXT, n)
            if n:
                flat = list(chain.from_iterable(_ordered_pairs(t, tp is ErlMap)))
                flat.reverse()
                depth += 1
                if depth > max_depth:
                    raise EncodeError(f"term nests deeper than max_depth={max_depth}")
                push(_CLOSE)
                extend(flat)
        elif t is None:
            out += atom_bytes("undefined", minor)
        elif tp is Pid:
            out += pid_bytes(t, minor)
        elif tp is Reference:
            out += ref_bytes(t, minor)
        elif tp is ImproperList:
            items, tail = _flatten_improper(t)
            out += _HEAD32(LIST_EXT, len(items))
            depth += 1
            if depth > max_depth:
                raise EncodeError(f"term nests deeper than max_depth={max_depth}")
            push(_CLOSE)
            push(tail)
            extend(reversed(items))
        elif tp is Port:
            out += port_bytes(t, minor)
        elif tp is ExportFun:
            out += export_bytes(t, minor)
        elif tp is BitString:
            out += bitstring_bytes(t)
        elif tp is Fun:
            size_at = len(out) + 1
            out += fun_head_bytes(t, minor)
            depth += 1
            if depth > max_depth:
                raise EncodeError(f"term nests deeper than max_depth={max_depth}")
            push(_PatchSize(out, size_at, done + size_at))
            extend(reversed(t.free_vars))
        elif tp is _PatchSize:
            depth -= 1
            t.buf[t.at : t.at + 4] = _U32(done + len(out) - t.start)
        else:
            push(_coerce(t))
    if chunks:
        chunks.append(out)
        return b"".join(chunks)
    return bytes(out)


def _int_list(items: list, out: bytearray) -> None:
    """A proper list of plain ints: STRING_EXT when it can be, else LIST_EXT."""
    n = len(items)
    try:
        chars = bytes(items)
    except ValueError:
        chars = None
    if chars is not None and n <= MAX_STRING_EXT_LEN:
        out += _HEAD16(STRING_EXT, n)
        out += chars
        return
    out += _HEAD32(LIST_EXT, n)
    if chars is not None:
        body = bytearray(2 * n)
        body[0::2] = bytes((SMALL_INTEGER_EXT,)) * n
        body[1::2] = chars
        out += body
    else:
        small = SMALL_INTS
        for x in items:
            out += small[x] if 0 <= x <= 255 else int_bytes(x)
    out.append(NIL_EXT)


# ---------------------------------------------------------------- public API


def _check_minor(minor_version: int) -> int:
    if minor_version not in (0, 1, 2) or type(minor_version) is not int:
        raise EncodeError(f"minor_version must be 0, 1 or 2, not {minor_version!r}")
    return minor_version


def encode_term(term: Any, *, minor_version: int = 2, max_depth: int = DEFAULT_MAX_DEPTH) -> bytes:
    """The external format of ``term`` without the version byte (as inside a dist frame)."""
    return _encode(term, b"", _check_minor(minor_version), max_depth)


def term_to_binary(
    term: Any,
    *,
    compressed: bool | int = False,
    minor_version: int = 2,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """Erlang's ``term_to_binary/2``: version byte 131 then the term.

    ``minor_version`` 2 (default) is the canonical encoding OTP 26+ uses by default;
    1 is the OTP 25 default (latin-1 ``ATOM_EXT``); 0 also writes floats as text.
    ``compressed`` is ``True`` (zlib level 6) or a level 0..9; like OTP, the plain
    form is returned when compression would not make the result smaller.
    Raises :class:`EncodeError` for values with no Erlang form or out of range.
    """
    minor = _check_minor(minor_version)
    out = _encode(term, _VERSION, minor, max_depth)
    if compressed is False:
        return out
    level = 6 if compressed is True else compressed
    if type(level) is not int or not 0 <= level <= 9:
        raise EncodeError(f"compressed must be a bool or a level 0..9, not {compressed!r}")
    size = len(out) - 1
    if level and size > 5:
        packed = zlib.compress(memoryview(out)[1:], level)
        if len(packed) <= size - 5:
            return b"".join((bytes((VERSION_MAGIC, COMPRESSED)), _U32(size), packed))
    return out
