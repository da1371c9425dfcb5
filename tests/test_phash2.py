"""``erlang:phash2/1,2`` against the golden vectors and a live OTP 25 VM."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyekka.term import binary_to_term
from pyekka.term.phash2 import atom_hash, phash2, phash2_32
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ImproperList,
    Pid,
    Reference,
)
from tests.test_term_order import ErlOracle, random_terms, start_oracle, terms
from tests.vectors import from_typed, load, records, requires_vectors

EKKA_RANGE = 4294967295  # trunc(math:pow(2, 32) - 1), as ekka calls it
FULL = 1 << 32


def check_ranges(term: Any, h: int, ranges: list[list[int]]) -> None:
    for rng, expected in ranges:
        assert phash2(term, rng) == expected, rng
        # the documented relation with the full hash
        assert expected == (h & (rng - 1) if rng & (rng - 1) == 0 else h % rng)


@pytest.mark.parametrize("record", records("phash2"))
def test_phash2_vectors(record: dict) -> None:
    term = from_typed(record["term"])
    h = phash2_32(term)
    assert h == dict(record["phash2_range"])[FULL]
    assert phash2(term) == record["phash2"]
    assert phash2(term, EKKA_RANGE) == record["phash2_ekka"]
    check_ranges(term, h, record["phash2_range"])


@requires_vectors
def test_phash2_vectors_decoded_from_etf() -> None:
    # The same values when the terms come out of pyekka's own decoder.
    for record in load("phash2"):
        term = binary_to_term(bytes.fromhex(record["etf"]))
        assert phash2(term) == record["phash2"], record["id"]


@requires_vectors
def test_ekka_member_hashes() -> None:
    checked = 0
    for record in load("ekka"):
        if record["type"] != "member_hash":
            continue
        term = (Atom(record["node"]), bytes.fromhex(record["guid"]))
        assert phash2(term, EKKA_RANGE) == record["hash"], record["id"]
        hashed = binary_to_term(bytes.fromhex(record["hashed_term_etf"]))
        assert phash2(hashed, EKKA_RANGE) == record["hash"], record["id"]
        checked += 1
    assert checked


@requires_vectors
def test_ekka_ring_key_and_member_hashes() -> None:
    checked = 0
    for record in load("ekka"):
        if record["type"] != "ring":
            continue
        key = from_typed(record["key_term"])
        assert phash2(key, EKKA_RANGE) == record["key_hash"], record["id"]
        assert (
            phash2(binary_to_term(bytes.fromhex(record["key_etf"])), EKKA_RANGE)
            == (record["key_hash"])
        )
        if record["hash_source"] == "guid":
            for member in record["members"]:
                term = (Atom(member["node"]), bytes.fromhex(member["guid"]))
                assert phash2(term, EKKA_RANGE) == member["hash"], record["id"]
        checked += 1
    assert checked


@requires_vectors
def test_ekka_mcast_cookie_hash() -> None:
    for record in load("ekka"):
        if record["type"] == "mcast":
            assert phash2(Atom(record["cookie"])) == record["cookie_hash"], record["id"]
            # the packet carries that hash as its fourth element
            assert from_typed(record["term"])[3] == phash2(Atom(record["cookie"]))


@requires_vectors
def test_bench_corpus() -> None:
    corpus = load("bench_corpus")
    assert corpus
    for record in corpus:  # records have a name, not an id
        term = binary_to_term(bytes.fromhex(record["etf"]))
        assert phash2(term) == record["phash2"], record["name"]


# --- the Python mapping --------------------------------------------------------------


def test_atom_hash_rule() -> None:
    assert phash2(Atom("")) == 0
    assert phash2(Atom("a")) == 97
    assert phash2(Atom("ab")) == 97 * 16 + 98
    # Characters below 256 count as one Latin-1 byte, others as their UTF-8 bytes.
    assert atom_hash("é") == 0xE9
    assert atom_hash("ÿa") == 0xFF * 16 + 97
    assert atom_hash("Ā") == (0xC4 << 4) + 0x80


def test_python_values_hash_as_the_terms_they_encode_to() -> None:
    assert phash2(True) == phash2(Atom("true"))
    assert phash2(False) == phash2(Atom("false"))
    assert phash2(None) == phash2(Atom("undefined"))
    assert phash2("héllo") == phash2("héllo".encode())
    assert phash2(bytearray(b"abc")) == phash2(b"abc")
    assert phash2(memoryview(b"abc")) == phash2(b"abc")
    assert phash2(BitString(b"abc", 8)) == phash2(b"abc")
    assert phash2((True, None, "x")) == phash2((Atom("true"), Atom("undefined"), b"x"))
    assert phash2({1: 2, 3: 4}) == phash2(ErlMap([(3, 4), (1, 2)]))
    assert phash2(ImproperList([1], ImproperList([2], 3))) == phash2(ImproperList([1, 2], 3))
    assert phash2(1) != phash2(1.0)
    assert phash2(0.0) == phash2(-0.0)


def test_pids_refs_ports_hash_by_number_only() -> None:
    a, b = Atom("a@h"), Atom("b@h")
    assert phash2(Pid(a, 7, 1, 1)) == phash2(Pid(b, 7, 9, 2))
    assert phash2(Pid(a, 7, 1, 1)) != phash2(Pid(a, 8, 1, 1))
    assert phash2(Reference(a, 1, (5, 6, 7))) == phash2(Reference(b, 2, (5, 0)))


def test_range() -> None:
    term = (Atom("lock"), b"resource")
    h = phash2_32(term)
    assert phash2(term) == h & (2**27 - 1)
    assert phash2(term, FULL) == h
    assert phash2(term, 1) == 0
    assert phash2(term, EKKA_RANGE) == h % EKKA_RANGE
    for bad in (0, -1, FULL + 1, 2.0, None.__class__):
        with pytest.raises(ValueError):
            phash2(term, bad)  # type: ignore[arg-type]


def test_not_terms() -> None:
    with pytest.raises(TypeError):
        phash2(object())
    with pytest.raises(TypeError):
        phash2([1, {2, 3}])
    for f in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ValueError):
            phash2((1, f))


def test_deep_terms_do_not_recurse() -> None:
    deep_list: Any = []
    deep_tuple: Any = Atom("x")
    deep_map: Any = 1
    for _ in range(100_000):
        deep_list = [deep_list, 1]
        deep_tuple = (deep_tuple,)
    for _ in range(20_000):
        deep_map = {Atom("k"): deep_map}
    hashes = {phash2(deep_list), phash2(deep_tuple), phash2(deep_map)}
    assert len(hashes) == 3


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(terms, terms), max_size=6), seed=st.integers(0, 2**32))
def test_map_hash_ignores_pair_order(pairs: list, seed: int) -> None:
    shuffled = pairs[:]
    random.Random(seed).shuffle(shuffled)
    assert phash2_32(ErlMap(pairs)) == phash2_32(ErlMap(shuffled))


# --- a live OTP 25 VM ----------------------------------------------------------------


@pytest.fixture(scope="module")
def erl_oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ErlOracle]:
    yield from start_oracle(tmp_path_factory)


def _deep_terms() -> list[Any]:
    nested_list: Any = [b"leaf"]
    nested_tuple: Any = 1.5
    for i in range(3000):
        nested_list = [i % 300, nested_list, Atom("x")]
        nested_tuple = (nested_tuple, i)
    return [nested_list, nested_tuple]


def _sized_terms() -> list[Any]:
    rng = random.Random(7)
    out: list[Any] = []
    for n in (0, 1, 3, 4, 5, 11, 12, 13, 23, 24, 25, 100, 1000, 4099):
        data = bytes(rng.randrange(256) for _ in range(n))
        out += [data, list(data), [*data, Atom("a"), *data], ImproperList([*data, 1], b"t")]
        if n:
            out += [BitString(data, rng.randrange(1, 8)), 256 ** (n % 300) * rng.randrange(1, 99)]
    return out


@pytest.mark.otp
def test_vm_phash2(erl_oracle: ErlOracle) -> None:
    sample = random_terms(11, 500) + _sized_terms() + _deep_terms()
    expected = erl_oracle.call("phash2", sample)
    got = [phash2_32(t) for t in sample]
    wrong = [(t, g, e) for t, g, e in zip(sample, got, expected, strict=True) if g != e]
    assert not wrong, wrong[:3]
