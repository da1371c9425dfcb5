"""Python-only clusters of 3-5 pyekka nodes in one event loop, on 127.0.0.1 with
ekka's port rule: join, leave and force-leave seen by every member, agreement on
members, leader and coordinator, restarts that rejoin from the data directory,
partitions seen as mnesia's ``inconsistent_database``, the RPC surface between
pyekka nodes, events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster, ClusterError
from pyekka.cluster.cluster_view import VIEW_FILE, DbEvent
from pyekka.cluster.events import EventType, MnesiaEvent, NodeEvent
from pyekka.cluster.guid import GuidPolicy
from pyekka.cluster.member import MemberStatus, MnesiaStatus
from pyekka.node.node import Node
from pyekka.term.types import Atom
from tests.otp_nodes import COOKIE, HOST, next_number

A = Atom
UP = MemberStatus.UP
RUNNING = MnesiaStatus.RUNNING


class Members:
    """Starts pyekka nodes with a cluster each; restarts them; stops all at the end."""

    def __init__(self, base: int, root: Path) -> None:
        self.base = base
        self.root = root
        self.live: dict[Atom, tuple[Node, Cluster]] = {}

    async def start(self, name: str | None = None, **kw: Any) -> Cluster:
        name = name or f"cl{next_number()}@{HOST}"
        node = Node(name, COOKIE, epmd=False, dist_base_port=self.base, dist_interface=HOST)
        await node.start()
        kw.setdefault("cluster_name", "pytest")
        cluster = Cluster(node, self.root / name, **kw)
        self.live[node.name] = (node, cluster)
        try:
            await cluster.start()
        except BaseException:
            await self.stop(node.name)
            raise
        return cluster

    async def stop(self, name: Atom) -> None:
        node, cluster = self.live.pop(name)
        await cluster.stop()
        await node.stop()

    async def close(self) -> None:
        for name in list(self.live):
            await self.stop(name)


@pytest.fixture
async def members(ekka_base: int, tmp_path: Path) -> AsyncIterator[Members]:
    m = Members(ekka_base, tmp_path)
    try:
        yield m
    finally:
        await m.close()


def describe(c: Cluster) -> str:
    table = [(m.node.name, m.status.value, m.mnesia) for m in c.members()]
    return (
        f"{c.node.name.name}: db {c.db_nodes()} running {c.running_nodes()} "
        f"services {c.running} table {table}"
    )


async def all_agree(clusters: list[Cluster], check: Callable[[Cluster], bool]) -> None:
    try:
        await asyncio.gather(*(c.wait_for(lambda c=c: check(c), 15) for c in clusters))
    except TimeoutError:
        raise AssertionError("\n".join(describe(c) for c in clusters)) from None


def names(clusters: list[Cluster]) -> list[Atom]:
    return sorted((c.node.name for c in clusters), key=lambda a: a.name)


def converged(clusters: list[Cluster]) -> Callable[[Cluster], bool]:
    """Every member lists exactly these nodes as db nodes, running, ``up`` and ``running``."""
    want = names(clusters)

    def check(c: Cluster) -> bool:
        table = [(m.node, m.status, m.mnesia, m.guid is not None) for m in c.members()]
        return (
            c.db_nodes() == want
            and c.running_nodes() == want
            and table == [(n, UP, RUNNING, True) for n in want]
        )

    return check


async def form(members: Members, count: int) -> list[Cluster]:
    clusters = [await members.start() for _ in range(count)]
    for i, c in enumerate(clusters[1:], 1):
        assert await c.join(clusters[i - 1].node.name) is True  # a chain: transitive
    await all_agree(clusters, converged(clusters))
    return clusters


async def test_join_leave_force_leave_seen_by_every_member(members: Members) -> None:
    c1, c2, c3, c4 = await form(members, 4)
    everyone = [c1, c2, c3, c4]
    # one leader, one coordinator, the same everywhere: c1 never restarted its services
    assert {c.leader() for c in everyone} == {c1.node.name}
    assert {c.coordinator() for c in everyone} == {c1.node.name}
    guids = {m.node: m.guid for m in c1.members()}
    for c in everyone:
        assert {m.node: m.guid for m in c.members()} == guids
        assert c.local_member().hash is not None
    # the errors of ekka_cluster
    with pytest.raises(ClusterError) as err:
        await c1.join(c3.node.name)
    assert err.value.reason == (A("already_in_cluster"), c3.node.name)
    assert await c1.join(c1.node.name) is False
    assert await c1.force_leave(c1.node.name) is False

    await c4.leave()
    rest = [c1, c2, c3]
    await all_agree(rest, converged(rest))
    await all_agree([c4], converged([c4]))
    with pytest.raises(ClusterError) as err:
        await c4.leave()
    assert err.value.reason == A("node_not_in_cluster")
    with pytest.raises(ClusterError) as err:
        await c1.force_leave(c4.node.name)
    assert err.value.reason == A("node_not_in_cluster")

    assert await c1.force_leave(c3.node.name) is True
    await all_agree([c1, c2], converged([c1, c2]))
    await all_agree([c3], converged([c3]))
    assert c3.running  # rebooted by c1, standalone


async def test_restart_rejoins_from_the_data_directory(members: Members) -> None:
    c1, c2, c3 = await form(members, 3)
    name3 = c3.node.name
    await members.stop(name3)
    await all_agree(
        [c1, c2],
        lambda c: (
            c.stopped_nodes() == [name3]
            and c.membership.lookup(name3) is not None
            and c.membership.lookup(name3).status is MemberStatus.DOWN
        ),  # type: ignore[union-attr]
    )
    saved = json.loads((members.root / name3.name / VIEW_FILE).read_text())
    assert {e["node"] for e in saved["entries"] if e["member"]} == {
        n.name for n in names([c1, c2, c3])
    }
    c3 = await members.start(name3.name)
    assert c3.db.restored
    await all_agree([c1, c2, c3], converged([c1, c2, c3]))


async def test_force_leave_of_a_stopped_node_reaches_it_at_restart(members: Members) -> None:
    c1, c2, c3 = await form(members, 3)
    name3 = c3.node.name
    await members.stop(name3)
    await c1.wait_for(lambda: c1.stopped_nodes() == [name3], 15)
    assert await c1.force_leave(name3) is True
    await all_agree([c1, c2], converged([c1, c2]))
    c3 = await members.start(name3.name)
    await all_agree([c3], converged([c3]))
    await all_agree([c1, c2], converged([c1, c2]))
    saved = json.loads((members.root / name3.name / VIEW_FILE).read_text())
    assert [e["node"] for e in saved["entries"] if e["member"]] == [name3.name]
    assert not list((members.root / name3.name).glob(".*"))  # no temporary file left


async def test_five_nodes_and_events(members: Members) -> None:
    first = await members.start()
    events = first.events([EventType.MEMBERSHIP])
    clusters = [first] + [await members.start() for _ in range(4)]
    for c in clusters[1:]:
        await c.join(first.node.name)
    await all_agree(clusters, converged(clusters))
    seen = []
    while len({e.node for e in seen if isinstance(e, MnesiaEvent)}) < 4:
        seen.append(await events.get(timeout=10))
    events.close()
    for c in clusters[1:]:
        assert NodeEvent(UP, c.node.name) in seen
        assert MnesiaEvent("up", c.node.name) in seen
    ring = [m.node for m in first.membership.ring(UP)]
    assert sorted(ring, key=lambda a: a.name) == names(clusters)
    for c in clusters:
        assert [m.node for m in c.membership.ring(UP)] == ring


async def test_partition_is_an_inconsistent_database_until_one_side_restarts(
    members: Members,
) -> None:
    c1, c2 = await form(members, 2)
    seen: dict[Atom, list[DbEvent]] = {c1.node.name: [], c2.node.name: []}
    for c in (c1, c2):
        c.db.on_event(seen[c.node.name].append)
    assert c1.node.disconnect(c2.node.name)
    await all_agree([c1, c2], lambda c: len(c.running_nodes()) == 1)
    assert await c1.node.connect(c2.node.name)
    # both kept running while cut off: each side sees the other as inconsistent
    for me, other in ((c1, c2), (c2, c1)):
        await me.wait_for(lambda me=me, other=other: me.db.is_inconsistent(other.node.name), 15)
        assert DbEvent("inconsistent_database", other.node.name) in seen[me.node.name]
        assert me.db.cluster_view().to_term() == ([me.node.name], [other.node.name])
        assert me.node_status(other.node.name) is MnesiaStatus.STOPPED
    # what autoheal's coordinator asks of the minority: shutdown, then reboot
    assert await c1.node.rpc(c2.node.name, "ekka_cluster", "heal", [A("shutdown")]) == A("ok")
    assert not c2.running and not c2.db.started
    assert await c1.node.rpc(c2.node.name, "ekka_cluster", "heal", [A("reboot")]) == A("ok")
    await all_agree([c1, c2], converged([c1, c2]))
    assert not c1.db.is_inconsistent(c2.node.name)


async def test_rpc_surface_between_pyekka_nodes(members: Members) -> None:
    c1, c2 = await form(members, 2)
    outsider = await members.start()
    n1, n2 = c1.node.name, c2.node.name
    rpc = c2.node.rpc
    # is_running: true for a pyekka member, false for anyone else (spec 16.3)
    assert await rpc(n1, "ekka_node", "is_running", [A("ekka")]) is True
    assert await rpc(n1, "ekka_node", "is_running", [A("mnesia")]) is False
    assert await outsider.node.rpc(n1, "ekka_node", "is_running", [A("ekka")]) is False
    local = await rpc(n1, "ekka_membership", "local_member", [])
    assert local == c1.local_member().to_term()
    assert len(local) == 8 and len(local[3]) == 16
    assert await rpc(n1, "ekka_mnesia", "cluster_view", []) == ([n1, n2], [])
    assert await rpc(n1, "ekka_mnesia", "cluster_status", [n2]) == A("running")
    assert await rpc(n1, "ekka_mnesia", "cluster_status", [outsider.node.name]) is False
    assert await rpc(n1, "ekka_mnesia", "cluster_nodes", [A("all")]) == [n1, n2]
    assert await rpc(n1, "ekka_membership", "nodelist", [A("up")]) == [n1, n2]
    info = await rpc(n1, "ekka", "info", [])
    assert info[A("running_nodes")] == [n1, n2] and info[A("partitions")] == []
    assert await rpc(n1, "ekka_membership", "leader", []) == c1.leader()
    # stopped services answer as a stopped genuine node would
    await c1.stop_services()
    assert await rpc(n1, "ekka_node", "is_running", [A("ekka")]) is False
    failed = await rpc(n1, "ekka_membership", "local_member", [])
    assert failed[0] == A("badrpc")
    await c1.start_services()
    assert await rpc(n1, "ekka_node", "is_running", [A("ekka")]) is True


async def test_join_refuses_another_cluster_name_and_unknown_nodes(members: Members) -> None:
    c1 = await members.start()
    other = await members.start(cluster_name="another")
    with pytest.raises(ClusterError) as err:
        await other.join(c1.node.name)
    assert err.value.reason == (A("cluster_name_mismatch"), b"pytest")
    with pytest.raises(ClusterError) as err:
        await c1.join(A(f"nobody{next_number()}@{HOST}"))
    assert err.value.reason[0] == A("node_down")
    assert c1.db_nodes() == [c1.node.name] and other.db_nodes() == [other.node.name]


async def test_genuine_guid_policy_lets_the_oldest_python_node_lead(members: Members) -> None:
    c1 = await members.start(guid_policy=GuidPolicy.GENUINE)
    c2 = await members.start()  # DEFER: younger than any genuine-policy guid
    await c2.join(c1.node.name)
    await all_agree([c1, c2], converged([c1, c2]))
    assert c1.local_member().guid[0] < 0x80 <= c2.local_member().guid[0]  # type: ignore[index]
    assert {c.leader() for c in (c1, c2)} == {c1.node.name}
