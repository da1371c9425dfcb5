"""Erlang term order: ``compare``, ``term_sort_key`` and ``map_key_sort_key``.

Ground truth: the map-key order of every small map in the golden vectors, and a
live OTP 25 VM (``erl`` on PATH) that sorts and compares random terms. This module
also holds the small VM driver (:class:`ErlOracle`) and the random term generator
that ``test_phash2`` reuses.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import selectors
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyekka.term import binary_to_term, term_to_binary
from pyekka.term.order import compare, exact_compare, map_key_sort_key, term_sort_key
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
    exact_equal,
    map_from_pairs,
)
from tests.vectors import from_typed, load, requires_vectors

SMALL_MAP_MAX = 32

# --- hand-made cases ----------------------------------------------------------------

A, B = Atom("a@h"), Atom("b@h")
UNIQ = bytes(16)
CREATOR = Pid(A, 1, 0, 0)


def local_fun(module: str, index: int, old_uniq: int, *free: Any, arity: int = 0) -> Fun:
    return Fun(Atom(module), arity, index, old_uniq, index, UNIQ, CREATOR, free)


# (smaller, larger) pairs; each also goes through the live VM in ``test_vm_compare``.
ORDERED_PAIRS: list[tuple[Any, Any]] = [
    # one of each type, in term order
    (10**30, Atom("")),
    (Atom("zzz"), Reference(A, 0, (0, 0, 0))),
    (Reference(B, 9, (9, 9, 9)), local_fun("zz", 0, 0)),
    (local_fun("zz", 9, 9), ExportFun(Atom("a"), Atom("a"), 0)),
    (ExportFun(Atom("z"), Atom("z"), 255), Port(A, 0, 0)),
    (Port(B, 9, 9), Pid(A, 0, 0, 0)),
    (Pid(B, 9, 9, 9), ()),
    ((1, 2, 3), {}),
    ({Atom("k"): 1}, []),
    ([], [0]),
    ([1, 2], b""),
    # numbers: exact, whatever the sizes
    (2**53, float(2**53 + 2)),
    (float(2**53), 2**53 + 1),
    (-(2**53) - 1, -float(2**53)),
    (1.0e308, 2**1024),
    (-(2**1024), -1.0e308),
    (1, 1.5),
    (-0.5, 0),
    # atoms by code point
    (Atom("a"), Atom("ab")),
    (Atom("Z"), Atom("a")),
    (Atom("ÿ"), Atom("Ā")),
    (False, True),
    (True, None),  # true < undefined
    # pids: serial, id, node, creation
    (Pid(A, 2, 1, 1), Pid(A, 1, 2, 1)),
    (Pid(B, 1, 1, 1), Pid(A, 2, 1, 1)),
    (Pid(B, 1, 1, 1), Pid(A, 1, 2, 1)),
    (Pid(A, 1, 1, 2), Pid(A, 2, 1, 1)),
    (Pid(A, 1, 1, 2), Pid(B, 1, 1, 1)),
    (Pid(A, 1, 1, 1), Pid(A, 1, 1, 2)),
    # ports: node, creation, id
    (Port(A, 2, 1), Port(B, 1, 1)),
    (Port(A, 2, 1), Port(A, 1, 2)),
    (Port(A, 2, 1), Port(A, 2**40, 1)),
    # references: node, creation, then words from the most significant
    (Reference(A, 1, (2, 2, 2)), Reference(B, 1, (1, 1, 1))),
    (Reference(A, 1, (2, 2, 2)), Reference(A, 2, (1, 1, 1))),
    (Reference(A, 1, (2, 1, 1)), Reference(A, 1, (1, 2, 1))),
    (Reference(A, 1, (2, 2, 1)), Reference(A, 1, (1, 1, 2))),
    (Reference(A, 1, (9,)), Reference(A, 1, (5, 1))),
    (Reference(A, 1, (1, 2, 3)), Reference(A, 1, (1, 2, 3, 4, 5))),
    # export funs: module, function, arity
    (ExportFun(Atom("erlang"), Atom("abs"), 1), ExportFun(Atom("lists"), Atom("map"), 2)),
    (ExportFun(Atom("a"), Atom("b"), 3), ExportFun(Atom("a"), Atom("c"), 1)),
    (ExportFun(Atom("a"), Atom("b"), 2), ExportFun(Atom("a"), Atom("b"), 3)),
    # local funs: module, index, old uniq, free variable count, free variables
    (local_fun("aa", 9, 9), local_fun("zz", 0, 0)),
    (local_fun("zz", 2, 8), local_fun("zz", 3, 7)),
    (local_fun("zz", 3, 6), local_fun("zz", 3, 7, Atom("a"))),
    (local_fun("zz", 3, 7, Atom("a")), local_fun("zz", 3, 7, Atom("b"))),
    (local_fun("zz", 3, 7, Atom("z")), local_fun("zz", 3, 7, Atom("a"), Atom("a"))),
    (local_fun("zz", 3, 7, arity=1), local_fun("zz", 3, 8, arity=0)),
    # tuples: size first
    ((Atom("z"),), (0, 0)),
    ((1, Atom("a")), (1, Atom("b"))),
    # maps: size, keys (integers before floats), values in key order
    ({Atom("z"): 0}, {0: 0, 1: 0}),
    ({1: Atom("a")}, {1.0: Atom("a")}),
    ({2: Atom("a")}, {1.0: Atom("a")}),
    ({Atom("a"): 1}, {Atom("b"): 0}),
    ({Atom("a"): 1, Atom("b"): 2}, {Atom("a"): 2, Atom("b"): 1}),
    ({1: 2}, {1: 2.5}),
    # lists: elements, then tails
    ([1, 2], [1, 2, 3]),
    ([1, 2, 3], [1, 3]),
    (ImproperList([1], 2), [1, 2]),
    (ImproperList([1], Atom("a")), [1, 0]),
    ([1, 0], ImproperList([1], b"")),
    ([0], ImproperList([0], b"")),
    # bitstrings: bits, then length
    (b"", BitString(b"\x00", 1)),
    (BitString(b"\x80", 1), b"\x80"),
    (b"\x80", BitString(b"\x80\x00", 1)),
    (BitString(b"\x7f\xfe", 7), b"\x80"),
    (b"ab", "abc"),
    ("é", b"\xc3\xaa"),
]

EQUAL_PAIRS: list[tuple[Any, Any]] = [
    (1, 1.0),
    (0.0, -0.0),
    (2**53, float(2**53)),
    (-(2**70), -float(2**70)),
    (Atom("true"), True),
    (Atom("undefined"), None),
    ("abc", b"abc"),
    (bytearray(b"x"), b"x"),
    (BitString(b"ab", 8), b"ab"),
    (Reference(A, 1, (5, 0, 0)), Reference(A, 1, (5,))),
    ((1, [2.0]), (1.0, [2])),
    ({1: 2}, {1: 2.0}),
    ({1: Atom("x"), Atom("k"): 2}, ErlMap([(Atom("k"), 2), (1, Atom("x"))])),
    (ImproperList([1], ImproperList([2], 3)), ImproperList([1, 2], 3)),
    # funs that differ only in what the VM's fun table does not key on
    (local_fun("zz", 3, 7, arity=0), local_fun("zz", 3, 7, arity=2)),
]


@pytest.mark.parametrize(("small", "large"), ORDERED_PAIRS)
def test_ordered_pairs(small: Any, large: Any) -> None:
    assert compare(small, large) == -1
    assert compare(large, small) == 1
    assert term_sort_key(small) < term_sort_key(large)
    assert not term_sort_key(large) < term_sort_key(small)


@pytest.mark.parametrize(("a", "b"), EQUAL_PAIRS)
def test_equal_pairs(a: Any, b: Any) -> None:
    assert compare(a, b) == 0
    assert compare(b, a) == 0
    assert term_sort_key(a) == term_sort_key(b)


def test_exact_order_puts_integers_before_floats() -> None:
    assert exact_compare(1, 1.0) == -1
    assert exact_compare(2**80, 0.5) == -1
    assert exact_compare(1.5, 1.0) == 1
    assert exact_compare((1.0,), (2,)) == 1  # at any depth
    assert exact_compare([{1: 0}], [{1.0: 0}]) == -1
    assert exact_compare(0.0, -0.0) == 0  # OTP 25: the same map key
    assert compare((1.0,), (2,)) == -1
    keys = [2.5, Atom("a"), 3, 1.0, -7, b"x", (1,), 2**70]
    expected = [-7, 3, 2**70, 1.0, 2.5, Atom("a"), (1,), b"x"]
    assert exact_equal(sorted(keys, key=map_key_sort_key), expected)


def test_sort_is_stable_for_equal_terms() -> None:
    values = [1.0, Atom("a"), 1, 0, -0.0, 0.0, 1]
    got = sorted(values, key=term_sort_key)
    assert [repr(t) for t in got] == ["0", "-0.0", "0.0", "1.0", "1", "1", "Atom('a')"]


def test_deep_terms_do_not_recurse() -> None:
    depth = 100_000
    a: Any = []
    a2: Any = []
    b: Any = []
    for _ in range(depth):
        a = [a]
        a2 = [a2]
        b = (b,)
    c: Any = 1
    d: Any = 1.0
    for _ in range(depth):
        c = (c,)
        d = (d,)
    assert compare(a, a2) == 0  # equal, not identical: walks all the way down
    assert compare(a, b) == 1  # list > tuple, decided at the top
    assert compare(c, d) == 0
    assert exact_compare(c, d) == -1
    e: Any = [0]
    f: Any = [1]
    for _ in range(depth):
        e = [e, 1]
        f = [f, 0]
    assert compare(e, f) == -1
    assert sorted([f, e], key=term_sort_key)[0] is e


def test_unsupported_values_raise() -> None:
    with pytest.raises(TypeError):
        compare(object(), 1)
    with pytest.raises(TypeError):
        term_sort_key({1, 2})
    with pytest.raises(TypeError):
        map_key_sort_key(object())


def test_subclasses_are_their_base_types() -> None:
    class MyInt(int):
        pass

    class MyTuple(tuple):
        pass

    assert compare(MyInt(3), 3) == 0
    assert compare(MyTuple((1, 2)), (1, 2)) == 0
    assert term_sort_key(MyInt(3)) == term_sort_key(3)


# --- golden vectors: the map-key order of the VM's small maps ------------------------


def _typed_maps(typed: Any) -> Iterator[list]:
    """The pair lists of every map inside a typed vector term."""
    stack = [typed]
    while stack:
        t = stack.pop()
        if isinstance(t, int):
            continue
        kind = t[0]
        if kind == "map":
            yield t[1]
            for k, v in t[1]:
                stack += [k, v]
        elif kind in ("list", "tuple"):
            stack.extend(t[1])
        elif kind == "improper_list":
            stack.extend(t[1])
            stack.append(t[2])
        elif kind == "fun":
            stack.extend(t[1]["free_vars"])


@requires_vectors
def test_vector_small_maps_are_in_map_key_order() -> None:
    rng = random.Random(25)
    checked = 0
    for name in ("etf", "phash2"):
        for record in load(name):
            for pairs in _typed_maps(record["term"]):
                if not 2 <= len(pairs) <= SMALL_MAP_MAX:
                    continue
                keys = [from_typed(k) for k, _ in pairs]
                shuffled = keys[:]
                rng.shuffle(shuffled)
                got = sorted(shuffled, key=map_key_sort_key)
                assert all(exact_equal(x, y) for x, y in zip(got, keys, strict=True)), (
                    record["id"],
                    record["erl"][:200],
                )
                # The same order through the comparison function.
                for x, y in itertools.pairwise(keys):
                    assert exact_compare(x, y) == -1, (record["id"], x, y)
                checked += 1
    assert checked > 300  # the vectors hold a few hundred such maps


# --- properties ----------------------------------------------------------------------

_atoms = st.sampled_from(["", "a", "b", "ab", "true", "undefined", "é", "ÿ", "Ā", "日"]).map(Atom)
_nodes = st.sampled_from([A, B])
_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, -(2**53) - 1, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, float(2**53), 1.5]),
    _atoms,
    st.booleans(),
    st.none(),
    st.binary(max_size=4),
    st.builds(BitString, st.binary(min_size=1, max_size=3), st.integers(1, 7)),
    st.text(max_size=3),
    st.builds(Pid, _nodes, st.integers(0, 3), st.integers(0, 3), st.integers(0, 2)),
    st.builds(Port, _nodes, st.integers(0, 2**40), st.integers(0, 2)),
    st.builds(
        Reference,
        _nodes,
        st.integers(0, 2),
        st.lists(st.integers(0, 3), min_size=1, max_size=5).map(tuple),
    ),
    st.builds(ExportFun, _atoms, _atoms, st.integers(0, 3)),
)


def _compounds(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.builds(
            ImproperList,
            st.lists(children, min_size=1, max_size=3),
            children.filter(lambda t: type(t) is not list),
        ),
        st.lists(st.tuples(children, children), max_size=4).map(_distinct_map),
        st.builds(
            lambda m, i, u, free: Fun(Atom(m), 0, i, u, i, UNIQ, CREATOR, free),
            st.sampled_from(["yy", "zz"]),
            st.integers(0, 2),
            st.integers(0, 2),
            st.lists(children, max_size=2),
        ),
    )


def _distinct_map(pairs: list[tuple[Any, Any]]) -> dict | ErlMap:
    kept: list[tuple[Any, Any]] = []
    for k, v in pairs:
        if all(exact_compare(k, k2) != 0 for k2, _ in kept):
            kept.append((k, v))
    return map_from_pairs(kept)


terms = st.recursive(_scalars, _compounds, max_leaves=12)


def _sign(x: Any, y: Any) -> int:
    return (x > y) - (x < y)


@settings(max_examples=300, deadline=None)
@given(a=terms, b=terms, c=terms)
def test_compare_is_a_total_order(a: Any, b: Any, c: Any) -> None:
    for x in (a, b, c):
        assert compare(x, x) == 0
        assert exact_compare(x, x) == 0
    for x, y in ((a, b), (b, c), (a, c)):
        assert compare(x, y) == -compare(y, x)
        assert exact_compare(x, y) == -exact_compare(y, x)
        # the keys order exactly like the comparisons
        assert _sign(term_sort_key(x), term_sort_key(y)) == compare(x, y)
        assert _sign(map_key_sort_key(x), map_key_sort_key(y)) == exact_compare(x, y)
        # exact order refines term order
        if exact_compare(x, y) == 0:
            assert compare(x, y) == 0
        if exact_equal(x, y):
            assert exact_compare(x, y) == 0
    for cmp in (compare, exact_compare):
        if cmp(a, b) <= 0 and cmp(b, c) <= 0:
            assert cmp(a, c) <= 0
        if cmp(a, b) == 0 and cmp(b, c) == 0:
            assert cmp(a, c) == 0


@settings(max_examples=100, deadline=None)
@given(xs=st.lists(terms, max_size=12))
def test_sorted_is_consistent_with_compare(xs: list) -> None:
    ordered = sorted(xs, key=term_sort_key)
    for x, y in itertools.pairwise(ordered):
        assert compare(x, y) <= 0
    by_key = sorted(xs, key=map_key_sort_key)
    for x, y in itertools.pairwise(by_key):
        assert exact_compare(x, y) <= 0


# --- a live OTP 25 VM ----------------------------------------------------------------

_ORACLE_LOOP = r"""
Handle = fun
    (release) -> list_to_binary(erlang:system_info(otp_release));
    ({sort_indices, Ts}) ->
        Ix = lists:zip(Ts, lists:seq(0, length(Ts) - 1)),
        [I || {_, I} <- lists:sort(fun({X, _}, {Y, _}) -> X =< Y end, Ix)];
    ({sort, Ts}) -> lists:sort(Ts);
    ({compare, Pairs}) ->
        [if X < Y -> -1; X == Y -> 0; true -> 1 end || {X, Y} <- Pairs];
    ({map_keys, KeyLists}) -> [maps:keys(maps:from_list([{K, 0} || K <- Ks])) || Ks <- KeyLists];
    ({phash2, Ts}) -> [erlang:phash2(T, 1 bsl 32) || T <- Ts]
