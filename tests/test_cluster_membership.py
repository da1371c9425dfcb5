"""The membership table's rules for every cast of spec 5.2, and announcements (5.3)."""

from __future__ import annotations

from typing import Any

import pytest

from pyekka.cluster.events import MnesiaEvent, NodeEvent, PartitionEvent
from pyekka.cluster.member import Member, MemberStatus, MnesiaStatus
from pyekka.cluster.membership import Cast, MembershipTable, announce_message
from pyekka.term import Atom, binary_to_term
from tests.vectors import load, requires_vectors

UP, DOWN = MemberStatus.UP, MemberStatus.DOWN
JOINING, HEALING, LEAVING = MemberStatus.JOINING, MemberStatus.HEALING, MemberStatus.LEAVING
RUNNING, STOPPED, NOT_DB = MnesiaStatus.RUNNING, MnesiaStatus.STOPPED, MnesiaStatus.NOT_DB
ME, E1, E2, PY = (Atom(n) for n in ("me@h", "e1@h", "e2@h", "py@h"))
T0, T1 = (1, 0, 0), (2, 0, 0)
PONG = Atom("pong")


def make_table(*others: Member) -> MembershipTable:
    return MembershipTable(Member.new(ME, b"\x01" * 16, mnesia=RUNNING, ltime=T0), others)


def test_ping_answers_with_a_pong_then_stores_with_own_mnesia_view() -> None:
    table = make_table()
    shipped = Member.new(PY, b"\x80" * 16, mnesia=RUNNING, ltime=(9, 9, 9))
    out = table.ping(shipped, NOT_DB, T1)
    assert out.casts == [Cast(PY, (PONG, table.local_member.to_term()))]
    assert out.events == []
    assert table.lookup(PY) == Member(PY, shipped.guid, shipped.hash, UP, NOT_DB, T1)


def test_pong_stores() -> None:
    table = make_table()
    out = table.pong(Member.new(E1, b"\x00" * 16, status=UP), RUNNING, T1)
    assert (out.events, out.casts) == ([], [])
    assert table.lookup(E1).mnesia is RUNNING and table.lookup(E1).ltime == T1


@pytest.mark.parametrize(
    ("before", "cast", "after", "event"),
    [
        (None, "joining", Member(E1, status=JOINING, ltime=T1), NodeEvent(JOINING, E1)),
        (
            Member(E1, b"g", 5, UP),
            "joining",
            Member(E1, b"g", 5, JOINING, ltime=T1),
            NodeEvent(JOINING, E1),
        ),
        (None, "healing", None, NodeEvent(HEALING, E1)),
        (
            Member(E1, b"g", 5, UP),
            "healing",
            Member(E1, b"g", 5, HEALING, ltime=T1),
            NodeEvent(HEALING, E1),
        ),
        (Member(E1, b"g", 5, DOWN), "leaving", None, NodeEvent(LEAVING, E1)),
        (
            Member(E1, b"g", 5, UP),
            "leaving",
            Member(E1, b"g", 5, LEAVING, ltime=T1),
            NodeEvent(LEAVING, E1),
        ),
        (None, "leaving", None, NodeEvent(LEAVING, E1)),
        (Member(E1, b"g", 5, LEAVING), "node_down", None, NodeEvent(DOWN, E1)),
        (
            Member(E1, b"g", 5, UP),
            "node_down",
            Member(E1, b"g", 5, DOWN, ltime=T1),
            NodeEvent(DOWN, E1),
        ),
        (None, "node_down", None, NodeEvent(DOWN, E1)),
        (Member(E1, b"g", 5, LEAVING), "mnesia_down", None, MnesiaEvent("down", E1)),
        (
            Member(E1, b"g", 5, UP, RUNNING),
            "mnesia_down",
            Member(E1, b"g", 5, UP, STOPPED, T1),
            MnesiaEvent("down", E1),
        ),
    ],
)
def test_status_casts(before: Member | None, cast: str, after: Member | None, event: Any) -> None:
    table = make_table(*(m for m in [before] if m is not None))
    out = getattr(table, cast)(E1, T1)
    assert table.lookup(E1) == after
    assert out.casts == []
    assert out.events == [event]


