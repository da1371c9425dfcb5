"""Properties of the ETF codec, with Hypothesis.

* Any term survives ``binary_to_term(term_to_binary(t))`` exactly (``=:=``), in every
  minor version and compressed; canonical encoding is a fixed point.
* Bytes that are not a term (random, or real terms flipped, cut, stretched) make
  the decoder raise :class:`DecodeError` and nothing else.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyekka.term.decode import binary_to_term, decode_term
from pyekka.term.encode import encode_term, term_to_binary
from pyekka.term.errors import DecodeError
from pyekka.term.types import Atom, ErlMap, exact_equal
from pyekka.testing.strategies import erlang_terms, leaf_terms, maps
from tests.vectors import have_vectors, load

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(term=erlang_terms(), junk=st.binary(max_size=8))
def test_round_trip(term: Any, junk: bytes) -> None:
    data = term_to_binary(term)
    back = binary_to_term(data)
    assert exact_equal(back, term)
    assert term_to_binary(back) == data  # one canonical encoding per term
    # Without the version byte, inside other bytes, as in a distribution frame.
    body = encode_term(term)
    assert body == data[1:]
    got, end = decode_term(b"\x00" + body + junk, 1)
    assert exact_equal(got, term)
    assert end == 1 + len(body)


@PROPERTY
@given(
    term=erlang_terms(),
    minor=st.sampled_from([0, 1]),
    level=st.one_of(st.just(True), st.integers(0, 9)),
)
def test_round_trip_other_encodings(term: Any, minor: int, level: bool | int) -> None:
    assert exact_equal(binary_to_term(term_to_binary(term, minor_version=minor)), term)
    packed = term_to_binary(term, compressed=level)
    assert exact_equal(binary_to_term(packed), term)
    assert len(packed) <= len(term_to_binary(term))


@PROPERTY
@given(
    pairs=maps(st.one_of(leaf_terms(), st.lists(leaf_terms(), max_size=2)), leaf_terms()).map(
        lambda m: list(m.items())
    )
)
def test_map_bytes_do_not_depend_on_insertion_order(pairs: list) -> None:
    forward, backward = ErlMap(pairs), ErlMap(pairs[::-1])
    assert term_to_binary(forward) == term_to_binary(backward)
    try:
        as_dict = dict(pairs)
    except TypeError:
        return
    if len(as_dict) == len(pairs):
        assert term_to_binary(as_dict) == term_to_binary(forward)
        assert term_to_binary(dict(pairs[::-1])) == term_to_binary(forward)


@PROPERTY
@given(names=st.lists(st.text(max_size=30), max_size=40))
def test_atom_tags_by_minor_version(names: list[str]) -> None:
    term = [Atom(n) for n in names]
    for minor in (0, 1, 2):
        assert exact_equal(
            binary_to_term(term_to_binary(term, minor_version=minor)),
            [True if n == "true" else False if n == "false" else Atom(n) for n in names],
        )


# --- bytes that are not terms --------------------------------------------------------


def only_decode_errors(data: bytes, **opts: Any) -> None:
    """Decode ``data``: a value or a DecodeError with an offset inside it, nothing else."""
    try:
        binary_to_term(data, **opts)
    except DecodeError as err:
        assert 0 <= err.offset <= len(data)


def _vector_seeds() -> list[bytes]:
    if not have_vectors():
        return []
    return [bytes.fromhex(r["etf"]) for r in load("etf") if len(r["etf"]) <= 4000]


VECTOR_SEEDS = _vector_seeds()
SEEDS = st.one_of(
    erlang_terms(max_leaves=10).map(term_to_binary),
    *([st.sampled_from(VECTOR_SEEDS)] if VECTOR_SEEDS else []),
)

MUTATION = st.tuples(
    st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]),
    st.integers(min_value=0, max_value=1 << 16),
    st.integers(min_value=0, max_value=255),
)


def mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, where, byte in mutations:
        i = where % (len(buf) + 1)
        if op == "flip" and i < len(buf):
            buf[i] ^= 1 << (byte & 7)
        elif op == "set" and i < len(buf):
            buf[i] = byte
        elif op == "insert":
            buf[i:i] = bytes((byte,))
        elif op == "delete":
            del buf[i : i + 1 + byte % 4]
        elif op == "truncate":
            del buf[i:]
        elif op == "duplicate":
            buf[i:i] = buf[i : i + 1 + byte % 16]
    return bytes(buf)


@settings(PROPERTY, max_examples=400)
@given(seed=SEEDS, mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_terms_raise_only_decode_errors(seed: bytes, mutations: list) -> None:
    data = mutate(seed, mutations)
    only_decode_errors(data)
    only_decode_errors(data, max_depth=3, max_bignum_bytes=8, max_inflated=64)


@settings(PROPERTY, max_examples=300)
@given(body=st.binary(max_size=64))
def test_random_bytes_raise_only_decode_errors(body: bytes) -> None:
    only_decode_errors(b"\x83" + body)
    only_decode_errors(body)
    try:
        decode_term(body, atom_cache=[Atom("a"), None, Atom("true")])
    except DecodeError as err:
        assert 0 <= err.offset <= len(body)


@PROPERTY
@given(body=st.binary(max_size=64), size=st.integers(0, 200), cut=st.integers(0, 40))
def test_random_compressed_payloads_raise_only_decode_errors(
    body: bytes, size: int, cut: int
) -> None:
    stream = zlib.compress(body)
    only_decode_errors(b"\x83\x50" + struct.pack(">I", size) + stream)
    only_decode_errors(b"\x83\x50" + struct.pack(">I", len(body)) + stream[: len(stream) - cut])
