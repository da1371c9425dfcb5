"""OTP 25's pair order for maps of more than 32 keys (``pyekka.term.maphash``).

Checked three ways: against the golden vectors (the canonical ETF lists the pairs in
the VM's order), against a live OTP 25 VM encoding random large maps, and by
properties of the hash that need no VM.
"""

from __future__ import annotations

import os
import random
import re
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyekka.term.jenkins import (
    GOLDEN,
    LANES_MIN,
    block_hash,
    block_hashes,
    mix,
    word_hashes,
)
from pyekka.term.maphash import (
    MAP_SMALL_LIMIT,
    canonical_map_order,
    flatmap_sort,
    hashmap_sort,
    map_hash,
)
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ExportFun,
    ImproperList,
    Pid,
    Port,
    Reference,
    exact_equal,
)
from tests.vectors import REPO, SKIP_REASON, from_typed, have_vectors, load, records

Pairs = list[tuple[Any, Any]]

# Kinds of typed term whose map hash depends on one VM's private state.
_VM_STATE_KINDS = {"atom", "pid", "port", "ref", "export", "fun"}


# --- helpers -------------------------------------------------------------------------


def _shuffled(pairs: Pairs, seed: int) -> Pairs:
    out = list(pairs)
    random.Random(seed).shuffle(out)
    return out


def _assert_order(got: Pairs, want: Pairs) -> None:
    """Same keys in the same order, compared with Erlang's ``=:=``."""
    assert len(got) == len(want)
    for i, ((gk, _), (wk, _)) in enumerate(zip(got, want, strict=True)):
        assert exact_equal(gk, wk), f"pair {i}: got key {gk!r}, the VM wrote {wk!r}"


def _typed_maps(t: Any) -> Iterator[list]:
    """Every map (as its typed pair list) inside the typed term ``t``, at any depth."""
    stack = [t]
    while stack:
        x = stack.pop()
        if isinstance(x, int):
            continue
        kind = x[0]
        if kind == "map":
            yield x[1]
            for k, v in x[1]:
                stack += [k, v]
        elif kind in ("list", "tuple"):
            stack += x[1]
        elif kind == "improper_list":
            stack += [*x[1], x[2]]
        elif kind == "fun":
            stack += x[1]["free_vars"]


def _typed_kinds(t: Any) -> set[str]:
    kinds: set[str] = set()
    stack = [t]
    while stack:
        x = stack.pop()
        if isinstance(x, int):
            kinds.add("int")
            continue
        kinds.add(x[0])
        if x[0] == "map":
            for k, v in x[1]:
                stack += [k, v]
        elif x[0] in ("list", "tuple"):
            stack += x[1]
        elif x[0] == "improper_list":
            stack += [*x[1], x[2]]
        elif x[0] == "fun":
            stack += x[1]["free_vars"]
    return kinds


def _large_maps(record: dict) -> list[list]:
    return [m for m in _typed_maps(record["term"]) if len(m) > MAP_SMALL_LIMIT]


def _large_map_records() -> list:
    """Vector records holding a map of more than 32 keys somewhere."""
    if not have_vectors():
        return records("etf")  # a single skipped placeholder
    params = []
    for name in ("etf", "etf_decode"):
        for param in records(name):
            record = param.values[0]
            if "term" in record and _large_maps(record):
                params.append(pytest.param(record, id=f"{name}:{record['id']}"))
    return params


# --- golden vectors: keys whose hash needs no VM state ---------------------------------


@pytest.mark.parametrize("record", _large_map_records())
def test_vector_order_of_portable_keys(record: dict) -> None:
    """Keys made of numbers, binaries, lists, tuples and maps: the VM's exact order.

    For vectors whose keys are all portable this is the whole order; in the others
    (atoms, pids, ... among the keys, some ``decode_only``) it is the relative order
    of the portable keys, which the trie fixes just the same.
    """
    checked = 0
    for typed in _large_maps(record):
        portable = [
            (from_typed(k), from_typed(v))
            for k, v in typed
            if not (_typed_kinds(k) & _VM_STATE_KINDS)
        ]
        if len(portable) < 2:
            continue
        _assert_order(hashmap_sort(_shuffled(portable, len(portable))), portable)
        checked += 1
    if not checked:
        pytest.skip("every key of its large maps depends on VM state (atoms, pids, ...)")


# --- golden vectors: atom keys, with the generating VM's atom indices recovered --------

