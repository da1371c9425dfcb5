"""The order in which OTP 25 writes the pairs of a map: canonical ``MAP_EXT`` order.

A map of at most 32 keys is a sorted "flatmap" and is written in map-key order
(:func:`flatmap_sort`). A larger map is a hash trie (HAMT) keyed by the VM's
*internal* 32-bit term hash (not ``phash2``), and ``term_to_binary`` walks it depth
first, visiting the 16 slots of every node from the highest to the lowest. The slot
at depth ``d`` is hash nibble ``d`` counted from the low end; when two keys share
all 8 nibbles, a hash of the key salted with ``d // 8`` supplies the next ones. So
the pairs come out sorted by the nibble-reversed hash, largest first
(:func:`hashmap_sort`).

The hash reimplemented here is the one of OTP 25 (erts 13.1, 64-bit build). Keys
hash exactly as in the VM when they are built from integers, floats, binaries,
bitstrings, tuples, lists and maps. Keys holding anything else hash by the state of
one particular VM and cannot be reproduced from the value alone:

* **Atoms** hash by their index in the VM's atom table, which depends on the order
  in which that VM created its atoms. Pass ``atom_index`` (atom name to index, or
  ``None`` when unknown) to reproduce a given VM's order; ``false`` and ``true``
  are always 0 and 1. Any other atom gets a stand-in index derived from its name.
* **Pids, ports and references** hash by the address of the VM's node entry (or,
  when local to that VM, by a VM-private layout), **funs** by the address of their
  export or fun entry. These get a stand-in hash of their fields instead.

Stand-ins are deterministic (independent of the Python process and of
``PYTHONHASHSEED``), so :func:`hashmap_sort` is stable, just not the order a given VM
would pick. :func:`reproducible_hashmap_sort` has no stand-ins: it gives the VM's
order or ``None``, and the encoder writes a map of such keys in its own order
instead (see :mod:`pyekka.term.encode`). Newer releases changed the internal hash
(OTP 28 uses a 64-bit one), so their large-map order differs from OTP 25's for every
key type; any order decodes to the same map, only byte-for-byte comparison with
OTP 25 needs this one.

Many keys of one kind (binaries of one length; small integers and atoms) are hashed
together in the lanes of one big integer (:mod:`pyekka.term.jenkins`), so that
ordering 10,000 binary keys takes a few milliseconds rather than tens.

Python values are taken as they encode: ``True``/``False``/``None`` as the atoms
``true``/``false``/``undefined``, ``str`` as its UTF-8 binary,
``bytearray``/``memoryview`` as binaries, ``dict``/:class:`ErlMap` as maps.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pyekka.term.jenkins import GOLDEN, LANES_MIN, block_hash, block_hashes, mix, word_hashes
from pyekka.term.order import map_key_sort_key
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
    "MAP_SMALL_LIMIT",
    "AtomIndex",
    "canonical_map_order",
    "flatmap_sort",
    "hashmap_sort",
    "map_hash",
    "reproducible_hashmap_sort",
]

MAP_SMALL_LIMIT = 32
"""The largest map OTP keeps (and writes) in sorted map-key order."""

AtomIndex = Callable[[str], int | None]
"""Maps an atom's name to its index in some VM's atom table (``None``: unknown)."""

_M = 0xFFFFFFFF
_W64 = 0xFFFFFFFFFFFFFFFF

# The per-type constants of the VM's term hashes.
_K4 = 0x78DDE6E4
_K9 = 0x8FF34781
_K10 = 0x2E2AC13A
_K11 = 0xCC623AF3
_K12 = 0x6A99B4AC
_K13 = 0x08D12E65
_K15 = 0x454021D7
_K16 = 0xE3779B90
_K17 = 0x81AF1549
_K18 = 0x1FE68F02
_K22 = 0x98C475E6
_SEED = 3432918353  # xor-ed into the salt so that the hash differs from phash2's
_BINARY_SEED = (_K13 + _SEED) & _M  # where a binary key's hash starts at depth 0
_STAND_IN = 0x5BD1E995  # our own constant for the stand-in hashes (not the VM's)

# Tagged 64-bit words of immediates (erts' 64-bit term layout).
_SMALL_MIN = -(1 << 59)
_SMALL_LIMIT = 1 << 59
_NIL_WORD = 0x3B
_FIXED_ATOMS = {"false": 0, "true": 1}  # first entries of every VM's atom table

_pack_double = struct.Struct("<d").pack
_unpack_2i = struct.Struct("<2I").unpack
_NIBBLE_SWAP = bytes(((b & 0xF) << 4) | (b >> 4) for b in range(256))
_MAX_DEPTH = 64  # salt levels tried before equal-hash keys keep their input order

# Stack markers for the explicit-stack hash (compared by identity).
_LIST_REST = object()
_HASH_CDR = object()


def _immediate(word: int, h: int) -> int:
    """Hash step for a tagged 64-bit immediate (small integer, atom, ``[]``)."""
    return mix((GOLDEN + (word & _M)) & _M, (GOLDEN + (word >> 32)) & _M, h)


def _rotate_in(h: int, k: int) -> int:
    """The light mixing of a type constant used around list cells."""
    h ^= k
    return ((h << 17) & _M) | (h >> 15)


class _VmSpecific(Exception):
    """A key's hash depends on the VM's state (raised by a strict hasher)."""


class _Hasher:
    """The internal term hash of one VM (as far as known: see the module doc).

    A ``strict`` hasher has no stand-ins: it raises :class:`_VmSpecific` on an atom
    other than ``true``/``false``, a pid, port, reference or fun.
    """

    __slots__ = ("_atom_index", "_atom_words", "_strict")

    def __init__(self, atom_index: AtomIndex | None, strict: bool = False) -> None:
        self._atom_index = atom_index
        self._atom_words: dict[str, int] = {}
        self._strict = strict

    def atom_word(self, name: str) -> int:
        """The tagged word of atom ``name``: its table index shifted, tag 0x0B."""
        word = self._atom_words.get(name)
        if word is None:
            index = _FIXED_ATOMS.get(name)
            if index is None and self._strict:
                raise _VmSpecific
            if index is None and self._atom_index is not None:
                index = self._atom_index(name)
            if index is None:
                # stand-in: a pseudo-index taken from the name
                index = block_hash(name.encode("utf-8"), _STAND_IN)
            word = ((index << 6) | 0x0B) & _W64
            self._atom_words[name] = word
        return word

    def salt(self, depth: int) -> int:
        """The starting hash value for trie levels ``8*depth .. 8*depth+7``."""
        salt = mix((_K22 + depth) & _M, (_K22 + 1) & _M, 0) if depth else 0
        return salt ^ _SEED

    def key_hash(self, key: Any, depth: int = 0) -> int:
        """The 32-bit hash of ``key`` for trie levels ``8*depth`` and on."""
        h = self.salt(depth)
        t = type(key)
        if t is int and _SMALL_MIN <= key < _SMALL_LIMIT:
            return _immediate(((key << 4) | 0xF) & _W64, h)
        if t is bytes:
            c = (_K13 + h) & _M
            return block_hash(key, c) if key else c
        if t is Atom:
            return _immediate(self.atom_word(key.name), h)
        return self.hash_term(key, h)

    def hash_term(self, term: Any, h: int) -> int:
        """Fold ``term`` into the running hash ``h`` (iterative: any depth)."""
        stack: list[Any] = []
        push = stack.append
        pop = stack.pop
        while True:
            t = type(term)
            if t is int or t is bool:
                if t is bool:
                    h = _immediate(self.atom_word("true" if term else "false"), h)
                elif _SMALL_MIN <= term < _SMALL_LIMIT:
                    h = _immediate(((term << 4) | 0xF) & _W64, h)
                else:
                    h = _hash_bignum(term, h)
            elif t is Atom:
                h = _immediate(self.atom_word(term.name), h)
            elif term is None:
                h = _immediate(self.atom_word("undefined"), h)
            elif t is bytes or t is str or t is bytearray or t is memoryview:
                data = term.encode("utf-8") if t is str else bytes(term)
                c = (_K13 + h) & _M
                h = block_hash(data, c) if data else c
            elif t is float:
                lo, hi = _unpack_2i(_pack_double(term if term != 0.0 else 0.0))
                h = mix((_K12 + lo) & _M, (_K12 + hi) & _M, h)
            elif t is tuple:
                h = mix((_K9 + len(term)) & _M, _K9, h)
                if term:
                    for i in range(len(term) - 1, 0, -1):
                        push(term[i])
                    term = term[0]
                    continue
            elif t is list or t is ImproperList:
                if t is list:
                    if not term:
                        h = _immediate(_NIL_WORD, h)
                    else:
                        term, h = self._list_cells(term, 0, [], h, push)
                        continue
                else:
                    term, h = self._list_cells(term.items, 0, term.tail, h, push)
                    continue
            elif t is dict or t is ErlMap:
                pairs = list(term.items())
                h = mix((_K16 + len(pairs)) & _M, _K16, h)
                ordered = self.map_order(pairs)
                for k, v in reversed(ordered):
                    push(v)
                    push(k)
            elif t is BitString:
                h = self._bitstring(term, h)
            elif t is Pid or t is Port or t is Reference or t is ExportFun or t is Fun:
                if self._strict:
                    raise _VmSpecific
                push(_stand_in(term))
                h = mix(_STAND_IN, _STAND_IN, h)
            else:
                raise TypeError(f"not an Erlang term: {type(term).__name__}")
            # the next pending piece of work
            while True:
                if not stack:
                    return h
                term = pop()
                if term is _HASH_CDR:
                    h = _rotate_in(h, _K18)
                elif term is _LIST_REST:
                    items, i, tail = pop()
                    term, h = self._list_cells(items, i, tail, h, push)
                    break
                else:
                    break

    def _list_cells(
        self, items: Sequence[Any], i: int, tail: Any, h: int, push: Callable[[Any], None]
    ) -> tuple[Any, int]:
        """Hash list cells from ``items[i]``; returns the next term to hash and ``h``.

        Runs of byte-sized integers are packed four to a word; a cell holding
        anything else pushes the rest of the list and hands back its head.
        """
        n = len(items)
        count = 0
        packed = 0
        while i < n:
            x = items[i]
            if type(x) is not int or not 0 <= x <= 255:
                break
            packed = (packed << 8) + x
            if count == 3:
                h = mix((_K4 + packed) & _M, _K4, h)
                count = packed = 0
            else:
                count += 1
            i += 1
        if count:
            h = mix((_K22 + packed) & _M, (_K22 + count) & _M, h)
        if i == n:
            return tail, h
        h = _rotate_in(h, _K17)
        if i + 1 < n:
            push((items, i + 1, tail))
            push(_LIST_REST)
        else:
            push(tail)
            if not _is_cons(tail):
                push(_HASH_CDR)
        return items[i], h

    def _bitstring(self, term: BitString, h: int) -> int:
        data, bits = term.data, term.bits
        c = (_K13 + h) & _M
        if bits == 8:
            return block_hash(data, c)
        h = block_hash(data[:-1], c)
        return mix((_K15 + bits) & _M, (_K15 + (data[-1] >> (8 - bits))) & _M, h)

    def map_order(self, pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """The pairs of one map in the order the VM keeps (and writes) them."""
        if len(pairs) <= MAP_SMALL_LIMIT:
            return flatmap_sort(pairs)
        return self.hashmap_order(pairs)

    def hashmap_order(self, pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """The pairs in hash-trie order (whatever their number)."""
        hashes = self._top_hashes(pairs)
        keys = _swizzled(hashes)
        order = sorted(range(len(keys)), key=keys.__getitem__, reverse=True)
        if len(set(hashes)) != len(hashes):
            order = self._split_ties(pairs, order, hashes, 1)
        return [pairs[i] for i in order]

    def _top_hashes(self, pairs: list[tuple[Any, Any]]) -> list[int]:
        """``key_hash(k)`` of every key (depth 0); many alike keys are hashed at once.

        Binaries (and ``str``) are grouped by length, small integers and atoms go
        together, and each group of at least ``LANES_MIN`` keys is hashed by
        the lanes of :func:`~pyekka.term.jenkins.block_hashes` or
        :func:`~pyekka.term.jenkins.word_hashes`; other keys one by one.
        """
        keys = [k for k, _ in pairs]
        n = len(keys)
        if set(map(type, keys)) == {bytes}:
            lengths = set(map(len, keys))
            if len(lengths) == 1:
                return _binary_hashes(keys, lengths.pop())
        out = [0] * n
        binaries: dict[int, tuple[list[int], list[bytes]]] = {}
        immediates: tuple[list[int], list[int]] = ([], [])
        atom_word = self.atom_word
        for i, k in enumerate(keys):
            t = type(k)
            if t is bytes or t is str:
                data = k if t is bytes else k.encode("utf-8")
                group = binaries.get(len(data))
                if group is None:
                    group = binaries[len(data)] = ([], [])
                group[0].append(i)
                group[1].append(data)
            elif t is int and _SMALL_MIN <= k < _SMALL_LIMIT:
                immediates[0].append(i)
                immediates[1].append(((k << 4) | 0xF) & _W64)
            elif t is Atom:
                immediates[0].append(i)
                immediates[1].append(atom_word(k.name))
            else:
                out[i] = self.key_hash(k)
        indices, words = immediates
        if len(words) >= LANES_MIN:
            hashes = word_hashes(words, GOLDEN, _SEED)
        else:
            hashes = [_immediate(w, _SEED) for w in words]
        for i, h in zip(indices, hashes, strict=True):
            out[i] = h
        for size, (indices, group) in binaries.items():
            hashes = _binary_hashes(group, size)
            for i, h in zip(indices, hashes, strict=True):
                out[i] = h
        return out

    def _split_ties(
        self, pairs: list[tuple[Any, Any]], order: list[int], hashes: list[int], depth: int
    ) -> list[int]:
        """Reorder runs of equal hashes by the hash salted with ``depth``."""
        out: list[int] = []
        start = 0
        n = len(order)
        while start < n:
            end = start + 1
            h0 = hashes[order[start]]
            while end < n and hashes[order[end]] == h0:
                end += 1
            run = order[start:end]
            if len(run) > 1 and depth <= _MAX_DEPTH:
                deeper = {i: self.key_hash(pairs[i][0], depth) for i in run}
                run = _descending(run, deeper)
                if len(set(deeper.values())) != len(run):
                    run = self._split_ties(pairs, run, deeper, depth + 1)
            out.extend(run)
            start = end
        return out


def _binary_hashes(keys: list[bytes], size: int) -> list[int]:
    """The depth-0 hashes of binary keys that are all ``size`` bytes long."""
    if not size:
        return [_BINARY_SEED] * len(keys)  # the VM does not block-hash an empty binary
    if len(keys) >= LANES_MIN:
        return block_hashes(keys, size, _BINARY_SEED)
    return [block_hash(k, _BINARY_SEED) for k in keys]


def _swizzled(hashes: list[int]) -> tuple[int, ...]:
    """The hashes with their eight nibbles in reverse order: the trie's sort keys."""
    raw = struct.pack(f"<{len(hashes)}I", *hashes)
    return struct.unpack(f">{len(hashes)}I", raw.translate(_NIBBLE_SWAP))


