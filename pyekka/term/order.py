"""Erlang's term order (OTP 25), for Python values of the term mapping.

number < atom < reference < fun < port < pid < tuple < map < nil < list < bitstring

* Integers and floats compare by exact value (``1 == 1.0``; no rounding, even for
  big integers against floats); ``0.0 == -0.0``.
* Atoms compare by their text (code point order, the same as UTF-8 byte order).
* References: node name, node creation, then the id words from the most
  significant (the last one in ETF order); missing high words count as zero.
* Local funs sort before export funs. Local funs: module, new index, old uniq,
  number of free variables, then the free variables. (The VM keys its fun table
  by module, index and old uniq, so funs that differ only in arity, old index or
  the 16-byte uniq compare equal, as they do in the VM.) Export funs: module,
  function, arity.
* Ports: node name, creation, id. Pids: serial, id, node name, creation.
* Tuples: size, then elements. Maps: size, then the keys in map-key order
  (compared exactly), then the values in that order. Lists: element by element,
  then the tails. Bitstrings: bit by bit, then length.

:func:`compare` and the sort keys never recurse, so deep terms are fine.
"""

from __future__ import annotations

from typing import Any

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

__all__ = ["compare", "exact_compare", "map_key_sort_key", "term_sort_key"]

# Type ranks. Integers and floats share a rank, except in exact (map key) order.
_INT = 0
_FLOAT = 1
_ATOM = 2
_REF = 3
_FUN = 4
_EXPORT = 5
_PORT = 6
_PID = 7
_TUPLE = 8
_MAP = 9
_NIL = 10
_LIST = 11
_BITS = 12

_RANKS: dict[type, int] = {
    int: _INT,
    float: _FLOAT,
    Atom: _ATOM,
    bool: _ATOM,
    type(None): _ATOM,
    Reference: _REF,
    Fun: _FUN,
    ExportFun: _EXPORT,
    Port: _PORT,
    Pid: _PID,
    tuple: _TUPLE,
    dict: _MAP,
    ErlMap: _MAP,
    list: _LIST,  # [] is _NIL, sorted out where it matters
    ImproperList: _LIST,
    bytes: _BITS,
    str: _BITS,
    bytearray: _BITS,
    memoryview: _BITS,
    BitString: _BITS,
}
_SCALAR = frozenset({_INT, _FLOAT, _ATOM, _REF, _EXPORT, _PORT, _PID, _NIL, _BITS})


def _rank(term: Any) -> tuple[int, Any]:
    """``(rank, term)``; ``term`` is normalised when its type is a subclass."""
    r = _RANKS.get(type(term))
    if r is None:
        term = _coerce(term)
        r = _RANKS[type(term)]
    if r == _LIST and type(term) is list and not term:
        r = _NIL
    return r, term


def _coerce(term: Any) -> Any:
    for base in (int, float, str, bytes, bytearray, tuple, list, dict):
        if isinstance(term, base):
            return base(term)
    raise TypeError(f"{type(term).__name__} is not an Erlang term")


def _atom_text(x: Any) -> str:
    if type(x) is Atom:
        return x.name
    if x is True:
        return "true"
    if x is False:
        return "false"
    if x is None:
        return "undefined"
    raise TypeError(f"expected an atom, got {type(x).__name__}")


def _bits_payload(term: Any) -> tuple[bytes, int]:
    """``(bytes, bit length)``; with zero padding this orders like the bits."""
    t = type(term)
    if t is bytes:
        return term, len(term) << 3
    if t is str:
        data = term.encode("utf-8")
        return data, len(data) << 3
    if t is BitString:
        return term.data, term.bit_size
    data = bytes(term)
    return data, len(data) << 3


def _payload(r: int, term: Any) -> Any:
    """A plain Python value that orders scalars of rank ``r`` like the VM."""
    if r <= _FLOAT:
        return term
    if r == _ATOM:
        return _atom_text(term)
    if r == _BITS:
        return _bits_payload(term)
    if r == _PID:
        return (term.serial, term.id, _atom_text(term.node), term.creation)
    if r == _PORT:
        return (_atom_text(term.node), term.creation, term.id)
    if r == _REF:
        ids = term.ids
        n = len(ids)
        while n and ids[n - 1] == 0:
            n -= 1
        return (_atom_text(term.node), term.creation, n, ids[n - 1 :: -1] if n else ())
    if r == _EXPORT:
        return (_atom_text(term.module), _atom_text(term.function), term.arity)
    return 0  # [] equals []


