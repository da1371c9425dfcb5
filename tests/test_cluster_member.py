"""The ``#member{}`` 8-tuple and its hash (spec 3.1), against the golden vectors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyekka.cluster.member import (
    Member,
    MemberStatus,
    MnesiaStatus,
    member_hash,
    now_diff_us,
    timestamp_from_us,
    timestamp_to_us,
)
from pyekka.term import Atom, Pid, binary_to_term, term_to_binary
from pyekka.term.types import exact_equal
from tests.vectors import records, requires_vectors

UNDEFINED = Atom("undefined")

# Spec 3.1 (run): ekka_membership:local_member() of emqx1, as OTP 25 sent it.
SPEC_MEMBER_ETF = bytes.fromhex(
    "83"
    "6808"
    "6400066D656D626572"
    "64000F656D717831403132372E302E302E31"
    "640009756E646566696E6564"
    "6D00000010000660D19D75EC0670F1000000910000"
    "6236096E92"
    "6400027570"
    "64000772756E6E696E67"
    "6803620000070362"
    "0004A0A262"
    "00076681"
)


def test_spec_member_record() -> None:
    member = Member.from_term(binary_to_term(SPEC_MEMBER_ETF))
    assert member == Member(
        node=Atom("emqx1@127.0.0.1"),
        guid=bytes.fromhex("000660D19D75EC0670F1000000910000"),
        hash=906587794,
        status=MemberStatus.UP,
        mnesia=MnesiaStatus.RUNNING,
        ltime=(1795, 303266, 484993),
    )
    assert member.hash == member_hash(member.node, member.guid)
    assert exact_equal(member.to_term(), binary_to_term(SPEC_MEMBER_ETF))


@requires_vectors
@pytest.mark.parametrize("r", records("ekka", type="member_hash"))
def test_member_hash_vectors(r: dict) -> None:
    node, guid = Atom(r["node"]), bytes.fromhex(r["guid"])
    assert member_hash(node, guid) == r["hash"]
    assert term_to_binary((node, guid)) == bytes.fromhex(r["hashed_term_etf"])
    member = Member.new(node, guid, mnesia=MnesiaStatus.RUNNING)
    assert member.hash == r["hash"]
    assert term_to_binary(member.to_term()) == bytes.fromhex(r["member_etf"])
    assert Member.from_term(binary_to_term(bytes.fromhex(r["member_etf"]))) == member


def test_unset_fields_are_undefined_on_the_wire() -> None:
    bare = Member(Atom("n@h"), status=MemberStatus.JOINING)
    assert bare.to_term() == (
        Atom("member"),
        Atom("n@h"),
        UNDEFINED,
        UNDEFINED,
        UNDEFINED,
        Atom("joining"),
        UNDEFINED,
        UNDEFINED,
    )
    assert Member.from_term(bare.to_term()) == bare


def test_not_a_db_node_is_the_atom_false() -> None:
    member = Member(Atom("py@h"), mnesia=MnesiaStatus.NOT_DB)
    assert member.to_term()[6] is False
    assert Member.from_term(member.to_term()).mnesia is MnesiaStatus.NOT_DB


def test_with_hash_and_hash_of_a_guidless_member() -> None:
    node = Atom("n@h")
    assert Member(node).with_hash().hash == member_hash(node, None)
    # phash2({Node, undefined}) is the hash of that tuple, computed like any other
    assert member_hash(node, None) != member_hash(node, b"")


@pytest.mark.parametrize(
    "term",
    [
        None,
        (Atom("member"),),
        (Atom("mbr"), Atom("n"), UNDEFINED, UNDEFINED, UNDEFINED, Atom("up"), UNDEFINED, UNDEFINED),
        (Atom("member"), b"n", UNDEFINED, UNDEFINED, UNDEFINED, Atom("up"), UNDEFINED, UNDEFINED),
        (Atom("member"), Atom("n"), UNDEFINED, "guid", UNDEFINED, Atom("up"), UNDEFINED, UNDEFINED),
        (Atom("member"), Atom("n"), UNDEFINED, b"g", 1.5, Atom("up"), UNDEFINED, UNDEFINED),
        (Atom("member"), Atom("n"), UNDEFINED, b"g", 1, Atom("sleepy"), UNDEFINED, UNDEFINED),
        (Atom("member"), Atom("n"), UNDEFINED, b"g", 1, b"up", UNDEFINED, UNDEFINED),
        # a 9-tuple mria record is not an ekka 0.8 member (spec 18.1)
        (Atom("member"), Atom("n"), UNDEFINED, b"g", 1, Atom("up"), UNDEFINED, 5, Atom("core")),
    ],
)
def test_from_term_rejects(term: Any) -> None:
    with pytest.raises(ValueError):
        Member.from_term(term)


def test_from_term_tolerates_fields_receivers_overwrite() -> None:
    term = (Atom("member"), Atom("n"), (1, 2), b"g", 7, Atom("down"), Atom("odd"), Atom("x"))
    member = Member.from_term(term)
    assert (member.mnesia, member.ltime, member.addr) == (None, None, (1, 2))
    assert member.status is MemberStatus.DOWN


def test_pid_is_not_a_node() -> None:
    term = (Atom("member"), Pid(Atom("n"), 1), UNDEFINED, b"g", 1, Atom("up"), False, UNDEFINED)
    with pytest.raises(ValueError):
        Member.from_term(term)


@given(st.integers(0, 2**62))
def test_timestamps_round_trip(us: int) -> None:
    ts = timestamp_from_us(us)
    assert timestamp_to_us(ts) == us
    assert 0 <= ts[1] < 1_000_000 and 0 <= ts[2] < 1_000_000


def test_now_diff() -> None:
    assert now_diff_us((1, 0, 5), (0, 999_999, 0)) == 1_000_005
    assert now_diff_us((0, 0, 0), (0, 0, 1)) == -1