def _descending(indices: list[int], hashes: dict[int, int]) -> list[int]:
    """``indices`` sorted by the nibble-reversed hash, largest first (stable)."""
    keys = _swizzled([hashes[i] for i in indices])
    ranked = sorted(range(len(keys)), key=keys.__getitem__, reverse=True)
    return [indices[j] for j in ranked]


def _hash_bignum(value: int, h: int) -> int:
    """An integer outside the 60-bit small range: its 64-bit magnitude digits."""
    con = _K10 if value < 0 else _K11
    mag = -value if value < 0 else value
    while True:
        digit = mag & _W64
        h = mix((con + (digit & _M)) & _M, (con + (digit >> 32)) & _M, h)
        mag >>= 64
        if not mag:
            return h


def _is_cons(term: Any) -> bool:
    t = type(term)
    return (t is list and bool(term)) or t is ImproperList


def _name_bytes(atom: Atom) -> bytes:
    return atom.name.encode("utf-8")


def _stand_in(term: Any) -> tuple:
    """A reproducible term standing for a pid, port, reference or fun."""
    t = type(term)
    if t is Pid:
        return (1, _name_bytes(term.node), term.id, term.serial, term.creation)
    if t is Port:
        return (2, _name_bytes(term.node), term.id, term.creation)
    if t is Reference:
        return (3, _name_bytes(term.node), term.creation, term.ids)
    if t is ExportFun:
        return (4, _name_bytes(term.module), _name_bytes(term.function), term.arity)
    return (
        5,
        _name_bytes(term.module),
        term.arity,
        term.old_index,
        term.old_uniq,
        term.index,
        term.uniq,
        _stand_in(term.pid),
        term.free_vars,
    )