def test_node_up_creates_only_db_nodes() -> None:
    table = make_table(Member(PY, b"p", 1, DOWN, NOT_DB))
    out = table.node_up(PY, False, NOT_DB, T1)
    assert table.lookup(PY).status is DOWN  # spec 16.1: stays down until it pings
    assert out.events == [NodeEvent(UP, PY)]
    table.node_up(E1, True, RUNNING, T1)
    assert table.lookup(E1) == Member(E1, status=UP, mnesia=RUNNING, ltime=T1)


def test_mnesia_up_upserts_and_pongs() -> None:
    table = make_table(Member(E1, b"g", 5, DOWN, STOPPED))
    out = table.mnesia_up(E1, T1)
    assert table.lookup(E1) == Member(E1, b"g", 5, UP, RUNNING, T1)
    assert out.events == [MnesiaEvent("up", E1)]
    assert out.casts == [Cast(E1, (PONG, table.local_member.to_term()))]
    table.mnesia_up(E2, T1)
    assert table.lookup(E2) == Member(E2, status=UP, mnesia=RUNNING, ltime=T1)


def status_of(view: dict[Atom, MnesiaStatus]) -> Any:
    return lambda node: view.get(node, NOT_DB)


def test_handle_cast_dispatch() -> None:
    table = make_table()
    view = status_of({ME: RUNNING, E1: RUNNING})
    joined = table.handle_cast((Atom("joining"), E2), T1, view)
    assert joined.events == [NodeEvent(JOINING, E2)]
    up = table.handle_cast((Atom("node_up"), E1), T1, view)
    assert up.events == [NodeEvent(UP, E1)] and table.lookup(E1).mnesia is RUNNING
    table.handle_cast((Atom("node_up"), PY), T1, view)
    assert PY not in table
    occurred = table.handle_cast((Atom("partition_occurred"), E1), T1, view)
    assert occurred.events == [PartitionEvent("occurred", E1)]
    healed = table.handle_cast((Atom("partition_healed"), E1), T1, view)
    assert healed.events == [PartitionEvent("healed", E1)]


@pytest.mark.parametrize(
    "message",
    [
        Atom("ping"),
        (Atom("ping"), (Atom("member"), E1)),
        (Atom("joining"), b"e1@h"),
        (Atom("hello"), E1),
        (Atom("node_up"), E1, E2),
        ("joining", E1),
    ],
)
def test_handle_cast_ignores_the_unexpected(message: Any) -> None:
    table = make_table()
    assert table.handle_cast(message, T1, status_of({})) is None
    assert table.members() == [table.local_member]


@requires_vectors
def test_ping_cast_captured_from_a_real_node() -> None:
    """The ``{'$gen_cast', {ping, #member{}}}`` an OTP node sent (dist.jsonl)."""
    frames = [
        r
        for r in load("dist")
        if r["type"] == "dist" and "payload_etf" in r and "{ping,{member" in r["payload_erl"]
    ]
    assert frames
    for r in frames:
        gen_cast, message = binary_to_term(bytes.fromhex(r["payload_etf"]))
        assert gen_cast == Atom("$gen_cast")
        table = make_table()
        sender = Atom(r["from_node"])
        out = table.handle_cast(message, T1, status_of({sender: RUNNING}))
        assert out.casts == [Cast(sender, (PONG, table.local_member.to_term()))]
        stored = table.lookup(sender)
        assert stored.guid == bytes(15) + b"\x01" and stored.hash == 12345
        assert (stored.status, stored.mnesia, stored.ltime) == (UP, RUNNING, T1)


def test_announce() -> None:
    table = make_table(Member(E1, status=DOWN), Member(PY))
    assert table.announce("join") == [
        Cast(E1, (Atom("joining"), ME)),
        Cast(PY, (Atom("joining"), ME)),
    ]
    assert [c.message for c in table.announce("heal")] == [(Atom("healing"), ME)] * 2
    assert table.announce(("force_leave", E1)) == [
        Cast(ME, (Atom("leaving"), E1)),
        Cast(PY, (Atom("leaving"), E1)),
    ]
    assert announce_message("leave", ME) == ((Atom("leaving"), ME), ME)
    with pytest.raises(ValueError):
        announce_message("reboot", ME)


def test_members_are_listed_in_node_order() -> None:
    table = make_table(Member(PY), Member(E2, status=DOWN), Member(E1))
    assert [m.node for m in table.members()] == [E1, E2, ME, PY]
    assert [m.node for m in table.members(DOWN)] == [E2]
    table.delete(E2)
    assert E2 not in table
