"""Encoding the external term format: :func:`term_to_binary` and :func:`encode_term`.

The output is byte for byte what OTP 25's ``term_to_binary`` writes: with
``minor_version=2`` (the default here) the canonical form, with ``1`` the OTP 25
default (latin-1 ``ATOM_EXT``), with ``0`` also text floats. Maps with at most 32
keys are written in map-key order; larger maps in OTP's hash-trie order when
:mod:`pyekka.term.maphash` is available (else in insertion order). The encoder
uses an explicit stack, so deep terms cannot overflow the Python stack; values
with no Erlang form or out of range raise :class:`EncodeError`.
"""

from __future__ import annotations

import zlib
from itertools import chain, pairwise
from operator import itemgetter
from struct import Struct
from struct import error as StructError
from typing import Any

from pyekka.term.errors import EncodeError
from pyekka.term.tags import (
    ATOM_EXT,
    ATOM_UTF8_EXT,
    BINARY_EXT,
    BIT_BINARY_EXT,
    COMPRESSED,
    EXPORT_EXT,
    FLOAT_EXT,
    FLOAT_EXT_SIZE,
    INTEGER_EXT,
    LARGE_BIG_EXT,
    LARGE_TUPLE_EXT,
    LIST_EXT,
    MAP_EXT,
    MAX_ATOM_CHARS,
    MAX_REF_WORDS,
    MAX_STRING_EXT_LEN,
    NEW_FLOAT_EXT,
    NEW_FUN_EXT,
    NEW_PID_EXT,
    NEW_PORT_EXT,
    NEW_PORT_EXT_LIMIT,
    NEWER_REFERENCE_EXT,
    NIL_EXT,
    SMALL_ATOM_UTF8_EXT,
    SMALL_BIG_EXT,
    SMALL_INTEGER_EXT,
    SMALL_MAP_LIMIT,
    SMALL_TUPLE_EXT,
    STRING_EXT,
    V4_PORT_EXT,
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

__all__ = ["DEFAULT_MAX_DEPTH", "encode_term", "map_key", "term_to_binary"]

DEFAULT_MAX_DEPTH = 10_000
"""Default limit on nested containers; also what stops a self-containing list."""

_HEAD8 = Struct(">BB").pack
_HEAD16 = Struct(">BH").pack
_HEAD32 = Struct(">BI").pack
_INT = Struct(">Bi").pack
_NEW_FLOAT = Struct(">Bd").pack
_U32 = Struct(">I").pack
_U32X2 = Struct(">II").pack
_U32X3 = Struct(">III").pack
_U64_U32 = Struct(">QI").pack
_FUN_HEAD = Struct(">B16sII").pack
_BIT_HEAD = Struct(">BIB").pack

_SMALL_INTS = [bytes((SMALL_INTEGER_EXT, i)) for i in range(256)]
_TUPLE_HEADS = [bytes((SMALL_TUPLE_EXT, i)) for i in range(256)]
_U32_MAX = 0xFFFFFFFF
_VERSION = bytes((VERSION_MAGIC,))
_INT_ONLY = frozenset((int,))
_SAFE_KEY_TYPES = frozenset((int, float, bytes, str, Atom))  # distinct in Python => in Erlang


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

# ---------------------------------------------------------------- atoms

_ATOM_CACHE_LIMIT = 4096
_atom_caches: tuple[dict[str, bytes], ...] = ({}, {}, {})


def _atom_bytes(name: str, minor: int) -> bytes:
    """The encoding of atom ``name`` (validated, cached per minor version)."""
    cache = _atom_caches[minor]
    b = cache.get(name)
    if b is not None:
        return b
    if type(name) is not str:
        raise EncodeError(f"atom name must be str, not {type(name).__name__}")
    if len(name) > MAX_ATOM_CHARS:
        raise EncodeError(f"atom has {len(name)} characters, more than {MAX_ATOM_CHARS}")
    try:
        utf8 = name.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"atom {name!r} is not valid Unicode text") from None
    if minor < 2 and (not name or max(name) < "\u0100"):
        latin1 = name.encode("latin-1")
        b = _HEAD16(ATOM_EXT, len(latin1)) + latin1
    elif len(utf8) <= 255:
        b = _HEAD8(SMALL_ATOM_UTF8_EXT, len(utf8)) + utf8
    else:
        b = _HEAD16(ATOM_UTF8_EXT, len(utf8)) + utf8
    if len(cache) >= _ATOM_CACHE_LIMIT:
        cache.clear()
    cache[name] = b
    return b


def _node(atom: Any, minor: int, what: str) -> bytes:
    if type(atom) is Atom:
        return _atom_bytes(atom.name, minor)
    if type(atom) is bool:
        return _atom_bytes("true" if atom else "false", minor)
    raise EncodeError(f"{what} must be an Atom, not {type(atom).__name__}")


# ---------------------------------------------------------------- leaves