_FAMILY = re.compile(r"^(.*?)(\d+)$")
_FIT_RANGE = 1 << 16  # atom-table indices searched (a fresh OTP 25 VM has ~14,000 atoms)


def _atom_swizzled(limit: int) -> list[int]:
    """Nibble-reversed map hash of the atom with index i, for i < limit."""
    out = []
    for i in range(limit):
        h = map_hash(Atom("a"), atom_index=lambda _name, i=i: i)
        out.append(int(f"{h:08x}"[::-1], 16))
    return out


@pytest.fixture(scope="module")
def atom_hash_table() -> list[int]:
    return _atom_swizzled(_FIT_RANGE + 1100)


def _fit_atom_indices(typed_pairs: list, table: list[int]) -> dict[str, int]:
    """Recover the generating VM's atom indices for the atom keys of one large map.

    Assumes what the vector generator did: atoms named ``<prefix><number>`` were
    created one after another in increasing number, so their indices are
    consecutive. The hashes must then be strictly decreasing (after nibble
    reversal) in the written order; the test requires exactly one start index in
    ``[0, 65536)`` to satisfy that, then checks the whole map with it.
    """
    written = [k[1] for k, _ in typed_pairs if isinstance(k, list) and k[0] == "atom"]
    families: dict[str, list[tuple[int, str]]] = {}
    for name in written:
        m = _FAMILY.match(name)
        assert m, f"atom key {name!r} has no numeric suffix"
        families.setdefault(m.group(1), []).append((int(m.group(2)), name))
    indices: dict[str, int] = {}
    for prefix, members in families.items():
        offset = {name: i for i, (_, name) in enumerate(sorted(members))}
        seq = [offset[n] for n in written if n in offset]
        fits = []
        for base in range(_FIT_RANGE):
            prev = table[base + seq[0]]
            for off in seq[1:]:
                cur = table[base + off]
                if cur >= prev:
                    break
                prev = cur
            else:
                fits.append(base)
        assert len(fits) == 1, f"atoms {prefix}N: start indices fitting the order: {fits[:10]}"
        indices.update({name: fits[0] + off for name, off in offset.items()})
    return indices


_ATOM_KEY_VECTORS = [
    "edge-map_33_atom_keys_hashmap",
    "edge-map_1000_mixed_keys",
    "edge-map_map_of_big_maps",
]


@pytest.fixture(scope="module")
def etf_records() -> dict[str, dict]:
    if not have_vectors():
        pytest.skip(SKIP_REASON)
    return {r["id"]: r for r in load("etf")}


@pytest.mark.parametrize("rid", _ATOM_KEY_VECTORS)
def test_vector_order_of_atom_keys(
    rid: str, etf_records: dict[str, dict], atom_hash_table: list[int]
) -> None:
    """With the atom indices of the generating VM, the whole order is the VM's."""
    record = etf_records[rid]
    assert not record.get("decode_only")
    for typed in _large_maps(record):
        indices = _fit_atom_indices(typed, atom_hash_table)
        pairs = [(from_typed(k), from_typed(v)) for k, v in typed]
        got = hashmap_sort(_shuffled(pairs, 7), atom_index=indices.get)
        _assert_order(got, pairs)


def test_vector_atom_indices_agree(
    etf_records: dict[str, dict], atom_hash_table: list[int]
) -> None:
    """The same atoms, fitted in two different vectors of one VM, get the same indices."""
    alone = _large_maps(etf_records["edge-map_33_atom_keys_hashmap"])[0]
    nested = _large_maps(etf_records["edge-map_map_of_big_maps"])[0]
    assert _fit_atom_indices(alone, atom_hash_table) == _fit_atom_indices(nested, atom_hash_table)


# --- the benchmark map -------------------------------------------------------------------


def test_bench_map_10k_order_and_speed() -> None:
    """``map_10k`` (10,000 binary keys): exact order, in well under a second."""
    if not have_vectors():
        pytest.skip(SKIP_REASON)
    (record,) = [r for r in load("bench_corpus") if r["name"] == "map_10k"]
    etf = bytes.fromhex(record["etf"])
    # the keys are <<"client-NNNNN">>: BINARY_EXT, length 12
    keys = [m.group(1) for m in re.finditer(rb"m\x00\x00\x00\x0c(client-\d{5})", etf)]
    assert len(keys) == 10_000 == struct.unpack(">I", etf[2:6])[0]
    pairs = [(k, None) for k in keys]
    shuffled = _shuffled(pairs, 10_000)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        got = hashmap_sort(shuffled)
        best = min(best, time.perf_counter() - start)
    assert got == pairs
    assert best < 1.0, f"10,000 keys took {best:.3f} s"


