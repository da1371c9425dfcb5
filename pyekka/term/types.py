"""Python classes for the Erlang terms that have no natural Python twin.

Mapping (see README, "Python type mapping"):

=====================  ==========================================
Erlang                 Python
=====================  ==========================================
integer                ``int``
float                  ``float``
atom ``true/false``    ``True`` / ``False``
other atoms            :class:`Atom`
binary                 ``bytes``
bitstring              :class:`BitString`
proper list            ``list`` (charlists are lists of ints)
improper list          :class:`ImproperList`
tuple                  ``tuple``
map                    ``dict`` (or :class:`ErlMap` when the keys cannot
                       live in a ``dict``: unhashable or colliding keys)
pid / port / ref       :class:`Pid` / :class:`Port` / :class:`Reference`
``fun M:F/A``          :class:`ExportFun`
local fun              :class:`Fun`
=====================  ==========================================

Every class here is immutable, hashable (when its contents are), compares equal
by value, and prints in Erlang syntax with ``str()``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Atom",
    "BitString",
    "ErlMap",
    "ExportFun",
    "Fun",
    "ImproperList",
    "Pid",
    "Port",
    "Reference",
    "exact_equal",
    "map_from_pairs",
]


def _format(term: Any) -> str:
    from pyekka.term.text import format_term

    return format_term(term)


class _Frozen:
    """Base for the immutable value classes: equality and hash by ``_key()``."""

    __slots__ = ()

    def _key(self) -> tuple:  # pragma: no cover - overridden
        raise NotImplementedError

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __str__(self) -> str:
        return _format(self)

    def __reduce__(self) -> tuple:
        return (type(self), self._key())


_set = object.__setattr__


class Atom(_Frozen):
    """An Erlang atom. ``Atom("ok")``; ``name`` is its text (at most 255 characters).

    ``true`` and ``false`` decode to Python's ``True``/``False``; ``Atom("true")``
    still encodes as the atom ``true``.
    """

    __slots__ = ("name",)
    name: str

    def __init__(self, name: str) -> None:
        if type(name) is not str:
            raise TypeError(f"atom name must be str, not {type(name).__name__}")
        _set(self, "name", name)

    def _key(self) -> tuple:
        return (self.name,)

    def __eq__(self, other: object) -> bool:
        if type(other) is Atom:
            return self.name == other.name  # type: ignore[union-attr]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name) ^ 0x5A5A5A5A

    def __repr__(self) -> str:
        return f"Atom({self.name!r})"


class Pid(_Frozen):
    """An Erlang process identifier ``<node.id.serial>`` with its node's creation."""

    __slots__ = ("node", "id", "serial", "creation")
    node: Atom
    id: int
    serial: int
    creation: int

    def __init__(self, node: Atom, id: int, serial: int = 0, creation: int = 0) -> None:
        _set(self, "node", node)
        _set(self, "id", id)
        _set(self, "serial", serial)
        _set(self, "creation", creation)

    def _key(self) -> tuple:
        return (self.node, self.id, self.serial, self.creation)

    def __repr__(self) -> str:
        return f"Pid({self.node!r}, {self.id}, {self.serial}, {self.creation})"


class Port(_Frozen):
    """An Erlang port identifier."""

    __slots__ = ("node", "id", "creation")
    node: Atom
    id: int
    creation: int

    def __init__(self, node: Atom, id: int, creation: int = 0) -> None:
        _set(self, "node", node)
        _set(self, "id", id)
        _set(self, "creation", creation)

    def _key(self) -> tuple:
        return (self.node, self.id, self.creation)

    def __repr__(self) -> str:
        return f"Port({self.node!r}, {self.id}, {self.creation})"


class Reference(_Frozen):
    """An Erlang reference: node, creation and its id words (in ETF order)."""

    __slots__ = ("node", "creation", "ids")
    node: Atom
    creation: int
    ids: tuple[int, ...]

    def __init__(self, node: Atom, creation: int, ids: tuple[int, ...] | list[int]) -> None:
        _set(self, "node", node)
        _set(self, "creation", creation)
        _set(self, "ids", tuple(ids))

    def _key(self) -> tuple:
        return (self.node, self.creation, self.ids)

    def __repr__(self) -> str:
        return f"Reference({self.node!r}, {self.creation}, {self.ids!r})"


class ExportFun(_Frozen):
    """An external fun, ``fun Module:Function/Arity``."""

    __slots__ = ("module", "function", "arity")
    module: Atom
    function: Atom
    arity: int

    def __init__(self, module: Atom, function: Atom, arity: int) -> None:
        _set(self, "module", module)
        _set(self, "function", function)
        _set(self, "arity", arity)

    def _key(self) -> tuple:
        return (self.module, self.function, self.arity)

    def __repr__(self) -> str:
        return f"ExportFun({self.module!r}, {self.function!r}, {self.arity})"


class Fun(_Frozen):
    """A local fun (NEW_FUN_EXT). It only means something to the VM that made it."""

    __slots__ = ("module", "arity", "old_index", "old_uniq", "index", "uniq", "pid", "free_vars")
    module: Atom
    arity: int
    old_index: int
    old_uniq: int
    index: int
    uniq: bytes
    pid: Pid
    free_vars: tuple

    def __init__(
        self,
        module: Atom,
        arity: int,
        old_index: int,
        old_uniq: int,
        index: int,
        uniq: bytes,
        pid: Pid,
        free_vars: tuple | list = (),
    ) -> None:
        if len(uniq) != 16:
            raise ValueError("fun uniq must be 16 bytes")
        _set(self, "module", module)
        _set(self, "arity", arity)
        _set(self, "old_index", old_index)
        _set(self, "old_uniq", old_uniq)
        _set(self, "index", index)
        _set(self, "uniq", bytes(uniq))
        _set(self, "pid", pid)
        _set(self, "free_vars", tuple(free_vars))

    def _key(self) -> tuple:
        return (
            self.module,
            self.arity,
            self.old_index,
            self.old_uniq,
            self.index,
            self.uniq,
            self.pid,
            self.free_vars,
        )

    def __repr__(self) -> str:
        return (
            f"Fun({self.module!r}, {self.arity}, {self.old_index}, {self.old_uniq}, "
            f"{self.index}, {self.uniq!r}, {self.pid!r}, {self.free_vars!r})"
        )


