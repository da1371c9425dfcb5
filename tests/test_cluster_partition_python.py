"""Partitions of Python-only clusters (3-5 pyekka nodes in one event loop, 127.0.0.1):
links cut with :class:`~pyekka.testing.partition.Partition`, partitions detected with
the meaning of mnesia's ``inconsistent_database`` on both sides, autoheal back to one
cluster (the time from the healed network to one cluster is measured and printed),
three-sided partitions healed by pyekka's extension, a dead oldest member that does
not block healing, suspect/confirm through a proxy, autoclean.

Every delay is shortened (autoheal 300 ms instead of 15 s, confirmation 100 ms instead
of 3 s ...); the code paths are ekka's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster
from pyekka.cluster.events import EventType, PartitionEvent
from pyekka.cluster.member import MemberStatus, MnesiaStatus
from pyekka.cluster.service_autoheal import AutohealSettings
from pyekka.cluster.service_node_monitor import NodeMonitor
from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.partition import Partition
from tests.otp_nodes import COOKIE, HOST, LogWatch, next_number

A = Atom
UP = MemberStatus.UP
RUNNING = MnesiaStatus.RUNNING

FAST_AUTOHEAL = AutohealSettings(delay_ms=300, reboot_pause_ms=(10, 50), heal_rpc_timeout=10.0)


def fast_monitor(**kw: Any) -> NodeMonitor:
    """A node monitor with every delay shortened for tests."""
    kw.setdefault("autoheal", FAST_AUTOHEAL)
    kw.setdefault("confirm_delay_ms", 100)
    kw.setdefault("suspect_delay_ms", 100)
    kw.setdefault("heartbeat_ms", (200, 400))
    kw.setdefault("leader_rpc_timeout", 5.0)
    return NodeMonitor(**kw)


class Members:
    """pyekka nodes with a cluster and a node monitor each; all stopped at the end."""

    def __init__(self, base: int, root: Path) -> None:
        self.base = base
        self.root = root
        self.live: dict[Atom, tuple[Node, Cluster, NodeMonitor]] = {}

    async def start(self, name: str | None = None, **monitor: Any) -> Cluster:
        name = name or f"pt{next_number()}@{HOST}"
        node = Node(name, COOKIE, epmd=False, dist_base_port=self.base, dist_interface=HOST)
        await node.start()
        cluster = Cluster(node, self.root / name, "partition-test", rpc_timeout=5.0)
        mon = fast_monitor(**monitor)
        cluster.add_service(mon)
        self.live[node.name] = (node, cluster, mon)
        try:
            await cluster.start()
        except BaseException:
            await self.stop(node.name)
            raise
        return cluster

    def monitor(self, cluster: Cluster) -> NodeMonitor:
        return self.live[cluster.node.name][2]

    async def stop(self, name: Atom) -> None:
        node, cluster, _ = self.live.pop(name)
        await cluster.stop()
        await node.stop()

    async def close(self) -> None:
        for name in list(self.live):
            await self.stop(name)

    def partition(self, clusters: Iterable[Cluster]) -> Partition:
        return Partition(c.node for c in clusters)


@pytest.fixture
async def members(ekka_base: int, tmp_path: Path) -> AsyncIterator[Members]:
    m = Members(ekka_base, tmp_path)
    try:
        yield m
    finally:
        await m.close()


def names(clusters: Iterable[Cluster]) -> list[Atom]:
    return sorted((c.node.name for c in clusters), key=lambda a: a.name)


def describe(c: Cluster) -> str:
    table = [(m.node.name, m.status.value, m.mnesia) for m in c.members()]
    return (
        f"{c.node.name.name}: running {c.running_nodes()} stopped {c.stopped_nodes()} "
        f"partitions {c.partitions()} services {c.running} table {table}"
    )


async def all_agree(
    clusters: list[Cluster], check: Callable[[Cluster], bool], timeout: float = 15
) -> None:
    try:
        await asyncio.gather(*(c.wait_for(lambda c=c: check(c), timeout) for c in clusters))
    except TimeoutError:
        raise AssertionError("\n".join(describe(c) for c in clusters)) from None


def converged(clusters: list[Cluster]) -> Callable[[Cluster], bool]:
    """One cluster: the same db nodes, all running, all ``up``, no partition left."""
    want = names(clusters)

    def check(c: Cluster) -> bool:
        table = [(m.node, m.status, m.mnesia, m.guid is not None) for m in c.members()]
        return (
            c.running
            and c.db_nodes() == want
            and c.running_nodes() == want
            and table == [(n, UP, RUNNING, True) for n in want]
            and c.partitions() == []
        )

    return check


def sees_partition(side: list[Cluster], other: list[Cluster]) -> Callable[[Cluster], bool]:
    """Running only with its own side, the other side in the partition list."""
    mine, theirs = names(side), names(other)

    def check(c: Cluster) -> bool:
        return c.running_nodes() == mine and all(n in c.partitions() for n in theirs)

    return check


async def form(members: Members, count: int, **monitor: Any) -> list[Cluster]:
    """``count`` nodes joined into one cluster, the first one oldest (the leader)."""
    clusters = [await members.start(**monitor) for _ in range(count)]
    for c in clusters[1:]:
        assert await c.join(clusters[0].node.name) is True
    await all_agree(clusters, converged(clusters))
    assert {c.leader() for c in clusters} == {clusters[0].node.name}
    return clusters


async def cut_off(net: Partition, *sides: list[Cluster]) -> None:
    """Split the network into ``sides`` and wait until each side runs on its own."""
    net.split(*([c.node for c in side] for side in sides))
    await asyncio.gather(
        *(all_agree(side, lambda c, side=side: c.running_nodes() == names(side)) for side in sides)
    )


def guids(clusters: Iterable[Cluster]) -> dict[Atom, bytes | None]:
    return {c.node.name: c.local_member().guid for c in clusters}


def rebooted(c: Cluster, before: dict[Atom, bytes | None]) -> bool:
    """Whether ``c``'s services run with another guid than in ``before``."""
    table = c.membership.table
    return c.running and table is not None and table.local_member.guid != before[c.node.name]


