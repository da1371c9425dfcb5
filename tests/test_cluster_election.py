"""Oldest, leader and coordinator as ekka 0.8.1.9 picks them (spec 5.4, 16.2)."""

from __future__ import annotations

import random

from pyekka.cluster.election import (
    coordinator,
    coordinator_of,
    guid_sort_key,
    leader,
    lookup,
    nodelist,
    oldest,
    sort_members,
)
from pyekka.cluster.member import Member, MemberStatus
from pyekka.term import Atom, format_term, parse_term
from pyekka.testing.otp import OtpRuntime

UP, DOWN, JOINING = MemberStatus.UP, MemberStatus.DOWN, MemberStatus.JOINING
A, B, C, D = (Atom(f"{x}@127.0.0.1") for x in "abcd")


def g(n: int) -> bytes:
    """A guid whose time field is ``n``."""
    return n.to_bytes(8, "big") + bytes(8)


def test_leader_counts_down_members() -> None:
    members = [Member(A, g(5), status=UP), Member(B, g(1), status=DOWN), Member(C, g(3))]
    assert leader(members) == B
    assert coordinator(members) == C


def test_a_guidless_entry_is_the_oldest() -> None:
    """``undefined`` is an atom, and atoms sort before binaries (spec 5.4)."""
    members = [Member(A, g(0)), Member(B, None, status=JOINING)]
    assert leader(members) == B
    assert coordinator(members) == A  # not up
    assert oldest(members, guidless_first=False).node == A


def test_equal_guids_pick_the_last_in_node_order() -> None:
    """ekka's strict ``<`` ordering fun puts equal guids in reverse order."""
    members = [Member(C, None), Member(A, None), Member(B, None), Member(D, g(1))]
    assert leader(members) == C
    assert oldest([Member(A, g(2)), Member(B, g(2))]).node == B


def test_a_newcomer_with_an_old_guid_takes_over() -> None:
    """Appendix B step 4: py9's guid <<0,0,0,0,0,0,0,1,0...>> made it leader at once."""
    emqx1 = Member(Atom("emqx1@127.0.0.1"), bytes.fromhex("000660D19D75EC0670F1000000910000"))
    py9 = Member(Atom("py9@127.0.0.1"), bytes.fromhex("00000000000000010000000000000000"))
    assert leader([emqx1]) == emqx1.node
    assert leader([emqx1, py9]) == py9.node


def test_coordinator_of_keeps_the_given_order_and_skips_strangers() -> None:
    members = [Member(A, None), Member(B, None), Member(C, g(9))]
    assert coordinator_of(members, [A, B]) == B
    assert coordinator_of(members, [B, A]) == A
    assert coordinator_of(members, [D, C]) == C
    assert coordinator_of(members, [D]) is None


def test_empty_tables() -> None:
    assert leader([]) is None
    assert coordinator([Member(A, g(1), status=DOWN)]) is None
    assert oldest([]) is None


def test_nodelist_and_lookup() -> None:
    members = [Member(C, status=DOWN), Member(A), Member(B)]
    assert nodelist(members) == [A, B, C]
    assert nodelist(members, UP) == [A, B]
    assert lookup(members, B) == Member(B)
    assert lookup(members, D) is None
    assert [m.node for m in sort_members(members)] == [A, B, C]


def test_guid_sort_key_orders() -> None:
    keys = [guid_sort_key(Member(A, x)) for x in (None, b"", b"\x00", b"\x01")]
    assert keys == sorted(keys)
    assert guid_sort_key(Member(A, None), guidless_first=False) > guid_sort_key(Member(A, b"\xff"))


def _random_tables(seed: int, count: int) -> list[list[Member]]:
    rnd = random.Random(seed)
    tables = []
    for _ in range(count):
        size = rnd.randint(1, 10)
        names = rnd.sample([f"n{i}@h" for i in range(20)], size)
        table = []
        for name in sorted(names):
            guid = rnd.choice([None, bytes([rnd.randint(0, 3)]), bytes([rnd.randint(0, 3), 0])])
            table.append(Member(Atom(name), guid))
        tables.append(table)
    return tables


def test_oldest_matches_lists_sort_in_a_vm(otp: OtpRuntime) -> None:
    """Node-ordered tables with many ties, sorted by a real ``lists:sort/2`` with a strict ``<``."""
    tables = _random_tables(20240501, 300)
    terms = [
        [(m.node, m.guid if m.guid is not None else Atom("undefined")) for m in t] for t in tables
    ]
    expr = (
        f"Tables = {format_term(terms)}, "
        "Less = fun({_, G1}, {_, G2}) -> G1 < G2 end, "
        'io:format("~w.~n", [[element(1, hd(lists:sort(Less, T))) || T <- Tables]])'
    )
    expected = parse_term(otp.eval_text(expr).strip())
    assert [leader(t) for t in tables] == expected
