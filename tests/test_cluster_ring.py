"""ekka_ring placement (spec 5.5) against every ``ring`` record made by the genuine module."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyekka.cluster.member import Member, MemberStatus, member_hash
from pyekka.cluster.ring import find_node, find_nodes, key_hash, quorum_count, ring
from pyekka.term import Atom
from tests.vectors import from_typed, records, requires_vectors


def _members(r: dict) -> list[Member]:
    out = []
    for m in r["members"]:
        guid = None if m["guid"] is None else bytes.fromhex(m["guid"])
        out.append(Member(Atom(m["node"]), guid, m["hash"]))
    return out


def _nodes(names: list[str]) -> list[Atom]:
    return [Atom(n) for n in names]


@requires_vectors
@pytest.mark.parametrize("r", records("ekka", type="ring"))
def test_ring_vectors(r: dict) -> None:
    expected_ring = _members(r)
    if r["hash_source"] == "guid":
        for m in expected_ring:
            assert m.hash == member_hash(m.node, m.guid)
    # ekka builds the ring from the table (node order) by a stable keysort on hash
    shuffled = expected_ring[:]
    random.Random(r["id"]).shuffle(shuffled)
    built = ring(shuffled)
    assert [m.node for m in built] == [m.node for m in expected_ring]

    key = from_typed(r["key_term"])
    assert key_hash(key) == r["key_hash"]
    assert quorum_count(len(built)) == r["quorum_count"]
    assert find_node(key, built) == Atom(r["find_node"])
    assert find_nodes(key, built) == _nodes(r["find_nodes"])
    for count, nodes in r["find_nodes_by_count"]:
        assert find_nodes(key, built, count) == _nodes(nodes)


@pytest.mark.parametrize(
    ("size", "count"), [(0, 0), (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 3), (99, 3)]
)
def test_quorum_count_table(size: int, count: int) -> None:
    assert quorum_count(size) == count


def test_appendix_a2_two_up_members_lock_both() -> None:
    """Two members on a live cluster: every key's quorum is both nodes."""
    emqx1, emqx2 = Atom("emqx1@127.0.0.1"), Atom("emqx2@127.0.0.1")
    members = [Member(emqx2, hash=1262431060), Member(emqx1, hash=906587794)]
    r = ring(members)
    assert [m.node for m in r] == [emqx1, emqx2]
    for key, h in [(b"c1", 926807367), (b"c2", 365677982), (b"clientid", 3226187787)]:
        assert key_hash(key) == h
        assert find_nodes(key, r) == [emqx1, emqx2]
    assert key_hash(Atom("foo")) == 27999
    assert find_node(b"c1", r) == emqx2  # 906587794 < 926807367 <= 1262431060
    assert find_node(b"clientid", r) == emqx1  # past the last member: wrap to the first


def test_ring_of_a_status_and_undefined_hashes_last() -> None:
    a, b, c, d = (Atom(f"{x}@h") for x in "abcd")
    members = [
        Member(d, hash=None, status=MemberStatus.UP),
        Member(c, hash=5, status=MemberStatus.DOWN),
        Member(b, hash=None, status=MemberStatus.UP),
        Member(a, hash=7, status=MemberStatus.UP),
    ]
    assert [m.node for m in ring(members)] == [c, a, b, d]
    assert [m.node for m in ring(members, MemberStatus.UP)] == [a, b, d]
    assert [m.node for m in ring(members, MemberStatus.DOWN)] == [c]


def test_undefined_hash_counts_as_greater_than_any_key() -> None:
    a, b = Atom("a@h"), Atom("b@h")
    r = [Member(a, hash=1), Member(b, hash=None)]
    key = b"clientid"  # hash 3226187787 > 1
    assert find_node(key, r) == b
    assert find_nodes(key, r, 1) == [b]


def test_empty_ring() -> None:
    assert find_node(b"k", []) is None
    assert find_nodes(b"k", []) == []


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError):
        find_nodes(b"k", [Member(Atom("a@h"), hash=1)], -1)


hashes = st.integers(0, 4294967294)


@given(
    st.lists(hashes, min_size=1, max_size=8),
    st.binary(max_size=8),
    st.integers(0, 10),
)
def test_find_nodes_walks_clockwise(entries: list[int], key: bytes, count: int) -> None:
    """The rule of the vectors' README, stated independently: from the key, wrap around."""
    members = [Member(Atom(f"n{i}@h"), hash=h) for i, h in enumerate(entries)]
    r = ring(members)
    got = find_nodes(key, r, count)
    if count >= len(r):
        assert got == [m.node for m in r]
        return
    h = key_hash(key)
    start = next((i for i, m in enumerate(r) if m.hash >= h), 0)
    expected = [r[(start + i) % len(r)].node for i in range(count)]
    assert got == expected
    assert find_node(key, r) == r[start].node