def _u32(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _U32_MAX:
        raise EncodeError(f"{what} {value!r} is not an integer in 0..2**32-1")
    return value


def _int_bytes(value: int) -> bytes:
    if 0 <= value <= 255:
        return _SMALL_INTS[value]
    if -0x80000000 <= value <= 0x7FFFFFFF:
        return _INT(INTEGER_EXT, value)
    sign = 0
    if value < 0:
        sign, value = 1, -value
    n = (value.bit_length() + 7) >> 3
    digits = value.to_bytes(n, "little")
    if n <= 255:
        return bytes((SMALL_BIG_EXT, n, sign)) + digits
    if n > _U32_MAX:
        raise EncodeError("integer too large for LARGE_BIG_EXT")
    return _HEAD32(LARGE_BIG_EXT, n) + bytes((sign,)) + digits


def _float_bytes(value: float, minor: int) -> bytes:
    if value - value != 0.0:
        raise EncodeError(f"{value!r} has no Erlang float form (no NaN or infinity)")
    if minor:
        return _NEW_FLOAT(NEW_FLOAT_EXT, value)
    text = b"%.20e" % value
    return bytes((FLOAT_EXT,)) + text + bytes(FLOAT_EXT_SIZE - len(text))


def _binary_bytes(data: bytes) -> bytes:
    if len(data) > _U32_MAX:
        raise EncodeError("binary longer than 2**32-1 bytes")
    return _HEAD32(BINARY_EXT, len(data))


def _pid_bytes(pid: Pid, minor: int) -> bytes:
    return (
        bytes((NEW_PID_EXT,))
        + _node(pid.node, minor, "pid node")
        + _U32X3(
            _u32(pid.id, "pid id"),
            _u32(pid.serial, "pid serial"),
            _u32(pid.creation, "pid creation"),
        )
    )


def _port_bytes(port: Port, minor: int) -> bytes:
    num = port.id
    creation = _u32(port.creation, "port creation")
    node = _node(port.node, minor, "port node")
    if type(num) is int and 0 <= num < NEW_PORT_EXT_LIMIT:
        return bytes((NEW_PORT_EXT,)) + node + _U32X2(num, creation)
    if type(num) is not int or not 0 <= num < 1 << 64:
        raise EncodeError(f"port id {num!r} is not an integer in 0..2**64-1")
    return bytes((V4_PORT_EXT,)) + node + _U64_U32(num, creation)


def _ref_bytes(ref: Reference, minor: int) -> bytes:
    ids = ref.ids
    if len(ids) > MAX_REF_WORDS:
        raise EncodeError(f"reference has {len(ids)} id words, more than {MAX_REF_WORDS}")
    words = b"".join(_U32(_u32(w, "reference id word")) for w in ids)
    return (
        _HEAD16(NEWER_REFERENCE_EXT, len(ids))
        + _node(ref.node, minor, "reference node")
        + _U32(_u32(ref.creation, "reference creation"))
        + words
    )


def _export_bytes(fun: ExportFun, minor: int) -> bytes:
    arity = fun.arity
    if type(arity) is not int or not 0 <= arity <= 0x7FFFFFFF:
        raise EncodeError(f"export fun arity {arity!r} is out of range")
    return (
        bytes((EXPORT_EXT,))
        + _node(fun.module, minor, "fun module")
        + _node(fun.function, minor, "fun function")
        + _int_bytes(arity)
    )


def _fun_head(fun: Fun, minor: int) -> bytes:
    """NEW_FUN_EXT up to its free variables, with a zero Size to patch later."""
    arity = fun.arity
    if type(arity) is not int or not 0 <= arity <= 255:
        raise EncodeError(f"fun arity {arity!r} is not in 0..255")
    for field in (fun.old_index, fun.old_uniq):
        if type(field) is not int or not -(1 << 59) <= field < 1 << 59:
            raise EncodeError(f"fun old_index/old_uniq {field!r} is not a small integer")
    if type(fun.pid) is not Pid:
        raise EncodeError("fun pid must be a Pid")
    return (
        bytes((NEW_FUN_EXT, 0, 0, 0, 0))
        + _FUN_HEAD(
            arity,
            fun.uniq,
            _u32(fun.index, "fun index"),
            _u32(len(fun.free_vars), "fun free variable count"),
        )
        + _node(fun.module, minor, "fun module")
        + _int_bytes(fun.old_index)
        + _int_bytes(fun.old_uniq)
        + _pid_bytes(fun.pid, minor)
    )


def _bitstring_bytes(bits: BitString) -> bytes:
    if bits.bits == 8:
        return _binary_bytes(bits.data) + bits.data
    return _BIT_HEAD(BIT_BINARY_EXT, len(bits.data), bits.bits) + bits.data


# ---------------------------------------------------------------- map order


def map_key(term: Any, _depth: int = 0) -> tuple:
    """Sort key for OTP's map-key order (term order, but integers before floats).

    Two Python values get equal keys exactly when they are the same Erlang map key
    (so ``1`` and ``1.0`` differ, ``b"a"`` and ``"a"`` do not, ``0.0`` and ``-0.0``
    do not, as in OTP 25). Raises :class:`EncodeError` for values with no Erlang form.
    """
    tp = type(term)
    if tp is int:
        return (0, 0, term)
    if tp is Atom:
        return (1, term.name)
    if tp is bytes:
        return (10, term, len(term) << 3)
    if tp is str:
        return _bits_key(_utf8(term))
    if tp is float:
        if term - term != 0.0:
            raise EncodeError(f"{term!r} has no Erlang float form")
        return (0, 1, term)
    if tp is bool:
        return (1, "true" if term else "false")
    if term is None:
        return (1, "undefined")
    if _depth > 200:
        raise EncodeError("map key nests too deeply to sort")
    depth = _depth + 1
    if tp is tuple:
        return (6, len(term), tuple([map_key(x, depth) for x in term]))
    if tp is list:
        if not term:
            return (8,)
        return (9, (*[(9, map_key(x, depth)) for x in term], (8,)))
    if tp is ImproperList:
        items, tail = _flatten_improper(term)
        if type(tail) is list:
            return map_key(items + tail, _depth)
        return (9, (*[(9, map_key(x, depth)) for x in items], map_key(tail, depth)))
    if tp is dict or tp is ErlMap:
        pairs = sorted((map_key(k, depth), map_key(v, depth)) for k, v in term.items())
        return (7, len(pairs), tuple(k for k, _ in pairs), tuple(v for _, v in pairs))
    if tp is Pid:
        return (5, term.serial, term.id, _node_name(term.node), term.creation)
    if tp is Port:
        return (4, _node_name(term.node), term.creation, term.id)
    if tp is Reference:
        return (2, _node_name(term.node), term.creation, len(term.ids), term.ids[::-1])
    if tp is ExportFun:
        return (3, 1, _node_name(term.module), _node_name(term.function), term.arity)
    if tp is Fun:
        # OTP 25 tells local funs apart by module, index, old uniq and environment only.
        free = tuple([map_key(x, depth) for x in term.free_vars])
        return (3, 0, _node_name(term.module), term.index, term.old_uniq, len(free), free)
    if tp is BitString:
        if term.bits == 8:
            return _bits_key(term.data)
        return (10, term.data, term.bit_size)
    coerced = _coerce(term)
    return map_key(coerced, _depth)


def _bits_key(data: bytes) -> tuple:
    return (10, data, len(data) << 3)


def _node_name(atom: Any) -> str:
    if type(atom) is bool:
        return "true" if atom else "false"
    if type(atom) is not Atom:
        raise EncodeError(f"expected an Atom, not {type(atom).__name__}")
    return atom.name


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


def _ordered_pairs(term: dict | ErlMap, maybe_dups: bool) -> list:
    """The pairs of a map in the order OTP writes them; EncodeError on duplicate keys."""
    if maybe_dups:
        pairs = list(term.pairs)
        kinds = set(map(type, map(_first, pairs)))
    else:
        pairs = list(term.items())
        kinds = set(map(type, term))
    simple = len(kinds) == 1 and kinds <= _SAFE_KEY_TYPES
    if len(pairs) <= SMALL_MAP_LIMIT:
        if simple and not maybe_dups:
            return sorted(pairs, key=_atom_pair_key if Atom in kinds else _first)
        keyed = sorted([(map_key(k), i) for i, (k, _) in enumerate(pairs)], key=_first)
        for a, b in pairwise(keyed):
            if a[0] == b[0]:
                raise EncodeError(f"map has duplicate key {pairs[b[1]][0]!r}")
        return [pairs[i] for _, i in keyed]
    if (maybe_dups or not simple) and len({map_key(k) for k, _ in pairs}) != len(pairs):
        raise EncodeError("map has duplicate keys")
    hashmap_sort = _hashmap_sort()
    return pairs if hashmap_sort is None else hashmap_sort(pairs)


_hashmap_sort_fn: list = []


def _hashmap_sort() -> Any:
    """``pyekka.term.maphash.hashmap_sort`` if that module exists (looked up once)."""
    if not _hashmap_sort_fn:
        try:
            from pyekka.term.maphash import hashmap_sort
        except ImportError:
            hashmap_sort = None
        _hashmap_sort_fn.append(hashmap_sort)
    return _hashmap_sort_fn[0]


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
    atoms = _atom_caches[minor]
    small_ints = _SMALL_INTS
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
                out += _int_bytes(t)
        elif tp is Atom:
            b = atoms.get(t.name)
            out += b if b is not None else _atom_bytes(t.name, minor)
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
                out += _float_bytes(t, minor)
        elif tp is str:
            b = _utf8(t)
            out += _HEAD32(BINARY_EXT, len(b))
            out += b
        elif tp is bool:
            out += _atom_bytes("true" if t else "false", minor)
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
            out += _atom_bytes("undefined", minor)
        elif tp is Pid:
            out += _pid_bytes(t, minor)
        elif tp is Reference:
            out += _ref_bytes(t, minor)
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
            out += _port_bytes(t, minor)
        elif tp is ExportFun:
            out += _export_bytes(t, minor)
        elif tp is BitString:
            out += _bitstring_bytes(t)
        elif tp is Fun:
            size_at = len(out) + 1
            out += _fun_head(t, minor)
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
        small = _SMALL_INTS
        for x in items:
            out += small[x] if 0 <= x <= 255 else _int_bytes(x)
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