class BitString(_Frozen):
    """A bitstring whose length is not a whole number of bytes.

    ``data`` holds the bytes; ``bits`` (1..8) is how many high bits of the last byte
    are used. The unused low bits are kept zero. A whole-byte binary is ``bytes``.
    """

    __slots__ = ("data", "bits")
    data: bytes
    bits: int

    def __init__(self, data: bytes, bits: int) -> None:
        data = bytes(data)
        if not 1 <= bits <= 8:
            raise ValueError("bits must be 1..8")
        if not data:
            raise ValueError("a bitstring needs at least one byte")
        if bits < 8:
            mask = (0xFF << (8 - bits)) & 0xFF
            if data[-1] & ~mask & 0xFF:
                data = data[:-1] + bytes([data[-1] & mask])
        _set(self, "data", data)
        _set(self, "bits", bits)

    @property
    def bit_size(self) -> int:
        """Total number of bits."""
        return (len(self.data) - 1) * 8 + self.bits

    def _key(self) -> tuple:
        return (self.data, self.bits)

    def __repr__(self) -> str:
        return f"BitString({self.data!r}, {self.bits})"


class ImproperList(_Frozen):
    """A list whose last tail is not ``[]``: ``[a, b | tail]``. ``items`` is non-empty."""

    __slots__ = ("items", "tail")
    items: tuple
    tail: Any

    def __init__(self, items: tuple | list, tail: Any) -> None:
        items = tuple(items)
        if not items:
            raise ValueError("an improper list needs at least one element")
        if type(tail) is list:
            raise ValueError("the tail of an improper list cannot be a proper list")
        _set(self, "items", items)
        _set(self, "tail", tail)

    def _key(self) -> tuple:
        return (self.items, self.tail)

    def __repr__(self) -> str:
        return f"ImproperList({list(self.items)!r}, {self.tail!r})"


class ErlMap(_Frozen):
    """An Erlang map that a ``dict`` cannot hold.

    Used by the decoder only when a map's keys are unhashable in Python (lists,
    dicts) or collide in Python although distinct in Erlang (``1`` and ``1.0``,
    ``1`` and ``true``). ``pairs`` is a tuple of ``(key, value)`` in wire order.
    Equality ignores order.
    """

    __slots__ = ("pairs",)
    pairs: tuple

    def __init__(self, pairs: Any) -> None:
        if isinstance(pairs, dict):
            pairs = pairs.items()
        _set(self, "pairs", tuple((k, v) for k, v in pairs))

    def _key(self) -> tuple:
        return self.pairs

    def __eq__(self, other: object) -> bool:
        if type(other) is not ErlMap:
            return NotImplemented
        mine, theirs = self.pairs, other.pairs  # type: ignore[union-attr]
        if len(mine) != len(theirs):
            return False
        rest = list(theirs)
        for pair in mine:
            for i, cand in enumerate(rest):
                if exact_equal(pair, cand):
                    del rest[i]
                    break
            else:
                return False
        return True

    def __hash__(self) -> int:
        h = 0
        for k, v in self.pairs:
            h ^= hash((_type_tag(k), k, v))
        return h

    def __len__(self) -> int:
        return len(self.pairs)

    def items(self) -> tuple:
        """The ``(key, value)`` pairs."""
        return self.pairs

    def __repr__(self) -> str:
        return f"ErlMap({list(self.pairs)!r})"


def _type_tag(x: Any) -> str:
    return type(x).__name__


def map_from_pairs(pairs: list | tuple) -> dict | ErlMap:
    """The Python value of an Erlang map with these ``(key, value)`` pairs.

    A ``dict`` when every key is hashable and no two keys collide in Python;
    otherwise an :class:`ErlMap` that keeps all pairs in their given order.
    """
    try:
        d = dict(pairs)
    except TypeError:
        return ErlMap(pairs)
    if len(d) != len(pairs):
        return ErlMap(pairs)
    return d


def exact_equal(a: Any, b: Any) -> bool:
    """Erlang's exact equality (``=:=``) on Python values.

    Unlike ``==``, ``1`` is not ``1.0`` nor ``True``, and a ``dict`` equals an
    :class:`ErlMap` holding the same pairs.
    """
    ta, tb = type(a), type(b)
    if ta is dict and tb is ErlMap:
        return exact_equal(ErlMap(a), b)
    if ta is ErlMap and tb is dict:
        return exact_equal(a, ErlMap(b))
    if ta is not tb:
        return False
    if ta is tuple or ta is list:
        return len(a) == len(b) and all(exact_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        if len(a) != len(b):
            return False
        stored = {k: k for k in b}
        for k, v in a.items():
            if k not in stored:
                return False
            if not exact_equal(k, stored[k]) or not exact_equal(v, b[k]):
                return False
        return True
    if ta is float:
        # -0.0 and 0.0 are the same term in OTP 25 (=:= is true); keep that meaning.
        return a == b
    if ta is ImproperList:
        return exact_equal(a.items, b.items) and exact_equal(a.tail, b.tail)
    if ta is ErlMap:
        return a == b
    if ta is Fun:
        return a._key()[:-1] == b._key()[:-1] and exact_equal(a.free_vars, b.free_vars)
    return a == b