async def test_two_sided_partition_is_seen_on_both_sides_and_autohealed(
    members: Members,
) -> None:
    clusters = await form(members, 3)
    c1, c2, c3 = clusters
    events = {c.node.name: c.events([EventType.PARTITION]) for c in clusters}
    net = members.partition(clusters)
    await cut_off(net, [c1, c2], [c3])
    before = guids(clusters)
    # nobody was rebooted while cut off: the partition shows only when they meet again
    assert all(c.partitions() == [] for c in clusters)
    started = time.perf_counter()
    await net.heal()
    await all_agree([c1, c2], sees_partition([c1, c2], [c3]))
    await all_agree([c3], sees_partition([c3], [c1, c2]))
    await all_agree(clusters, converged(clusters))
    healed_in = time.perf_counter() - started
    print(f"\nautoheal, 3 nodes split 2|1: one cluster {healed_in:.2f} s after the network healed")
    # the minority was rebooted (a new guid), the majority kept running
    after = guids(clusters)
    assert after[c3.node.name] != before[c3.node.name]
    assert after[c1.node.name] == before[c1.node.name]
    assert after[c2.node.name] == before[c2.node.name]
    # partition events: occurred on both sides, healed on the majority
    # (the minority's subscribers see "occurred" before its reboot)
    for c, other in ((c1, c3), (c2, c3)):
        seen = await _events_until(events[c.node.name], PartitionEvent("healed", other.node.name))
        assert PartitionEvent("occurred", other.node.name) in seen
    seen3 = await _events_until(events[c3.node.name], PartitionEvent("occurred", c1.node.name))
    assert seen3[-1] == PartitionEvent("occurred", c1.node.name)
    assert members.monitor(c1).autoheal is not None
    assert members.monitor(c1).autoheal.role == "coordinator"  # leader and coordinator


async def _events_until(stream: Any, wanted: PartitionEvent) -> list[Any]:
    seen = []
    while wanted not in seen:
        seen.append(await stream.get(timeout=10))
    return seen


async def test_three_sided_partition_is_healed_by_pyekkas_extension(members: Members) -> None:
    clusters = await form(members, 5)
    c1, c2, c3, c4, c5 = clusters
    net = members.partition(clusters)
    with LogWatch("pyekka.cluster.autoheal") as logs:
        await cut_off(net, [c1, c2], [c3, c4], [c5])
        before = guids(clusters)
        started = time.perf_counter()
        await net.heal()
        await all_agree(clusters, converged(clusters), timeout=30)
        healed_in = time.perf_counter() - started
        plan = await logs.wait("autoheal: keep")
    print(
        f"\nautoheal, 5 nodes split 2|2|1: one cluster {healed_in:.2f} s after the network healed"
    )
    assert "pyekka's plan" in plan
    after = guids(clusters)
    # the leader's side is kept, everything else rebooted
    assert [after[c.node.name] == before[c.node.name] for c in clusters] == [
        True,
        True,
        False,
        False,
        False,
    ]