def flatmap_sort(pairs: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """``pairs`` sorted by key in map-key order, as OTP keeps maps of up to 32 keys."""
    return sorted(pairs, key=_pair_map_key)


def _pair_map_key(pair: tuple[Any, Any]) -> tuple:
    return map_key_sort_key(pair[0])


def hashmap_sort(
    pairs: Iterable[tuple[Any, Any]], *, atom_index: AtomIndex | None = None
) -> list[tuple[Any, Any]]:
    """``pairs`` in the order OTP 25's ``term_to_binary`` writes a map of over 32 keys.

    ``atom_index`` gives atom-table indices for atom keys (see the module doc); the
    result is exact for keys without atoms, pids, ports, references or funs.
    """
    return _Hasher(atom_index).hashmap_order(list(pairs))


def reproducible_hashmap_sort(pairs: Iterable[tuple[Any, Any]]) -> list[tuple[Any, Any]] | None:
    """``pairs`` in OTP 25's order for a map of over 32 keys, when that order follows
    from the keys alone; ``None`` when a key holds, at any depth, an atom other than
    ``true``/``false`` (``None`` is the atom ``undefined``), a pid, port, reference or
    fun, whose hash depends on the state of the VM that wrote the map.
    """
    try:
        return _Hasher(None, strict=True).hashmap_order(list(pairs))
    except _VmSpecific:
        return None


def canonical_map_order(
    pairs: Iterable[tuple[Any, Any]], *, atom_index: AtomIndex | None = None
) -> list[tuple[Any, Any]]:
    """The pairs of a map in OTP 25's ``MAP_EXT`` order, whatever the map's size."""
    return _Hasher(atom_index).map_order(list(pairs))


def map_hash(key: Any, depth: int = 0, *, atom_index: AtomIndex | None = None) -> int:
    """OTP 25's internal hash of map key ``key`` for trie levels ``8*depth`` on."""
    if depth < 0:
        raise ValueError("depth must be >= 0")
    return _Hasher(atom_index).key_hash(key, depth)