def _list_parts(term: Any) -> tuple[Any, Any]:
    """``(items, tail)`` of a non-empty list; nested improper tails are flattened."""
    if type(term) is list:
        return term, []
    items = term.items
    tail = term.tail
    if type(tail) is ImproperList:
        items = list(items)
        while type(tail) is ImproperList:
            items.extend(tail.items)
            tail = tail.tail
    return items, tail


def _rest(items: Any, start: int, tail: Any) -> Any:
    """The list made of ``items[start:]`` followed by ``tail``."""
    if start >= len(items):
        return tail
    if type(tail) is list:  # always [] here
        return list(items[start:])
    return ImproperList(items[start:], tail)


def _sign(x: Any, y: Any) -> int:
    return -1 if x < y else 1


def _compare(a: Any, b: Any, exact: bool) -> int:
    """Erlang comparison; ``exact`` orders all integers before all floats."""
    stack: list[tuple[Any, Any, bool]] = []
    while True:
        if a is b:  # the same object: equal (as the VM does for the same term)
            if not stack:
                return 0
            a, b, exact = stack.pop()
            continue
        ra, a = _rank(a)
        rb, b = _rank(b)
        if not exact:
            if ra == _FLOAT:
                ra = _INT
            if rb == _FLOAT:
                rb = _INT
        if ra != rb:
            return -1 if ra < rb else 1
        if ra in _SCALAR:
            pa = _payload(ra, a)
            pb = _payload(rb, b)
            if pa != pb:
                return _sign(pa, pb)
        elif ra == _TUPLE:
            if len(a) != len(b):
                return _sign(len(a), len(b))
            for i in range(len(a) - 1, -1, -1):
                stack.append((a[i], b[i], exact))
        elif ra == _LIST:
            ia, ta = _list_parts(a)
            ib, tb = _list_parts(b)
            m = min(len(ia), len(ib))
            stack.append((_rest(ia, m, ta), _rest(ib, m, tb), exact))
            for i in range(m - 1, -1, -1):
                stack.append((ia[i], ib[i], exact))
        elif ra == _MAP:
            pa = a.items()
            pb = b.items()
            if len(pa) != len(pb):
                return _sign(len(pa), len(pb))
            sa = sorted(pa, key=_pair_key)
            sb = sorted(pb, key=_pair_key)
            # Keys first (exactly), then values, both in map-key order.
            for i in range(len(sa) - 1, -1, -1):
                stack.append((sa[i][1], sb[i][1], exact))
            for i in range(len(sa) - 1, -1, -1):
                stack.append((sa[i][0], sb[i][0], True))
        else:  # local fun
            ha = (_atom_text(a.module), a.index, a.old_uniq, len(a.free_vars))
            hb = (_atom_text(b.module), b.index, b.old_uniq, len(b.free_vars))
            if ha != hb:
                return _sign(ha, hb)
            fa, fb = a.free_vars, b.free_vars
            for i in range(len(fa) - 1, -1, -1):
                stack.append((fa[i], fb[i], exact))
        if not stack:
            return 0
        a, b, exact = stack.pop()


def compare(a: Any, b: Any) -> int:
    """Erlang term order: ``-1`` if ``a < b``, ``0`` if ``a == b``, ``1`` if ``a > b``.

    ``0`` means Erlang's ``==`` (so ``compare(1, 1.0) == 0``), not ``=:=``.
    """
    return _compare(a, b, False)


def exact_compare(a: Any, b: Any) -> int:
    """Map-key order: like :func:`compare`, but every integer sorts before every
    float at any depth, so ``0`` means ``=:=`` (for OTP 25, where ``0.0 =:= -0.0``).
    """
    return _compare(a, b, True)


class _Into:
    """Flattening marker: go on writing into ``out``, in mode ``exact``."""

    __slots__ = ("exact", "out")

    def __init__(self, out: list, exact: bool) -> None:
        self.out = out
        self.exact = exact


