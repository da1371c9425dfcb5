"""Hostile input: only DecodeError/EncodeError, at the right offset, with bounded memory.

Memory is watched with ``tracemalloc``: a decoder that trusted a declared length
(a 4 GiB tuple, a zlib bomb) would allocate far more than the limits asserted here.
"""

from __future__ import annotations

import math
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, NamedTuple

import pytest

from pyekka.term import decode_leaves
from pyekka.term.decode import DEFAULT_MAX_DEPTH, binary_to_term, decode_term
from pyekka.term.encode import encode_term, term_to_binary
from pyekka.term.errors import DecodeError, EncodeError
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ExportFun,
    Fun,
    Pid,
    Port,
    Reference,
    exact_equal,
)
from tests.vectors import load, requires_vectors

MiB = 1 << 20
NODE = bytes.fromhex("770f656b6b6131403132372e302e302e31")  # 'ekka1@127.0.0.1'


@contextmanager
def allocates_at_most(limit: int) -> Iterator[None]:
    """Fail if the block allocates more than ``limit`` bytes at its peak."""
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= limit, f"peak allocation {peak} bytes, limit {limit}"


def decode_error(data: bytes, **opts: Any) -> DecodeError:
    with pytest.raises(DecodeError) as excinfo:
        binary_to_term(data, **opts)
    return excinfo.value


# --- lengths that lie ----------------------------------------------------------------

U32_MAX = struct.pack(">I", 0xFFFFFFFF)

LYING_LENGTHS = {
    "LARGE_BIG_EXT": b"\x6f" + U32_MAX + b"\x00\x01\x02",
    "SMALL_BIG_EXT": b"\x6e\xff\x00\x01\x02",
    "BINARY_EXT": b"\x6d" + U32_MAX + b"abc",
    "BIT_BINARY_EXT": b"\x4d" + U32_MAX + b"\x03abc",
    "STRING_EXT": b"\x6b\xff\xffabc",
    "LIST_EXT": b"\x6c" + U32_MAX + b"\x61\x01\x6a",
    "LARGE_TUPLE_EXT": b"\x69" + U32_MAX + b"\x61\x01",
    "SMALL_TUPLE_EXT": b"\x68\xff\x61\x01",
    "MAP_EXT": b"\x74" + U32_MAX + b"\x61\x01\x61\x02",
    "ATOM_UTF8_EXT": b"\x76\xff\xffabc",
    "ATOM_EXT": b"\x64\xff\xffabc",
    "SMALL_ATOM_UTF8_EXT": b"\x77\xffabc",
    "NEWER_REFERENCE_EXT": b"\x5a\xff\xff" + NODE + b"\x00" * 8,
    "NEW_FUN_EXT": (
        b"\x70\x00\x00\x00\x00\x00"
        + bytes(16)
        + b"\x00\x00\x00\x00"
        + U32_MAX
        + b"\x77\x01m\x61\x00\x61\x00\x58"
        + NODE
        + bytes(12)
    ),
}


@pytest.mark.parametrize("body", LYING_LENGTHS.values(), ids=LYING_LENGTHS.keys())
def test_declared_length_past_the_input(body: bytes) -> None:
    with allocates_at_most(64 * 1024):
        err = decode_error(b"\x83" + body)
    assert err.offset == 1
    # Nested one level down, the offset moves with it.
    with allocates_at_most(64 * 1024):
        err = decode_error(b"\x83\x68\x02\x61\x07" + body)
    assert err.offset == 5


def test_truncation_messages_say_what_is_missing() -> None:
    err = decode_error(bytes.fromhex("836200ff"))
    assert err.offset == 1
    assert err.reason == "truncated: need 4 bytes for INTEGER_EXT, 2 left"
    err = decode_error(bytes.fromhex("836802610161"))
    assert err.offset == 5
    assert err.reason == "truncated: need 1 bytes for SMALL_INTEGER_EXT, 0 left"
    err = decode_error(bytes.fromhex("836802"))
    assert err.offset == 1
    assert err.reason == "SMALL_TUPLE_EXT declares 2 elements but only 0 bytes remain"
    err = decode_error(bytes.fromhex("83"))
    assert err.offset == 1
    assert "term should start" in err.reason