async def test_a_dead_oldest_member_does_not_block_healing(members: Members) -> None:
    clusters = await form(members, 4)
    oldest, c2, c3, c4 = clusters
    dead = oldest.node.name
    await members.stop(dead)  # killed without leaving: still a db node, still leader()
    rest = [c2, c3, c4]
    await all_agree(rest, lambda c: c.stopped_nodes() == [dead] and c.leader() == dead)
    net = members.partition(rest)
    await cut_off(net, [c2, c3], [c4])
    before = guids(rest)
    with LogWatch("pyekka.cluster.autoheal") as logs:
        started = time.perf_counter()
        await net.heal()
        await all_agree(
            rest,
            lambda c: (
                c.running_nodes() == names(rest)
                and c.stopped_nodes() == [dead]
                and c.partitions() == []
                and all(m.status is UP for m in c.members() if m.node != dead)
            ),
            timeout=30,
        )
        healed_in = time.perf_counter() - started
        plan = await logs.wait("autoheal: keep")
    print(f"\nautoheal with a dead oldest member: {healed_in:.2f} s after the network healed")
    assert "pyekka's plan" in plan and f"coordinator {c2.node.name.name}" in plan
    after = guids(rest)
    assert after[c4.node.name] != before[c4.node.name]
    assert after[c2.node.name] == before[c2.node.name]
    # genuine leader() still names the dead node: genuine ekka would say "leader is down"
    assert c2.leader() == dead


async def test_genuine_only_autoheal_gives_up_when_the_leader_is_down(
    members: Members,
) -> None:
    genuine = AutohealSettings(delay_ms=200, reboot_pause_ms=(10, 50), genuine_only=True)
    clusters = await form(members, 4, autoheal=genuine)
    oldest, c2, c3, c4 = clusters
    dead = oldest.node.name
    await members.stop(dead)
    rest = [c2, c3, c4]
    net = members.partition(rest)
    await all_agree(rest, lambda c: c.stopped_nodes() == [dead])
    await cut_off(net, [c2, c3], [c4])
    with LogWatch("pyekka.cluster.monitor") as logs:
        await net.heal()
        # genuine ekka 0.8.1.9 reports to leader() only: the dead node never answers
        text = await logs.wait("Leader is down", level=logging.CRITICAL)
    assert c4.node.name.name in text or c2.node.name.name in text
    assert c4.partitions() == [c2.node.name, c3.node.name]


async def test_an_overlapping_cut_is_suspected_through_a_proxy_and_healed(
    members: Members,
) -> None:
    clusters = await form(members, 3)
    c1, c2, c3 = clusters
    n1, n2, n3 = (c.node.name for c in clusters)
    net = members.partition(clusters)
    before = guids(clusters)
    with LogWatch("pyekka.cluster") as logs:
        net.cut(n1, n3)  # c2 still talks to both
        await all_agree([c1], lambda c: c.running_nodes() == [n1, n2])
        await all_agree([c3], lambda c: c.running_nodes() == [n2, n3])
        # c1 suspects c3 and asks c2 (the only running db node left): c3 is up
        await logs.wait(f"Suspect from {n1.name}: {n3.name}")
        await logs.wait(f"Confirm {n3.name} up")
        assert c2.running_nodes() == [n1, n2, n3]
        started = time.perf_counter()
        await net.heal()
        await all_agree(clusters, converged(clusters))
        plan = await logs.wait("autoheal: keep")
    healed_in = time.perf_counter() - started
    print(f"\nautoheal of an overlapping cut (1-3 only): {healed_in:.2f} s")
    # genuine's plan: c2's view sees everybody running, so every other node of it but
    # the coordinator (c1, the oldest) is rebooted
    assert "genuine plan" in plan and f"coordinator {n1.name}" in plan
    after = guids(clusters)
    assert after[n1] == before[n1] and after[n2] != before[n2] and after[n3] != before[n3]


async def test_heartbeats_reconnect_a_healed_network(members: Members) -> None:
    clusters = await form(members, 3)
    c1, c2, c3 = clusters
    net = members.partition(clusters)
    await cut_off(net, [c1], [c2, c3])
    before = guids(clusters)
    await net.heal(reconnect=False)  # nobody connects on purpose: the heartbeats do
    await all_agree([c1], sees_partition([c1], [c2, c3]))
    await all_agree(clusters, converged(clusters))
    # the leader (c1) was the minority: the oldest of the majority coordinated
    assert members.monitor(c2).autoheal.role == "coordinator"
    assert [rebooted(c, before) for c in clusters] == [True, False, False]