# --- properties of the hash --------------------------------------------------------------

# Small integers whose depth-0 map hashes are equal (found by search): the trie
# separates them with the depth-1 salted hash.
_COLLIDING_INTS = [(40660, 59671), (22575, 119693), (121236, 167527)]


@pytest.mark.parametrize(("a", "b"), _COLLIDING_INTS)
def test_colliding_keys_use_salted_hash(a: int, b: int) -> None:
    assert map_hash(a) == map_hash(b)
    assert map_hash(a, 1) != map_hash(b, 1)
    fill = [(i, i) for i in range(1000, 1040)]
    got = [k for k, _ in hashmap_sort([(a, 0), *fill, (b, 0)])]
    ia, ib = got.index(a), got.index(b)
    assert abs(ia - ib) == 1, "equal hashes must be neighbours"
    first_by_depth1 = a if _swizzle(map_hash(a, 1)) > _swizzle(map_hash(b, 1)) else b
    assert got[min(ia, ib)] == first_by_depth1


def _swizzle(h: int) -> int:
    return int(f"{h:08x}"[::-1], 16)


def test_order_is_descending_reversed_nibbles() -> None:
    pairs = [(i * 7919, None) for i in range(200)]
    keys = [_swizzle(map_hash(k)) for k, _ in hashmap_sort(pairs)]
    assert keys == sorted(keys, reverse=True)


def test_lanes_hash_like_one_at_a_time() -> None:
    """The Jenkins hash of many inputs at once (one big integer, one lane each)."""
    rng = random.Random(11)
    for size in [*range(0, 50), 255]:
        items = [rng.randbytes(size) for _ in range(LANES_MIN + size % 5)]
        items[0] = b"\xff" * size  # carries and borrows at every position
        for seed in (0, 0xFFFFFFFF, rng.getrandbits(32)):
            assert block_hashes(items, size, seed) == [block_hash(x, seed) for x in items]
    words = [0, (1 << 64) - 1, *(rng.getrandbits(64) for _ in range(20))]
    for add, c in ((GOLDEN, 0), (0xFFFFFFFF, 0xFFFFFFFF), (0, 12345)):
        want = [mix(add + (w & 0xFFFFFFFF), add + (w >> 32), c) for w in words]
        assert word_hashes(words, add, c) == want


def test_keys_hashed_together_hash_as_alone() -> None:
    """Many keys of a kind are hashed at once (in the lanes of one big integer):
    the order must be the one their hashes, taken one key at a time, give."""
    rng = random.Random(5)
    keys: list[Any] = []
    for size in [*range(0, 41), 63, 64, 100]:
        # group sizes around the point where keys start to be hashed together
        keys += [rng.randbytes(size) for _ in range(1 + size % 7)]
    keys += ["é" * n for n in range(1, 6)] + ["x" * 12, "y" * 12, "z" * 12, "w" * 12]
    small = [0, -1, 1, (1 << 59) - 1, -(1 << 59), 1 << 59, -(1 << 59) - 1, 1 << 64]
    keys += small + [rng.randrange(-(1 << 62), 1 << 62) for _ in range(30)]
    keys += [True, False, Atom("a"), Atom("b"), Atom("c"), 1.5, (1, b"x")]
    index = {"a": 20_000, "b": 20_001, "c": 3}.get
    pairs = [(k, None) for k in keys]
    want = sorted(
        (_swizzle(map_hash(k, atom_index=index)) for k in keys),
        reverse=True,
    )
    for seed in range(3):
        got = hashmap_sort(_shuffled(pairs, seed), atom_index=index)
        assert [_swizzle(map_hash(k, atom_index=index)) for k, _ in got] == want
    # only binaries, all of one length: the fastest path
    same = [(rng.randbytes(12), None) for _ in range(50)]
    got = [_swizzle(map_hash(k)) for k, _ in hashmap_sort(same)]
    assert got == sorted(got, reverse=True)