end,
Loop = fun Loop() ->
    case io:get_line("") of
        eof -> halt(0);
        {error, _} -> halt(1);
        Line ->
            Path = string:trim(Line),
            {ok, Bin} = file:read_file(Path),
            Reply = try {ok, Handle(binary_to_term(Bin))}
                    catch Class:Reason -> {error, Class, Reason}
                    end,
            ok = file:write_file(Path ++ ".reply", term_to_binary(Reply)),
            io:put_chars("done\n"),
            Loop()
    end
end,
Loop().
"""


class ErlOracle:
    """One ``erl -noshell`` VM answering requests passed through files.

    Python writes ``term_to_binary({Op, Arg})`` to a file and sends its path on a
    line; the VM writes ``{ok, Result}`` (or ``{error, Class, Reason}``) next to it
    and answers ``done``.
    """

    TIMEOUT = 120.0

    def __init__(self, erl: str, workdir: Path) -> None:
        self.workdir = workdir
        self.stderr_path = workdir / "erl.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [erl, "-noshell", "-eval", _ORACLE_LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=workdir,
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        self._count = 0

    def call(self, op: str, arg: Any = None) -> Any:
        """Run one request in the VM and return its result."""
        self._count += 1
        path = self.workdir / f"req{self._count}"
        path.write_bytes(term_to_binary(Atom(op) if arg is None else (Atom(op), arg)))
        assert self.proc.stdin is not None
        self.proc.stdin.write(str(path).encode() + b"\n")
        self.proc.stdin.flush()
        line = self._read_line()
        if line != b"done":
            raise AssertionError(f"erl answered {line!r}; stderr: {self._stderr_text()}")
        reply = binary_to_term(Path(f"{path}.reply").read_bytes())
        if reply[0] != Atom("ok"):
            raise AssertionError(f"erl failed on {op}: {reply!r}")
        return reply[1]

    def _read_line(self) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        data = b""
        while not data.endswith(b"\n"):
            if not self._selector.select(timeout=self.TIMEOUT):
                raise AssertionError(f"erl did not answer in {self.TIMEOUT} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"erl exited: {self._stderr_text()}")
            data += chunk
        return data.strip()

    def _stderr_text(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-2000:]

    def close(self) -> None:
        """End the VM (EOF on its stdin), killing it if it does not go."""
        self._selector.close()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.kill()
            self.proc.wait()
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()


def start_oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErlOracle]:
    """Generator for a module-scoped fixture: an OTP 25 :class:`ErlOracle`."""
    erl = shutil.which("erl")
    if erl is None:
        pytest.skip("erl (Erlang/OTP 25) is not on PATH")
    oracle = ErlOracle(erl, tmp_path_factory.mktemp("erl_oracle"))
    try:
        release = oracle.call("release")
        if release != b"25":
            pytest.skip(f"these expectations are OTP 25's; erl on PATH is OTP {release!r}")
        yield oracle
    finally:
        oracle.close()


@pytest.fixture(scope="module")
def erl_oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErlOracle]:
    yield from start_oracle(tmp_path_factory)


# Random terms aimed at the corners of the order (and of phash2).

NODES = [Atom("a@h"), Atom("b@h"), Atom("ekka1@127.0.0.1"), Atom("é@h"), Atom("日@h")]
EDGE_INTS = [
    0, 1, -1, 255, 256, 2**27 - 1, 2**27, -(2**27), -(2**27) - 1, 2**31, 2**32, 2**53,
    2**53 + 1, -(2**53) - 1, 2**63, 2**64 + 1, -(2**64), 10**30, 2**1023, 2**1024, -(2**1030),
]  # fmt: skip
EDGE_FLOATS = [
    0.0, -0.0, 1.0, 0.5, -2.5, float(2**53), float(2**64), 1e300, -1e300, 5e-324,
    1.7976931348623157e308, 1e-10,
]  # fmt: skip
ATOM_NAMES = [
    "", "a", "b", "ab", "ok", "true", "false", "undefined", "é", "ÿ", "Ā", "日本", "z" * 255,
]  # fmt: skip


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)]) for _ in range(n))


def random_scalar(rng: random.Random) -> Any:
    kind = rng.randrange(15)
    if kind == 0:
        return rng.choice(EDGE_INTS) + rng.choice([0, 0, 1, -1])
    if kind == 1:
        return rng.randint(-(2 ** rng.randrange(1, 90)), 2 ** rng.randrange(1, 90))
    if kind == 2:
        return rng.choice(EDGE_FLOATS)
    if kind == 3:
        value = rng.choice([rng.uniform(-1e6, 1e6), rng.uniform(-10, 10)])
        return float(round(value)) if rng.random() < 0.4 else value
    if kind == 4:
        name = rng.choice(ATOM_NAMES)
        return {"true": True, "false": False, "undefined": None}.get(name, Atom(name))
    if kind == 5:
        return _rand_bytes(rng, rng.choice([0, 1, 2, 3, 5, 12, 13, 30]))
    if kind == 6:
        return BitString(_rand_bytes(rng, rng.randrange(1, 4)), rng.randrange(1, 8))
    if kind == 7:
        return Pid(
            rng.choice(NODES),
            rng.choice([0, 1, 2, 2**15, 2**28 - 1, 2**32 - 1]),
            rng.choice([0, 1, 2, 2**13, 2**32 - 1]),
            rng.choice([0, 1, 3, 2**32 - 1]),
        )
    if kind == 8:
        return Port(
            rng.choice(NODES),
            rng.choice([0, 1, 2**28 - 1, 2**28, 2**40]),
            rng.choice([0, 1, 2**32 - 1]),
        )
    if kind == 9:
        words = [rng.choice([0, 0, 1, 2, 2**18 - 1, 2**32 - 1]) for _ in range(rng.randrange(2, 6))]
        return Reference(rng.choice(NODES), rng.choice([0, 1, 2**32 - 1]), words)
    if kind == 10:
        return ExportFun(
            Atom(rng.choice(["a", "lists", "erlang", "zz", "é"])),
            Atom(rng.choice(["b", "map", "abs", ""])),
            rng.choice([0, 1, 2, 3, 255]),
        )
    if kind == 11:
        return rng.choice(["", "abc", "é", "日本"])
    if kind == 12:
        return [rng.randrange(256) for _ in range(rng.randrange(1, 9))]
    if kind == 13:
        return []
    return ()


def random_term(rng: random.Random, depth: int = 0) -> Any:
    """A random term: scalars of every type and nested lists, tuples, maps, funs."""
    if depth >= 4 or rng.random() < 0.45:
        return random_scalar(rng)
    kind = rng.randrange(7)
    if kind == 0:
        return [random_term(rng, depth + 1) for _ in range(rng.randrange(1, 5))]
    if kind == 1:
        return tuple(random_term(rng, depth + 1) for _ in range(rng.randrange(0, 5)))
    if kind == 2:
        tail = random_term(rng, depth + 1)
        while type(tail) is list:
            tail = random_scalar(rng)
        return ImproperList([random_term(rng, depth + 1) for _ in range(rng.randrange(1, 4))], tail)
    if kind == 3:
        size = rng.choice([0, 1, 2, 3, 5, 33]) if depth == 0 else rng.randrange(0, 4)
        return random_map(rng, size, depth + 1)
    if kind == 4:
        module = rng.choice(["yy", "zz"])
        index = rng.randrange(3)
        old_uniq = rng.randrange(3)
        free = [random_term(rng, depth + 1) for _ in range(rng.randrange(0, 3))]
        return Fun(Atom(module), 0, index, old_uniq, index, UNIQ, CREATOR, free)
    if kind == 5:
        # a near twin of another term: equal, or one part off
        return random_twin(rng, random_term(rng, depth + 1))
    return [random_scalar(rng)] * rng.randrange(1, 4)


def random_map(rng: random.Random, size: int, depth: int) -> dict | ErlMap:
    pairs: list[tuple[Any, Any]] = []
    for _ in range(size * 3):
        if len(pairs) == size:
            break
        key = random_term(rng, depth + 1) if rng.random() < 0.3 else random_scalar(rng)
        if all(exact_compare(key, k) != 0 for k, _ in pairs):
            pairs.append((key, random_term(rng, depth + 1)))
    return map_from_pairs(pairs)


def random_twin(rng: random.Random, term: Any) -> Any:
    t = type(term)
    if t is int and abs(term) < 2**60:
        return float(term) if rng.random() < 0.5 else term + rng.choice([-1, 1])
    if t is float and term.is_integer() and math.isfinite(term):
        return int(term)
    if t is tuple and term:
        return (*term[:-1], random_twin(rng, term[-1]))
    if t is list and term:
        return [*term[:-1], random_twin(rng, term[-1])]
    if t is bytes:
        return term + b"\x00" if rng.random() < 0.5 else term[:-1]
    return term


def random_terms(seed: int, count: int) -> list[Any]:
    rng = random.Random(seed)
    out = [random_term(rng) for _ in range(count)]
    out += [random_twin(rng, rng.choice(out)) for _ in range(count // 4)]
    out += ORDERED_PAIRS[rng.randrange(len(ORDERED_PAIRS))]
    return out


@pytest.mark.otp
def test_vm_sorts_like_term_sort_key(erl_oracle: ErlOracle) -> None:
    terms = random_terms(1, 400)
    # Both sorts are stable, so the permutations must be identical.
    expected = erl_oracle.call("sort_indices", terms)
    got = sorted(range(len(terms)), key=lambda i: term_sort_key(terms[i]))
    assert got == expected
    # lists:sort/1 itself: position by position equal in term order.
    vm_sorted = erl_oracle.call("sort", terms)
    ours = [terms[i] for i in got]
    assert len(vm_sorted) == len(ours)
    for x, y in zip(vm_sorted, ours, strict=True):
        assert compare(x, y) == 0, (x, y)


@pytest.mark.otp
def test_vm_compare(erl_oracle: ErlOracle) -> None:
    terms = random_terms(2, 300)
    rng = random.Random(3)
    pairs = [(rng.choice(terms), rng.choice(terms)) for _ in range(600)]
    pairs += [(t, random_twin(rng, t)) for t in terms]
    pairs += ORDERED_PAIRS + [(b, a) for a, b in ORDERED_PAIRS] + EQUAL_PAIRS
    expected = erl_oracle.call("compare", pairs)
    got = [compare(a, b) for a, b in pairs]
    wrong = [(p, g, e) for p, g, e in zip(pairs, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:5]


def big_map_variants(rng: random.Random, base: dict | ErlMap) -> list[dict | ErlMap]:
    """Maps of the same size as ``base`` with one key or one value changed."""
    pairs = list(base.items())
    out = []
    for _ in range(12):
        i = rng.randrange(len(pairs))
        changed = pairs[:]
        if rng.random() < 0.5:
            changed[i] = (changed[i][0], random_twin(rng, random_scalar(rng)))
        else:
            key = random_scalar(rng)
            if any(exact_compare(key, k) == 0 for k, _ in pairs):
                continue
            changed[i] = (key, changed[i][1])
        out.append(map_from_pairs(changed))
    return out


@pytest.mark.otp
def test_vm_compares_big_maps(erl_oracle: ErlOracle) -> None:
    # Maps of more than 32 keys are hash tries in the VM, compared by another path.
    rng = random.Random(6)
    pairs = []
    for size in (33, 40, 64):
        base = random_map(rng, size, 2)
        assert len(base) == size
        variants = [base, *big_map_variants(rng, base)]
        pairs += [(x, y) for x in variants for y in variants]
    expected = erl_oracle.call("compare", pairs)
    got = [compare(a, b) for a, b in pairs]
    assert got == expected
    assert set(got) == {-1, 0, 1}


@pytest.mark.otp
def test_vm_map_key_order(erl_oracle: ErlOracle) -> None:
    rng = random.Random(4)
    pool = random_terms(5, 300)
    key_lists = [rng.sample(pool, rng.randrange(2, SMALL_MAP_MAX + 1)) for _ in range(150)]
    key_lists += [[1, 1.0, 2, 0.5, -1, -0.5, 2**64, 1e20, Atom("a"), (1,), (1.0,), [1.0], [1]]]
    vm_orders = erl_oracle.call("map_keys", key_lists)
    for vm_keys in vm_orders:
        shuffled = list(vm_keys)
        rng.shuffle(shuffled)
        got = sorted(shuffled, key=map_key_sort_key)
        assert all(exact_equal(x, y) for x, y in zip(got, vm_keys, strict=True)), vm_keys
