"""Writing the external format's leaf terms: what :mod:`pyekka.term.encode` calls.

Each function returns the complete encoding of one term that holds no other term
(atoms, cached per minor version; integers; floats; pids; ports; references;
export funs; bitstrings), or the fixed head of a local fun. Values out of range
for their wire field raise :class:`EncodeError`.
"""

from __future__ import annotations

from struct import Struct
from typing import Any

from pyekka.term.errors import EncodeError
from pyekka.term.tags import (
    ATOM_EXT,
    ATOM_UTF8_EXT,
    BINARY_EXT,
    BIT_BINARY_EXT,
    EXPORT_EXT,
    FLOAT_EXT,
    FLOAT_EXT_SIZE,
    INTEGER_EXT,
    LARGE_BIG_EXT,
    MAX_ATOM_CHARS,
    MAX_REF_WORDS,
    NEW_FLOAT_EXT,
    NEW_FUN_EXT,
    NEW_PID_EXT,
    NEW_PORT_EXT,
    NEW_PORT_EXT_LIMIT,
    NEWER_REFERENCE_EXT,
    SMALL_ATOM_UTF8_EXT,
    SMALL_BIG_EXT,
    SMALL_INTEGER_EXT,
    V4_PORT_EXT,
)
from pyekka.term.types import Atom, BitString, ExportFun, Fun, Pid, Port, Reference

__all__ = [
    "ATOM_CACHE_LIMIT",
    "SMALL_INTS",
    "atom_bytes",
    "atom_caches",
    "bitstring_bytes",
    "export_bytes",
    "float_bytes",
    "fun_head_bytes",
    "int_bytes",
    "pid_bytes",
    "port_bytes",
    "ref_bytes",
]

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
_U32_MAX = 0xFFFFFFFF

SMALL_INTS = [bytes((SMALL_INTEGER_EXT, i)) for i in range(256)]
"""``SMALL_INTEGER_EXT`` of 0..255, ready made."""

# ---------------------------------------------------------------- atoms

ATOM_CACHE_LIMIT = 4096
atom_caches: tuple[dict[str, bytes], ...] = ({}, {}, {})


def atom_bytes(name: str, minor: int) -> bytes:
    """The encoding of atom ``name`` (validated, cached per minor version)."""
    cache = atom_caches[minor]
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
    if len(cache) >= ATOM_CACHE_LIMIT:
        cache.clear()
    cache[name] = b
    return b


def _node(atom: Any, minor: int, what: str) -> bytes:
    if type(atom) is Atom:
        return atom_bytes(atom.name, minor)
    if type(atom) is bool:
        return atom_bytes("true" if atom else "false", minor)
    raise EncodeError(f"{what} must be an Atom, not {type(atom).__name__}")


# ---------------------------------------------------------------- leaves


def _u32(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _U32_MAX:
        raise EncodeError(f"{what} {value!r} is not an integer in 0..2**32-1")
    return value


def int_bytes(value: int) -> bytes:
    if 0 <= value <= 255:
        return SMALL_INTS[value]
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


def float_bytes(value: float, minor: int) -> bytes:
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


def pid_bytes(pid: Pid, minor: int) -> bytes:
    return (
        bytes((NEW_PID_EXT,))
        + _node(pid.node, minor, "pid node")
        + _U32X3(
            _u32(pid.id, "pid id"),
            _u32(pid.serial, "pid serial"),
            _u32(pid.creation, "pid creation"),
        )
    )


def port_bytes(port: Port, minor: int) -> bytes:
    num = port.id
    creation = _u32(port.creation, "port creation")
    node = _node(port.node, minor, "port node")
    if type(num) is int and 0 <= num < NEW_PORT_EXT_LIMIT:
        return bytes((NEW_PORT_EXT,)) + node + _U32X2(num, creation)
    if type(num) is not int or not 0 <= num < 1 << 64:
        raise EncodeError(f"port id {num!r} is not an integer in 0..2**64-1")
    return bytes((V4_PORT_EXT,)) + node + _U64_U32(num, creation)


def ref_bytes(ref: Reference, minor: int) -> bytes:
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


def export_bytes(fun: ExportFun, minor: int) -> bytes:
    arity = fun.arity
    if type(arity) is not int or not 0 <= arity <= 0x7FFFFFFF:
        raise EncodeError(f"export fun arity {arity!r} is out of range")
    return (
        bytes((EXPORT_EXT,))
        + _node(fun.module, minor, "fun module")
        + _node(fun.function, minor, "fun function")
        + int_bytes(arity)
    )


def fun_head_bytes(fun: Fun, minor: int) -> bytes:
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
        + int_bytes(fun.old_index)
        + int_bytes(fun.old_uniq)
        + pid_bytes(fun.pid, minor)
    )


def bitstring_bytes(bits: BitString) -> bytes:
    if bits.bits == 8:
        return _binary_bytes(bits.data) + bits.data
    return _BIT_HEAD(BIT_BINARY_EXT, len(bits.data), bits.bits) + bits.data