def test_equal_terms_hash_alike() -> None:
    assert map_hash(-0.0) == map_hash(0.0)  # one key in OTP 25
    assert map_hash(1) != map_hash(1.0)
    assert map_hash("hé") == map_hash("hé".encode()) == map_hash(bytearray("hé".encode()))
    assert map_hash(memoryview(b"abc")) == map_hash(b"abc")
    assert map_hash(True) == map_hash(Atom("true"))
    assert map_hash(False) == map_hash(Atom("false"))
    assert map_hash(None) == map_hash(Atom("undefined"))
    assert map_hash(BitString(b"\xff", 8)) == map_hash(b"\xff")
    assert map_hash({1: 2}) == map_hash(ErlMap([(1, 2)]))
    big = {i: -i for i in range(40)}
    assert map_hash(big) == map_hash(dict(reversed(big.items())))


def test_distinct_terms_hash_apart() -> None:
    terms = [
        [],
        [0],
        [0, 0],
        ImproperList([0], 0),
        (0,),
        (),
        b"",
        b"\0",
        BitString(b"\x00", 1),
        BitString(b"\x80", 1),
        0,
        1 << 59,
        -(1 << 59),
        (1 << 59) - 1,
        -(1 << 59) - 1,
        1 << 64,
        -(1 << 64),
        0.5,
        {},
        {0: 0},
    ]
    hashes = [map_hash(t) for t in terms]
    assert len(set(hashes)) == len(terms)


def test_atom_index_decides_atom_hash() -> None:
    index = {"alpha": 20_000, "beta": 20_001}.get
    assert map_hash(Atom("alpha"), atom_index=index) == map_hash(
        Atom("other"), atom_index=lambda _: 20_000
    )
    assert map_hash(Atom("alpha"), atom_index=index) != map_hash(Atom("beta"), atom_index=index)
    # true and false are the first two atoms of every VM, whatever the callback says
    assert map_hash(True, atom_index=lambda _: 5) == map_hash(Atom("x"), atom_index=lambda _: 1)


def test_deep_terms_do_not_recurse() -> None:
    deep: Any = []
    for _ in range(50_000):
        deep = [deep]
    nested: Any = ()
    for _ in range(50_000):
        nested = (nested, 1)
    assert map_hash(deep) != map_hash(nested)


def test_non_terms_are_rejected() -> None:
    with pytest.raises(TypeError):
        map_hash(object())
    with pytest.raises(TypeError):
        hashmap_sort([((1, object()), 1)])
    with pytest.raises(ValueError):
        map_hash(1, -1)


def _stand_in_keys() -> list[Any]:
    node = Atom("a@h")
    return (
        [Pid(node, i, 0, 1) for i in range(20)]
        + [Port(node, i, 2) for i in range(20)]
        + [Reference(Atom("b@h"), 3, (i, 2, 3)) for i in range(20)]
        + [ExportFun(Atom("m"), Atom("f"), i) for i in range(20)]
    )


def _stand_in_order() -> list[str]:
    return [repr(k) for k, _ in hashmap_sort([(k, 0) for k in _stand_in_keys()])]


def _stand_in_order_in_subprocess(seed: str) -> str:
    code = "import tests.test_maphash as t; print(t._stand_in_order())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": seed},
        check=True,
    )
    return proc.stdout.strip()


def test_stand_in_order_is_deterministic() -> None:
    """Pids, ports, refs and funs get a stand-in order that no hash seed changes."""
    here = _stand_in_order()
    assert len(set(here)) == 80
    assert _stand_in_order_in_subprocess("1") == _stand_in_order_in_subprocess("2") == repr(here)


# --- map-key order of small maps ---------------------------------------------------------


def test_flatmap_sort_is_map_key_order() -> None:
    node = Atom("n@h")
    pairs = [
        (b"bin", 0),
        (BitString(b"\x80", 1), 0),
        ([1, 2], 0),
        (ImproperList([1], 2), 0),
        ([1], 0),
        ([], 0),
        ({1: 1}, 0),
        ((1, 2), 0),
        ((3,), 0),
        (Pid(node, 1, 0, 1), 0),
        (Port(node, 1, 1), 0),
        (ExportFun(Atom("m"), Atom("f"), 1), 0),
        (Reference(node, 1, (1, 2, 3)), 0),
        (Atom("b"), 0),
        (True, 0),
        (Atom("a"), 0),
        (1.5, 0),
        (-1.0, 0),
        (2, 0),
        (1, 0),
        (1 << 70, 0),
    ]
    want = [
        1,
        2,
        1 << 70,
        -1.0,
        1.5,
        Atom("a"),
        Atom("b"),
        True,
        Reference(node, 1, (1, 2, 3)),
        ExportFun(Atom("m"), Atom("f"), 1),
        Port(node, 1, 1),
        Pid(node, 1, 0, 1),
        (3,),
        (1, 2),
        {1: 1},
        [],
        ImproperList([1], 2),
        [1],
        [1, 2],
        b"bin",
        BitString(b"\x80", 1),
    ]
    got = [k for k, _ in flatmap_sort(_shuffled(pairs, 3))]
    assert len(got) == len(want)
    assert all(exact_equal(g, w) for g, w in zip(got, want, strict=True)), got