async def test_partitions_stay_without_autoheal(members: Members) -> None:
    clusters = await form(members, 3, autoheal=False)
    c1, c2, c3 = clusters
    net = members.partition(clusters)
    await cut_off(net, [c1, c2], [c3])
    await net.heal()
    await all_agree([c1, c2], sees_partition([c1, c2], [c3]))
    await all_agree([c3], sees_partition([c3], [c1, c2]))
    info = c1.info()
    assert info.partitions == [c3.node.name] and info.stopped_nodes == [c3.node.name]
    assert (await c2.node.rpc(c1.node.name, "ekka", "info", []))[A("partitions")] == [c3.node.name]
    with LogWatch("pyekka.cluster.monitor") as logs:
        # a leader without autoheal refuses reports and orders, as genuine ekka does
        c3.node.send(
            (A("ekka_node_monitor"), c1.node.name),
            (A("$gen_cast"), (A("report_partition"), c3.node.name)),
        )
        await logs.wait("Autoheal not enabled")
    # an operator heals by hand: the minority's db restarts (ekka_cluster:heal/1)
    for action in ("shutdown", "reboot"):
        assert await c1.node.rpc(c3.node.name, "ekka_cluster", "heal", [A(action)]) == A("ok")
    await all_agree(clusters, converged(clusters))


async def test_autoclean_force_leaves_a_member_down_past_the_expiry(members: Members) -> None:
    expiry_ms = 800
    clusters = await form(members, 3, autoclean_ms=expiry_ms)
    c1, c2, c3 = clusters
    dead = c3.node.name
    rest = [c1, c2]
    with LogWatch("pyekka.cluster.autoclean") as logs:
        down_at = time.perf_counter()
        await members.stop(dead)
        await all_agree(rest, lambda c: c.stopped_nodes() == [dead])
        await logs.wait(f"autoclean: {dead.name} was down")
        cleaned_after = time.perf_counter() - down_at
    await all_agree(rest, lambda c: dead not in c.db_nodes() and c.membership.lookup(dead) is None)
    print(
        f"\nautoclean ({expiry_ms} ms): force-left {cleaned_after:.2f} s after the node went down"
    )
    assert cleaned_after > expiry_ms / 1000
    assert dead in members.monitor(c1).autoclean.cleaned + members.monitor(c2).autoclean.cleaned
    await all_agree(rest, converged(rest))
    # back again, the node learns from its old peers that it was removed
    c3 = await members.start(dead.name, autoclean_ms=expiry_ms)
    await all_agree([c3], converged([c3]))
    await all_agree(rest, converged(rest))


async def test_a_node_autocleaned_while_cut_off_joins_back(members: Members) -> None:
    """Both sides of a long cut autoclean each other; once the network is back, the
    lone node joins the others again: its stale view (the others removed) must not
    reach them."""
    clusters = await form(members, 3, autoclean_ms=600, autoheal=False)
    c1, c2, c3 = clusters
    net = members.partition(clusters)
    await cut_off(net, [c1, c2], [c3])
    await all_agree([c1, c2], lambda c: c.db_nodes() == names([c1, c2]))
    await all_agree([c3], lambda c: c.db_nodes() == [c3.node.name])
    await net.heal()
    assert await c3.join(c1.node.name) is True
    await all_agree(clusters, converged(clusters))


async def test_a_cut_link_is_refused_both_ways_until_restored(make_py: Any) -> None:
    n1, n2, n3 = [await make_py(prefix="cut") for _ in range(3)]
    assert await n1.connect(n2.name) and await n1.connect(n3.name)
    net = Partition([n1, n2, n3])
    pid2 = n2.spawn(_idle).pid
    loop = asyncio.get_running_loop()
    watched: asyncio.Future[None] = loop.create_future()
    watched_down: asyncio.Future[Any] = loop.create_future()

    async def watcher(proc: Any) -> None:
        ref = proc.monitor(pid2)
        watched.set_result(None)
        watched_down.set_result(await proc.receive(proc.is_down_of(ref), timeout=10))

    n1.spawn(watcher)
    await watched
    net.cut(n1, n2)
    assert net.cut_pairs == net_pairs(n1, n2)
    down = await watched_down  # the monitor of a process over there fires
    assert down[4] == A("noconnection")
    assert n2.name not in n1.nodes() and n1.name not in n2.nodes()
    for a, b in ((n1, n2), (n2, n1)):
        with pytest.raises(ConnectError) as err:
            await a.connect_or_raise(b.name)
        assert err.value.reason is ConnectFailure.NOT_ALLOWED
        assert not await a.ping(b.name)
    n1.send((A("nobody"), n2.name), A("dropped"))  # dropped, no error, no connection
    assert n2.name not in n1.nodes()
    # the other links are untouched
    assert n3.name in n1.nodes() and await n2.ping(n3.name)
    assert await net.heal() == net_pairs(n1, n2)
    assert n2.name in n1.nodes() and await n2.ping(n1.name)
    assert net.cut_pairs == []


def net_pairs(a: Node, b: Node) -> list[tuple[Atom, Atom]]:
    first, second = sorted((a.name, b.name), key=lambda n: n.name)
    return [(first, second)]


async def _idle(proc: Any) -> None:
    await proc.receive()