class _MapDone:
    """Flattening marker: the keys of a map are flat; splice them in, then the values."""

    __slots__ = ("exact", "keys", "out", "pairs")

    def __init__(self, out: list, exact: bool, pairs: list) -> None:
        self.out = out
        self.exact = exact
        self.pairs = pairs
        self.keys: list[list] = [[] for _ in pairs]


_CONS = object()  # flattening marker: one list cell


def _flatten(term: Any, exact: bool) -> tuple:
    """``term`` as one flat tuple that sorts (and compares equal) like the term.

    Every term is written in pre-order as its rank followed by a fixed number of
    fields for that rank: a scalar as ``rank, payload``; a tuple as ``rank, size``
    then its elements; a list cell as ``rank`` then its head (the rest follows as
    the next cell or the tail); a map as ``rank, size``, its keys (flattened in map-key
    order, sorted) then its values in that order; a local fun as ``rank, header``
    then its free variables. The encoding is prefix-free, so tuple comparison of two
    flat forms meets the first difference at the same place in both terms: a rank
    there decides like the type order, a field like the term order. No recursion:
    a term nested to any depth gives a long tuple, not a deep one.
    """
    out: list = []
    stack: list = [term]
    push = stack.append
    pop = stack.pop
    while stack:
        t = pop()
        r = _RANKS.get(type(t))
        if r is None:
            if t is _CONS:
                out.append(_LIST)
                continue
            tp = type(t)
            if tp is _Into:
                out, exact = t.out, t.exact
                continue
            if tp is _MapDone:
                out, exact = t.out, t.exact
                keys = [tuple(k) for k in t.keys]
                order = sorted(range(len(keys)), key=keys.__getitem__)
                for i in order:
                    out += keys[i]
                pairs = t.pairs
                for i in reversed(order):
                    push(pairs[i][1])
                continue
            t = _coerce(t)
            r = _RANKS[type(t)]
        if r == _TUPLE:
            out += (_TUPLE, len(t))
            stack.extend(reversed(t))
        elif r == _LIST:
            items, tail = _list_parts(t) if t else ((), None)
            if not items:
                out += (_NIL, 0)
                continue
            push(tail)
            for x in reversed(items):
                push(x)
                push(_CONS)
        elif r == _MAP:
            pairs = list(t.items())
            out += (_MAP, len(pairs))
            if pairs:
                done = _MapDone(out, exact, pairs)
                push(done)
                for i in range(len(pairs) - 1, -1, -1):
                    push(pairs[i][0])
                    push(_Into(done.keys[i], True))
        elif r == _FUN:
            out += (_FUN, (_atom_text(t.module), t.index, t.old_uniq, len(t.free_vars)))
            stack.extend(reversed(t.free_vars))
        else:
            if r == _FLOAT and not exact:
                r = _INT
            out += (r, _payload(r, t))
    return tuple(out)


def term_sort_key(term: Any) -> tuple:
    """A key for ``sorted()`` that orders terms like Erlang (``lists:sort/1``).

    Terms that compare equal (``1`` and ``1.0``) get equal keys, so a stable sort
    keeps their order.
    """
    t = type(term)
    if t is int or t is float:
        return (_INT, term)
    if t is Atom:
        return (_ATOM, term.name)
    return _flatten(term, False)


def map_key_sort_key(term: Any) -> tuple:
    """The key of ``term`` in map-key order: the order of OTP's small maps (<= 32 keys).

    Term order, except that all integers come before all floats (also inside
    compound keys). Two values get equal keys exactly when they are the same Erlang
    map key (``b"a"`` and ``"a"``, ``0.0`` and ``-0.0``), but not ``1`` and ``1.0``;
    keys are hashable, so a set of them finds duplicate map keys. Raises
    ``TypeError`` for values with no Erlang form (``UnicodeEncodeError`` for a
    ``str`` that has no UTF-8 form).
    """
    t = type(term)
    if t is Atom:
        return (_ATOM, term.name)
    if t is int:
        return (_INT, term)
    if t is bytes:
        return (_BITS, (term, len(term) << 3))
    if t is float:
        return (_FLOAT, term)
    return _flatten(term, True)


def _pair_key(pair: tuple[Any, Any]) -> tuple:
    return map_key_sort_key(pair[0])