def test_canonical_map_order_switches_at_33_keys() -> None:
    small = [(i, i) for i in range(MAP_SMALL_LIMIT)]
    assert canonical_map_order(_shuffled(small, 1)) == small
    large = [(i, i) for i in range(MAP_SMALL_LIMIT + 1)]
    assert canonical_map_order(_shuffled(large, 1)) == hashmap_sort(large)
    assert canonical_map_order(large) != large


# --- live OTP 25 ---------------------------------------------------------------------------

_MARK = "@@MARK:{:05d}@@"
_MARK_RE = re.compile(rb"m\x00\x00\x00\x0e@@MARK:(\d{5})@@")


class _Keys:
    """Random map keys and their Erlang source text (atoms made fresh in the VM)."""

    def __init__(self, rng: random.Random, atom_prefix: str) -> None:
        self.rng = rng
        self.atom_prefix = atom_prefix
        self.atom_names: list[str] = []

    def fresh_atom(self) -> Atom:
        name = f"{self.atom_prefix}{len(self.atom_names)}"
        self.atom_names.append(name)
        return Atom(name)

    def integer(self) -> int:
        r = self.rng
        edge = r.choice([0, 255, 256, 1 << 27, 1 << 31, 1 << 32, 1 << 59, 1 << 63, 1 << 64])
        return r.choice(
            [
                r.randrange(-1000, 1000),
                r.randrange(-(1 << 62), 1 << 62),
                edge + r.randrange(-2, 2),
                -edge + r.randrange(-2, 2),
                r.randrange(-(1 << 300), 1 << 300),
            ]
        )

    def float(self) -> float:
        r = self.rng
        while True:
            bits = r.getrandbits(64)
            value = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
            choice = r.choice([value, r.uniform(-1e6, 1e6), float(r.randrange(-99, 99)), 5e-324])
            if choice == choice and abs(choice) != float("inf") and choice != 0.0:
                return choice

    def binary(self) -> bytes:
        return self.rng.randbytes(self.rng.choice([0, 1, 3, 4, 5, 11, 12, 13, 23, 24, 25, 40]))

    def bitstring(self) -> BitString:
        data = self.rng.randbytes(self.rng.randrange(1, 15))
        return BitString(data, self.rng.randrange(1, 8))

    def scalar(self) -> Any:
        pick = self.rng.randrange(9)
        if pick == 0:
            return self.float()
        if pick == 1:
            return self.binary()
        if pick == 2:
            return self.bitstring()
        if pick == 3:
            return self.fresh_atom()
        if pick == 4:
            return self.rng.choice([True, False])
        return self.integer()

    def compound(self, depth: int = 0) -> Any:
        r = self.rng
        if depth > 2:
            return self.scalar()
        pick = r.randrange(8)
        if pick == 0:  # a byte string, packed four bytes to a word by the hash
            return [r.randrange(256) for _ in range(r.randrange(0, 10))]
        if pick == 1:  # bytes around other elements
            return [r.randrange(256), self.scalar(), *r.randbytes(r.randrange(0, 6))]
        if pick == 2:
            items = [self.compound(depth + 1) for _ in range(r.randrange(1, 4))]
            return ImproperList(items, r.choice([self.scalar(), (), b"t"]))
        if pick == 3:
            return [self.compound(depth + 1) for _ in range(r.randrange(0, 4))]
        if pick == 4:
            return tuple(self.compound(depth + 1) for _ in range(r.randrange(0, 4)))
        if pick == 5:
            return {self.scalar(): self.compound(depth + 1) for _ in range(r.randrange(0, 5))}
        return self.scalar()