def test_bignum_size_is_capped() -> None:
    big = (1 << 8000) - 1  # 1000 bytes of magnitude
    data = term_to_binary(big)
    assert binary_to_term(data) == big
    err = decode_error(data, max_bignum_bytes=999)
    assert err.offset == 1
    assert "max_bignum_bytes" in err.reason


@pytest.mark.parametrize(
    "body",
    [
        b"\x64\x01\x00" + b"a" * 256,  # ATOM_EXT, 256 latin-1 characters
        b"\x76\x02\x00" + "é".encode() * 256,  # ATOM_UTF8_EXT, 256 characters
        b"\x76\x04\x00" + b"\xf0\x9f\x98\x80" * 256,  # 1024 bytes of UTF-8
    ],
    ids=["latin1_256", "utf8_256_chars", "utf8_1024_bytes"],
)
def test_atom_longer_than_255_characters(body: bytes) -> None:
    err = decode_error(b"\x83" + body)
    assert err.offset == 1
    assert "characters" in err.reason or "bytes" in err.reason


# --- nesting -------------------------------------------------------------------------


def nested_tuples(depth: int) -> bytes:
    return b"\x83" + b"\x68\x01" * depth + b"\x6a"


def nested_lists(depth: int) -> bytes:
    return b"\x83" + b"\x6c\x00\x00\x00\x01" * depth + b"\x77\x01a" + b"\x6a" * depth


def nested_maps(depth: int) -> bytes:
    return b"\x83" + b"\x74\x00\x00\x00\x01\x61\x01" * depth + b"\x6a"


@pytest.mark.parametrize(
    ("build", "step"), [(nested_tuples, 2), (nested_lists, 5), (nested_maps, 7)]
)
def test_nesting_past_max_depth_is_an_error(build: Any, step: int) -> None:
    err = decode_error(build(DEFAULT_MAX_DEPTH + 1))
    assert "max_depth" in err.reason
    assert err.offset == 1 + step * DEFAULT_MAX_DEPTH  # the first container too many
    err = decode_error(build(300), max_depth=299)
    assert err.offset == 1 + step * 299


def depth_of(term: Any) -> int:
    """Nesting depth of tuples/lists/maps, without recursion."""
    depth = 0
    while isinstance(term, tuple | list | dict) and term:
        term = next(iter(term.values())) if isinstance(term, dict) else term[0]
        depth += 1
    return depth


@pytest.mark.parametrize("build", [nested_tuples, nested_lists, nested_maps])
def test_deep_terms_round_trip_without_recursion(build: Any) -> None:
    depth = 3 * DEFAULT_MAX_DEPTH
    data = build(depth)
    term = binary_to_term(data, max_depth=depth)
    assert depth_of(term) == depth
    assert term_to_binary(term, max_depth=depth) == data
    with pytest.raises(EncodeError, match="max_depth"):
        term_to_binary(term)


def test_self_containing_values_cannot_be_encoded() -> None:
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(EncodeError, match="max_depth"):
        term_to_binary(loop)
    knot: dict = {}
    knot[1] = knot
    with pytest.raises(EncodeError, match="max_depth"):
        term_to_binary(knot)


# --- COMPRESSED ----------------------------------------------------------------------


def compressed(size: int, payload: bytes) -> bytes:
    return b"\x83\x50" + struct.pack(">I", size) + payload


