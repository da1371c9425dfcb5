"""``erlang:phash2/1,2``: the VM's portable 32-bit term hash, bit for bit.

The algorithm is the emulator's ``make_hash2`` (Bob Jenkins' 96-bit mix over the
term's parts, a ``hashpjw`` for atom names, a block hash for binaries), run with an
explicit stack so that deep terms cannot overflow Python's recursion limit. It is
independent of the machine and of the ERTS version; the golden vectors of OTP 25
pin it down.

Python values are hashed as the terms they encode to: ``True``/``False`` and
``None`` as the atoms ``true``/``false``/``undefined``, ``str`` as its UTF-8
binary, ``bytearray``/``memoryview`` as binaries, ``dict``/``ErlMap`` as maps.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from pyekka.term.jenkins import GOLDEN as _G
from pyekka.term.jenkins import block_hash as _block_hash
from pyekka.term.jenkins import mix as _mix
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

__all__ = ["atom_hash", "phash2", "phash2_32"]

_M = 0xFFFFFFFF
# The golden ratio constant and its multiples (mod 2**32) used by make_hash2.
_K2 = 0x3C6EF372
_K3 = 0xDAA66D2B
_K4 = 0x78DDE6E4
_K5 = 0x1715609D
_K6 = 0xB54CDA56
_K7 = 0x5384540F
_K9 = 0x8FF34781
_K10 = 0x2E2AC13A
_K11 = 0xCC623AF3
_K12 = 0x6A99B4AC
_K13 = 0x08D12E65
_K14 = 0xA708A81E
_K15 = 0x454021D7
_K16 = 0xE3779B90
_K19 = 0xBE1E08BB

_NIL_FIRST = 3468870702  # the hash of [] when nothing was hashed before it
_NIL_TAG = 2  # the VM's internal type number of [] (NIL_DEF)
_SMALL_MIN = -(1 << 27)
_SMALL_LIMIT = 1 << 27
_PHASH2_MASK = (1 << 27) - 1
_MAX_RANGE = 1 << 32

_words2 = struct.Struct("<2I").iter_unpack
_double = struct.Struct(">Q")
_pack_double = struct.Struct(">d").pack

# Stack markers (never valid terms; compared by identity).
_MAP_PAIR = object()
_MAP_TAIL = object()
_LIST_REST = object()

_atom_cache: dict[str, int] = {}
_ATOM_CACHE_MAX = 1 << 16


def atom_hash(name: str) -> int:
    """The VM's atom-table hash of an atom's text (``phash2`` of a lone atom).

    A ``hashpjw`` over the UTF-8 bytes, except that characters below 256 count as
    their single Latin-1 byte.
    """
    hv = _atom_cache.get(name)
    if hv is not None:
        return hv
    try:
        raw = name.encode("latin-1")
    except UnicodeEncodeError:
        raw = b"".join(bytes((ord(ch),)) if ord(ch) < 256 else ch.encode("utf-8") for ch in name)
    h = 0
    for v in raw:
        h = ((h << 4) + v) & _M
        g = h & 0xF0000000
        if g:
            h ^= g | (g >> 24)
    if len(_atom_cache) >= _ATOM_CACHE_MAX:
        _atom_cache.clear()
    _atom_cache[name] = h
    return h


def _atom_hv(x: Any) -> int:
    """Atom hash of an ``Atom`` (or of ``True``/``False``/``None``) in a fixed field."""
    if type(x) is Atom:
        return atom_hash(x.name)
    if x is True:
        return atom_hash("true")
    if x is False:
        return atom_hash("false")
    if x is None:
        return atom_hash("undefined")
    raise TypeError(f"phash2: expected an atom, got {type(x).__name__}")


def _bignum(h: int, n: int) -> int:
    """Mix an integer outside the 28-bit small range: its 64-bit limbs, low first."""
    k = _K10 if n < 0 else _K11
    n = -n if n < 0 else n
    size = ((n.bit_length() + 63) >> 6) << 3
    for lo, hi in _words2(n.to_bytes(size, "little")):
        h = _mix(k + lo, k + hi, h)
    return h


def _float(h: int, f: float) -> int:
    if not math.isfinite(f):
        raise ValueError(f"phash2: {f!r} is not an Erlang float")
    bits = 0 if f == 0.0 else _double.unpack(_pack_double(f))[0]
    return _mix(_K12 + (bits >> 32), _K12 + (bits & _M), h)


def _bitstring(h: int, bs: BitString) -> int:
    data = bs.data
    if bs.bits == 8:
        return _block_hash(data, (_K13 + h) & _M)
    h = _block_hash(data[:-1], (_K13 + h) & _M)
    return _mix(_K15 + bs.bits, _K15 + (data[-1] >> (8 - bs.bits)), h)


def _flatten_improper(il: ImproperList) -> tuple[list, Any]:
    """Items and final tail of an improper list whose tail may itself be one."""
    items = list(il.items)
    tail = il.tail
    while type(tail) is ImproperList:
        items.extend(tail.items)
        tail = tail.tail
    return items, tail


def phash2_32(term: Any) -> int:
    """The full 32-bit ``make_hash2`` value H (= ``erlang:phash2(Term, 1 bsl 32)``)."""
    t = type(term)
    # Fast paths for the commonest stand-alone keys.
    if t is Atom:
        return atom_hash(term.name)
    if t is int and _SMALL_MIN <= term < _SMALL_LIMIT:
        if term < 0:
            return _mix(_G + term, _G, _mix(_G - term, _G, 0))
        return _mix(_G + term, _G, 0)
    if t is bytes:
        return _block_hash(term, _K13) if term else _K13
    return _hash_term(term)


def phash2(term: Any, range: int | None = None) -> int:
    """``erlang:phash2(Term)`` (27 bits) or ``erlang:phash2(Term, Range)``.

    ``range`` must be in ``1..2**32``. Raises ``TypeError`` for Python values that
    are not terms, ``ValueError`` for a bad range or a non-finite float.
    """
    if range is None:
        return phash2_32(term) & _PHASH2_MASK
    if type(range) is not int or not 1 <= range <= _MAX_RANGE:
        raise ValueError(f"phash2: range must be an integer in 1..2**32, got {range!r}")
    h = phash2_32(term)
    if range & (range - 1) == 0:
        return h & (range - 1)
    return h % range


def _hash_term(term: Any) -> int:
    """make_hash2 over any term, iteratively (explicit stack, no recursion)."""
    h = 0
    x = 0  # XOR of the pair hashes of the map being hashed
    stack: list[Any] = []
    push = stack.append
    pop = stack.pop
    mix = _mix
    while True:
        t = type(term)
        if t is Atom:
            hv = atom_hash(term.name)
            h = hv if h == 0 else mix(_K3 + hv, _K3, h)
        elif t is int:
            if _SMALL_MIN <= term < _SMALL_LIMIT:
                if term < 0:
                    h = mix(_G - term, _G, h)
                h = mix(_G + term, _G, h)
            else:
                h = _bignum(h, term)
        elif t is tuple:
            n = len(term)
            h = mix(_K9 + n, _K9, h)
            if n:
                if n > 1:
                    stack.extend(term[:0:-1])
                term = term[0]
                continue
        elif t is list:
            if term:
                push([])
                push(0)
                push(term)
                push(_LIST_REST)
            else:
                h = _NIL_FIRST if h == 0 else mix(_K2 + _NIL_TAG, _K2, h)
        elif t is bytes or t is str or t is bytearray or t is memoryview:
            if t is str:
                term = term.encode("utf-8")
            elif t is memoryview:
                term = term.tobytes()
            h = _block_hash(term, (_K13 + h) & _M) if len(term) else (_K13 + h) & _M
        elif t is dict or t is ErlMap:
            pairs = term.items()
            n = len(pairs)
            h = mix(_K16 + n, _K16, h)
            if n:
                push(x)
                push(h)
                push(_MAP_TAIL)
                h = 0
                x = 0
                for k, v in pairs:
                    push(_MAP_PAIR)
                    push(v)
                    push(k)
        elif t is bool or term is None:
            hv = atom_hash("undefined" if term is None else ("true" if term else "false"))
            h = hv if h == 0 else mix(_K3 + hv, _K3, h)
        elif t is float:
            h = _float(h, term)
        elif t is ImproperList:
            items, tail = _flatten_improper(term)
            push(tail)
            push(0)
            push(items)
            push(_LIST_REST)
        elif t is Pid:
            h = mix(_K5 + term.id, _K5, h)
        elif t is Reference:
            ids = term.ids
            h = mix(_K7 + (ids[0] if ids else 0), _K7, h)
        elif t is Port:
            n = term.id
            h = mix(_K6 + (n & _M), _K6 + (n >> 32), h)
        elif t is BitString:
            h = _bitstring(h, term)
        elif t is ExportFun:
            h = mix(_G + term.arity, _G + _atom_hv(term.module), h)
            h = mix(_K14 + _atom_hv(term.function), _K14, h)
        elif t is Fun:
            free = term.free_vars
            h = mix(_G + len(free), _G + _atom_hv(term.module), h)
            h = mix(_G + term.index, _G + term.old_uniq, h)
            if free:
                stack.extend(reversed(free))
        else:
            term = _coerce(term)
            continue

        # Take the next term off the stack, acting on markers on the way.
        while True:
            if not stack:
                return h
            term = pop()
            if term is _MAP_PAIR:
                x ^= h
                h = 0
            elif term is _MAP_TAIL:
                h = mix(_K19 + x, _K19, pop())
                x = pop()
            elif term is _LIST_REST:
                items = pop()
                i = pop()
                tail = pop()
                n = len(items)
                sh = 0
                c = 0
                while i < n:
                    e = items[i]
                    if type(e) is not int or not 0 <= e <= 255:
                        break
                    sh = (sh << 8) + e
                    c += 1
                    if c == 4:
                        h = mix(_K4 + sh, _K4, h)
                        sh = c = 0
                    i += 1
                if c:
                    h = mix(_K4 + sh, _K4, h)
                if i < n:
                    # A non-byte element: hash it, then continue after it.
                    push(tail)
                    if i + 1 < n:
                        push(i + 1)
                        push(items)
                        push(_LIST_REST)
                    term = items[i]
                else:
                    term = tail
                break
            else:
                break


def _coerce(term: Any) -> Any:
    """Map subclasses of the supported types onto their base; reject the rest."""
    for base in (int, float, str, bytes, bytearray, tuple, list, dict):
        if isinstance(term, base):
            return base(term)
    raise TypeError(f"phash2: {type(term).__name__} is not an Erlang term")