def _erl(term: Any) -> str:
    """Erlang source for ``term`` (atoms by ``list_to_atom``: made after indexing)."""
    t = type(term)
    if t is bool:
        return "true" if term else "false"
    if t is int:
        return str(term)
    if t is float:
        bits = struct.unpack(">Q", struct.pack(">d", term))[0]
        return f"(fun(<<F:64/float>>) -> F end)(<<16#{bits:016x}:64>>)"
    if t is bytes:
        return "<<" + ",".join(str(b) for b in term) + ">>"
    if t is BitString:
        last = term.data[-1] >> (8 - term.bits)
        return "<<" + "".join(f"{b}," for b in term.data[:-1]) + f"{last}:{term.bits}>>"
    if t is Atom:
        return f'list_to_atom("{term.name}")'
    if t is tuple:
        return "{" + ",".join(_erl(x) for x in term) + "}"
    if t is list:
        return "[" + ",".join(_erl(x) for x in term) + "]"
    if t is ImproperList:
        return "[" + ",".join(_erl(x) for x in term.items) + "|" + _erl(term.tail) + "]"
    if t is dict:
        return "#{" + ",".join(f"{_erl(k)} => {_erl(v)}" for k, v in term.items()) + "}"
    raise TypeError(t)


def _random_large_maps(seed: int, atom_prefix: str) -> tuple[_Keys, list[Pairs]]:
    rng = random.Random(seed)
    keys = _Keys(rng, atom_prefix)
    maps: list[Pairs] = []
    makers: list[Callable[[], Any]] = [keys.integer, keys.float, keys.binary, keys.compound]
    for size in (40, 300, 700):
        seen: set[str] = set()
        pairs: Pairs = []

        def add(key: Any, seen: set[str] = seen, pairs: Pairs = pairs) -> None:
            text = _erl(key)
            if text not in seen:
                seen.add(text)
                pairs.append((key, _MARK.format(len(pairs))))

        for a, b in _COLLIDING_INTS:
            add(a)
            add(b)
        add(True)
        add(False)
        add({i: keys.binary() for i in range(40)})  # a large map as a key
        while len(pairs) < size:
            add(rng.choice([*makers, keys.fresh_atom, keys.bitstring])())
        maps.append(pairs)
    return keys, maps


def _live_expr(atom_names: list[str], maps: list[Pairs]) -> str:
    names = "[" + ",".join(f'"{n}"' for n in atom_names) + "]"
    bodies = []
    for pairs in maps:
        items = ",".join(f'{{{_erl(k)},<<"{v}">>}}' for k, v in pairs)
        bodies.append(f"maps:from_list([{items}])")
    return (
        f"Idx = [begin B = erlang:system_info(atom_count), _ = list_to_atom(N), "
        f"{{N, B, erlang:system_info(atom_count)}} end || N <- {names}], "
        'lists:foreach(fun({N, B, A}) -> io:format("IDX ~s ~b ~b~n", [N, B, A]) end, Idx), '
        f"Maps = [{','.join(bodies)}], "
        'lists:foreach(fun(M) -> io:format("ETF ~s~n", '
        "[binary:encode_hex(term_to_binary(M, [{minor_version, 2}]))]) end, Maps)"
    )


@pytest.mark.otp
def test_live_vm_order(otp: Any) -> None:
    """Random large maps encoded by a real OTP 25 VM come out in hashmap_sort order.

    Keys: integers (small, 60-bit edges, bignums), floats, binaries, bitstrings,
    byte strings, mixed and improper lists, tuples, small maps and a 40-key map,
    colliding integers, ``true``/``false`` and atoms created fresh in the VM, whose
    atom-table indices the VM reports (``atom_count`` before and after each).
    """
    if otp.release != "25":
        pytest.skip(f"OTP {otp.release} hashes map keys unlike OTP 25, the canonical target")
    prefix = f"pyekka_mh_{random.randrange(1 << 32):08x}_"
    keys, maps = _random_large_maps(20250525, prefix)
    expr = _live_expr(keys.atom_names, maps)
    assert len(expr) < 120_000, "one -eval argument must stay under the kernel's limit"
    out = otp.eval_text(expr)
    indices: dict[str, int] = {}
    written: list[bytes] = []
    for line in out.splitlines():
        if line.startswith("IDX "):
            _, name, before, after = line.split()
            assert int(after) == int(before) + 1, f"atom {name} was not made alone"
            indices[name] = int(before)
        elif line.startswith("ETF "):
            written.append(bytes.fromhex(line[4:]))
    assert sorted(indices) == sorted(keys.atom_names)
    assert len(written) == len(maps)
    for pairs, etf in zip(maps, written, strict=True):
        vm_order = [int(m.group(1)) for m in _MARK_RE.finditer(etf)]
        assert sorted(vm_order) == list(range(len(pairs)))
        got = hashmap_sort(_shuffled(pairs, len(pairs)), atom_index=indices.get)
        _assert_order(got, [pairs[i] for i in vm_order])