def zeros_stream(total: int) -> bytes:
    """zlib of ``total`` zero bytes, made without holding them in memory."""
    packer = zlib.compressobj(9)
    chunk = bytes(MiB)
    parts = [packer.compress(chunk) for _ in range(total // MiB)]
    return b"".join([*parts, packer.flush()])


def test_declared_size_over_max_inflated() -> None:
    err = decode_error(compressed(0xFFFFFFFF, zlib.compress(b"\x6a")))
    assert err.offset == 1
    assert "max_inflated" in err.reason
    small = compressed(100, zlib.compress(b"\x6b\x00\x61" + b"a" * 97))
    assert binary_to_term(small) == [97] * 97
    assert "max_inflated" in decode_error(small, max_inflated=99).reason


def test_zlib_bomb_stops_at_the_declared_size() -> None:
    bomb = zeros_stream(16 * MiB)  # a 16 MiB inflation claiming to be 1 KiB
    with allocates_at_most(2 * MiB):
        err = decode_error(compressed(1024, bomb))
    assert "inflates to more" in err.reason
    with allocates_at_most(2 * MiB):
        err = decode_error(compressed(1024, bomb), max_inflated=4096)
    assert "inflates to more" in err.reason


def test_compressed_data_that_is_not_zlib() -> None:
    err = decode_error(compressed(10, b"not zlib at all"))
    assert err.offset == 6
    err = decode_error(b"\x83\x50\x00\x00")
    assert err.offset == 1


def test_errors_inside_compressed_data_name_the_inflated_offset() -> None:
    err = decode_error(compressed(3, zlib.compress(b"\x68\x01\x99")))
    assert err.offset == 6
    assert "inflated byte 2" in err.reason
    assert "unknown tag 153" in err.reason


# --- any byte, any prefix ------------------------------------------------------------


@pytest.mark.parametrize("tail", [b"", b"\x00" * 12, b"\xff" * 12])
def test_every_tag_byte(tail: bytes) -> None:
    for tag in range(256):
        data = bytes((131, tag)) + tail
        try:
            binary_to_term(data)
        except DecodeError as err:
            assert 0 <= err.offset <= len(data)


def short_records() -> list[bytes]:
    return [bytes.fromhex(r["etf"]) for r in load("etf") if len(r["etf"]) <= 600]


@requires_vectors
def test_every_proper_prefix_of_a_term_is_an_error() -> None:
    for etf in short_records():
        for cut in range(len(etf)):
            with pytest.raises(DecodeError) as excinfo:
                binary_to_term(etf[:cut])
            assert 0 <= excinfo.value.offset <= cut


@requires_vectors
def test_trailing_bytes_are_ignored_and_reported() -> None:
    for etf in short_records()[:200]:
        term = binary_to_term(etf + b"\x83\x00garbage")
        assert exact_equal(term, binary_to_term(etf))
        assert decode_term(etf + b"junk", 1)[1] == len(etf)


# --- the atom caches -----------------------------------------------------------------


def test_atom_cache_refs_need_a_cache() -> None:
    data = bytes.fromhex("680252005201")  # {Cache[0], Cache[1]}
    with pytest.raises(DecodeError, match="distribution"):
        decode_term(data)
    term, end = decode_term(data, atom_cache=[Atom("hello"), Atom("true")])
    assert term == (Atom("hello"), True)
    assert end == len(data)
    with pytest.raises(DecodeError, match="not in the atom cache") as excinfo:
        decode_term(data, atom_cache=[Atom("hello")])
    assert excinfo.value.offset == 4
    with pytest.raises(DecodeError, match="not in the atom cache"):
        decode_term(data, atom_cache=[Atom("hello"), None])


def test_atom_cache_ref_as_node_name() -> None:
    pid = b"\x58\x52\x00" + bytes(range(12))
    term, _ = decode_term(pid, atom_cache=[Atom("true")])
    assert term == Pid(Atom("true"), 0x00010203, 0x04050607, 0x08090A0B)


def test_big_binary_is_copied_once() -> None:
    """Decoding a big binary copies its bytes once (out of the input); encoding one
    copies them once (into the output)."""
    blob = bytes(range(256)) * (16 * 1024)  # 4 MiB
    data = term_to_binary(blob)
    with allocates_at_most(len(blob) + MiB // 4):
        value = binary_to_term(data)
    assert value == blob
    expected = b"\x83h\x02a\x01" + data[1:]
    with allocates_at_most(len(blob) + MiB // 4):
        got = term_to_binary((1, blob))
    assert got == expected


def test_decoded_atoms_are_cached_within_a_bound() -> None:
    names = [f"atom_{i}" for i in range(3 * decode_leaves.ATOM_CACHE_LIMIT)]
    term = binary_to_term(term_to_binary([Atom(n) for n in names]))
    assert [a.name for a in term] == names
    assert len(decode_leaves.utf8_atoms) <= decode_leaves.ATOM_CACHE_LIMIT


# --- the encoder ---------------------------------------------------------------------

NODE_ATOM = Atom("n@h")
PID = Pid(NODE_ATOM, 1, 2, 3)

NOT_ENCODABLE = {
    "pid_id_2_32": Pid(NODE_ATOM, 1 << 32, 0, 0),
    "pid_serial_negative": Pid(NODE_ATOM, 0, -1, 0),
    "pid_creation_2_32": Pid(NODE_ATOM, 0, 0, 1 << 32),
    "pid_node_str": Pid("n@h", 0, 0, 0),  # type: ignore[arg-type]
    "port_id_2_64": Port(NODE_ATOM, 1 << 64, 0),
    "port_id_negative": Port(NODE_ATOM, -1, 0),
    "ref_6_words": Reference(NODE_ATOM, 0, (1, 2, 3, 4, 5, 6)),
    "ref_word_2_32": Reference(NODE_ATOM, 0, (1 << 32,)),
    "atom_256_chars": Atom("a" * 256),
    "atom_surrogate": Atom("\ud800"),
    "str_surrogate": "\udfff",
    "nan": math.nan,
    "inf": math.inf,
    "minus_inf": -math.inf,
    "nan_in_tuple": (1, [math.nan]),
    "export_arity_negative": ExportFun(Atom("m"), Atom("f"), -1),
    "export_arity_2_31": ExportFun(Atom("m"), Atom("f"), 1 << 31),
    "fun_arity_256": Fun(Atom("m"), 256, 0, 0, 0, bytes(16), PID, ()),
    "fun_old_uniq_2_59": Fun(Atom("m"), 0, 0, 1 << 59, 0, bytes(16), PID, ()),
    "set": {1, 2},
    "object": object(),
    "complex": 1j,
    "str_and_bytes_same_key": {"a": 1, b"a": 2},
    "none_and_undefined_same_key": {None: 1, Atom("undefined"): 2},
    "erlmap_duplicate_keys": ErlMap([(1, 1), (1, 2)]),
    "erlmap_zero_and_negative_zero": ErlMap([(0.0, 1), (-0.0, 2)]),
    "big_map_duplicate_keys": {**{i: i for i in range(40)}, "x": 1, b"x": 2},
}


@pytest.mark.parametrize("value", NOT_ENCODABLE.values(), ids=NOT_ENCODABLE.keys())
def test_values_with_no_erlang_form(value: Any) -> None:
    with pytest.raises(EncodeError):
        term_to_binary(value)
    with pytest.raises(EncodeError):
        encode_term(value)


@pytest.mark.parametrize(
    "opts", [{"minor_version": 3}, {"minor_version": True}, {"compressed": 10}, {"compressed": "6"}]
)
def test_bad_encoder_options(opts: dict) -> None:
    with pytest.raises(EncodeError):
        term_to_binary(1, **opts)


class Colour(IntEnum):
    RED = 300


class Point(NamedTuple):
    x: int
    y: int


def test_python_values_that_do_encode() -> None:
    # str is a UTF-8 binary, None the atom undefined, bytearray/memoryview binaries,
    # subclasses their base type, a whole-byte BitString a binary.
    assert term_to_binary("é") == term_to_binary("é".encode())
    assert term_to_binary(None) == term_to_binary(Atom("undefined"))
    assert term_to_binary(bytearray(b"ab")) == b"\x83m\0\0\0\2ab"
    assert term_to_binary(memoryview(b"ab")) == b"\x83m\0\0\0\2ab"
    assert term_to_binary(BitString(b"\xff", 8)) == term_to_binary(b"\xff")
    assert term_to_binary(True) == term_to_binary(Atom("true"))
    assert term_to_binary([Colour.RED, Point(1, 2)]) == term_to_binary([300, (1, 2)])


def test_decoder_input_types() -> None:
    data = term_to_binary((1, b"x"))
    assert binary_to_term(bytearray(data)) == binary_to_term(memoryview(data)) == (1, b"x")
    with pytest.raises(TypeError):
        binary_to_term("not bytes")  # type: ignore[arg-type]
    with pytest.raises(DecodeError) as excinfo:
        decode_term(data, len(data))
    assert excinfo.value.offset == len(data)
