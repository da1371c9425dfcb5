"""The order in which the encoder writes a map's pairs (see :mod:`pyekka.term.encode`).

Small maps in map-key order and large maps of reproducible keys in OTP 25's
hash-trie order, whatever the ``dict``'s order; large maps with a key whose VM hash
depends on the VM (atoms, pids, ports, refs, funs, at any depth) in the ``dict``'s
own order, so that decoding then encoding gives back the bytes. The golden vectors
check the same against a real VM (``test_etf_vectors.py``, ``test_maphash.py``).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pyekka.term import binary_to_term, term_to_binary
from pyekka.term.errors import EncodeError
from pyekka.term.maphash import hashmap_sort, reproducible_hashmap_sort
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

NODE = Atom("n@h")
PID = Pid(NODE, 7, 0, 1)

Pairs = list[tuple[Any, Any]]


def _written_keys(data: bytes) -> list:
    """The keys of the encoded top-level map, in the order they were written."""
    return [k for k, _ in binary_to_term(data).items()]


def _same_keys(got: list, pairs: Pairs) -> bool:
    """Whether ``got`` are the keys of ``pairs``, in order, as Erlang terms (``None``
    is the atom ``undefined``, a ``str`` its UTF-8 binary)."""
    want = [map_key_sort_key(k) for k, _ in pairs]
    return [map_key_sort_key(k) for k in got] == want


def _shuffled(pairs: Pairs, seed: int) -> Pairs:
    out = list(pairs)
    random.Random(seed).shuffle(out)
    return out


def _fill(n: int) -> Pairs:
    """``n`` pairs with reproducible keys of several types."""
    keys: list[Any] = []
    for i in range(n):
        keys.append([i, -(i << 40), float(i) + 0.5, b"k%d" % i, (i, b"t"), [i, 2.5]][i % 6])
    return [(k, Atom("v")) for k in keys]


# Keys whose OTP 25 hash depends on the VM that wrote the map.
VM_SPECIFIC_KEYS: dict[str, Any] = {
    "atom": Atom("node_a"),
    "none_is_undefined": None,
    "atom_in_tuple": (1, Atom("x")),
    "atom_in_list_tail": ImproperList([1], Atom("x")),
    "atom_in_small_map_value": {1: Atom("x")},
    "atom_in_bitstring_neighbour": (BitString(b"\x80", 1), [Atom("y")]),
    "pid": PID,
    "port": Port(NODE, 3, 1),
    "reference": Reference(NODE, 1, (1, 2, 3)),
    "export_fun": ExportFun(Atom("m"), Atom("f"), 1),
    "local_fun": Fun(Atom("m"), 0, 1, 2, 3, bytes(16), PID, ()),
    "pid_deep": ([[[(PID,)]]],),
}

# Keys made of numbers, binaries, lists, tuples, maps, true and false only.
REPRODUCIBLE_KEYS: dict[str, Any] = {
    "true": True,
    "false": False,
    "bools_in_tuple": (True, False),
    "str": "text",
    "bitstring": BitString(b"\xf0", 4),
    "big_int": 1 << 70,
    "nested_map": {1: [2, (3.5, b"")]},
    "improper_list": ImproperList([1, 2], b"t"),
}


@pytest.mark.parametrize("key", VM_SPECIFIC_KEYS.values(), ids=VM_SPECIFIC_KEYS.keys())
def test_large_map_with_vm_specific_key_keeps_its_order(key: Any) -> None:
    pairs = [*_fill(40), (key, 0)]
    assert reproducible_hashmap_sort(pairs) is None
    for seed in (1, 2):
        order = _shuffled(pairs, seed)
        data = term_to_binary(ErlMap(order))
        assert _same_keys(_written_keys(data), order)
        # decode then encode: the same bytes
        assert term_to_binary(binary_to_term(data)) == data
        try:
            as_dict = dict(order)
        except TypeError:  # an unhashable key (a map)
            continue
        assert term_to_binary(as_dict) == data


@pytest.mark.parametrize("key", REPRODUCIBLE_KEYS.values(), ids=REPRODUCIBLE_KEYS.keys())
def test_large_map_with_reproducible_keys_has_one_order(key: Any) -> None:
    pairs = [*_fill(40), (key, Atom("value_atoms_do_not_matter"))]
    canonical = reproducible_hashmap_sort(pairs)
    assert canonical is not None
    assert [repr(k) for k, _ in canonical] == [repr(k) for k, _ in hashmap_sort(pairs)]
    written = {term_to_binary(ErlMap(_shuffled(pairs, seed))) for seed in range(4)}
    assert len(written) == 1
    assert _same_keys(_written_keys(written.pop()), canonical)


def test_small_map_order_ignores_vm_specific_keys() -> None:
    pairs = [(Atom(f"a{i}"), i) for i in range(32)]
    assert len({term_to_binary(dict(_shuffled(pairs, seed))) for seed in range(4)}) == 1
    assert _written_keys(term_to_binary(dict(_shuffled(pairs, 9)))) == sorted(
        (k for k, _ in pairs), key=map_key_sort_key
    )


def test_thirty_three_atom_keys_keep_dict_order() -> None:
    names = [f"k{i}" for i in range(33)]
    forward = {Atom(n): 0 for n in names}
    backward = {Atom(n): 0 for n in reversed(names)}
    assert _written_keys(term_to_binary(forward)) == list(forward)
    assert _written_keys(term_to_binary(backward)) == list(backward)


@pytest.mark.parametrize(
    "pairs",
    [
        [*_fill(40), (("a",), 1), ((b"a",), 2)],  # one Erlang key, two Python keys
        [*_fill(40), ((Atom("x"), "a"), 1), ((Atom("x"), b"a"), 2)],  # and VM-specific
        [(Reference(NODE, 1, (5, 0, 0)), 1), (Reference(NODE, 1, (5,)), 2)],
        [(BitString(b"ab", 8), 1), (b"ab", 2)],
    ],
    ids=["large_tuple_keys", "large_atom_tuple_keys", "ref_trailing_zero_words", "bitstring"],
)
def test_one_erlang_key_twice_is_an_error(pairs: Pairs) -> None:
    with pytest.raises(EncodeError, match="duplicate"):
        term_to_binary(ErlMap(pairs))


def test_large_map_of_str_keys_is_written_like_binaries() -> None:
    as_str = {f"client-{i}": i for i in range(100)}
    as_bytes = {k.encode(): v for k, v in reversed(as_str.items())}
    assert term_to_binary(as_str) == term_to_binary(as_bytes)


def test_large_map_key_without_utf8_form_is_an_error() -> None:
    with pytest.raises(EncodeError):
        term_to_binary({**{i: i for i in range(40)}, "\udc80": 1})
    with pytest.raises(EncodeError):
        term_to_binary({**{i: i for i in range(40)}, ("\udc80",): 1})
