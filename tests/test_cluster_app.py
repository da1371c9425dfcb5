"""``pyekka.cluster.app``: members assembled by :func:`start_member` (in one event loop).

The wiring ``pyekka start`` relies on: the services run and restart with the
cluster's, ``pyekka_ctl`` locks are held by the member and released when it stops,
and a member restarted from its data directory rejoins its cluster.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pyekka.cluster.app import MemberOptions, describe_event, start_member
from pyekka.cluster.events import MnesiaEvent, NodeEvent, PartitionEvent
from pyekka.cluster.lock import LockType
from pyekka.cluster.member import MemberStatus
from pyekka.cluster.service_autoheal import AutohealSettings
from pyekka.term.types import Atom
from pyekka.testing.clusters import form_cluster

A = Atom


def test_options_describe_themselves() -> None:
    assert MemberOptions().describe() == (
        "cluster ekka, no data dir, autoheal after 15s, autoclean off"
    )
    options = MemberOptions(data_dir="d", cluster_name="prod", autoheal=False, autoclean_ms=300_000)
    assert options.describe() == "cluster prod, data dir d, autoheal off, autoclean after 5m down"
    fast = MemberOptions(autoheal=AutohealSettings(delay_ms=1500))
    assert "autoheal after 1s500ms" in fast.describe()
    assert describe_event(NodeEvent(MemberStatus.DOWN, A("a@h"))) == "member a@h down"
    assert describe_event(MnesiaEvent("up", A("a@h"))) == "db a@h up"
    assert describe_event(PartitionEvent("healed", A("a@h"))) == "partition with a@h healed"


async def test_members_wire_services_hold_ctl_locks_and_rejoin(
    make_py: Any, tmp_path: Path
) -> None:
    n1, n2 = await make_py(), await make_py()
    events: list[Any] = []
    options = MemberOptions(autoheal=2000, autoclean_ms=60_000)
    m1 = await start_member(n1, MemberOptions(data_dir=tmp_path / "1", autoheal=2000))
    m2 = await start_member(n2, options, on_event=events.append)
    try:
        assert m1.cluster.running and m1.node_monitor.running
        assert m1.locker_service.names() == [A("ekka_locker")]
        assert m2.node_monitor.autoheal is not None
        assert m2.node_monitor.autoheal.settings.delay_ms == 2000
        assert m2.node_monitor.autoclean is not None
        assert await m2.cluster.join(n1.name) is True
        both = sorted([n1.name, n2.name], key=lambda a: a.name)
        await m1.cluster.wait_for(lambda: m1.cluster.running_nodes() == both)
        await m2.cluster.wait_for(lambda: m2.cluster.running_nodes() == both)
        assert NodeEvent(MemberStatus.UP, n1.name) in events
        # the services restarted with the join: the locker and node monitor run again
        assert m2.node_monitor.running and m2.locker_service.names() == [A("ekka_locker")]

        # a ctl lock is held by a process of m1 that outlives the call
        granted = await m1.ctl.lock(b"res", A("all"))
        assert granted[0] is True and sorted(granted[1], key=lambda a: a.name) == both
        held = m2.locker_service.lookup(b"res")
        assert held is not None and held.owner.node == n1.name
        assert n1.runtime.is_alive(held.owner)
        refused = await m2.ctl.lock(b"res", A("all"))
        assert refused[0] is False
        assert await m2.ctl.unlock(b"res", A("all")) == (A("error"), A("not_locked"))

        # stopping the member releases it everywhere and ends its holder
        await m1.stop()
        assert m2.locker_service.lookup(b"res") is None
        assert not n1.runtime.is_alive(held.owner)
        assert n1.functions.lookup(A("pyekka_ctl"), A("status"), 0) is None
        await m2.cluster.wait_for(lambda: m2.cluster.stopped_nodes() == [n1.name])

        # restarted from its data directory, m1 rejoins without a join
        m1 = await start_member(n1, MemberOptions(data_dir=tmp_path / "1", autoheal=2000))
        await m2.cluster.wait_for(lambda: m2.cluster.running_nodes() == both)
        await m1.cluster.wait_for(lambda: m1.cluster.running_nodes() == both)
        status = m1.ctl.status()
        assert status[A("running_nodes")] == both and status[A("partitions")] == []
    finally:
        await m2.stop()
        await m1.stop()


async def test_a_ctl_lock_outlives_the_lease_that_kills_other_owners(make_py: Any) -> None:
    node = await make_py()
    member = await start_member(node, MemberOptions(lease_ms=100))
    try:
        assert member.ctl is not None
        assert await member.ctl.lock(b"x", A("local")) == (True, [node.name])
        held = member.locker_service.lookup(b"x")
        assert held is not None
        holder = node.runtime.process(held.owner)
        assert holder is not None
        # an ordinary owner taking a lock at the same time goes through the same lease
        # checks and is killed by them, as in ekka ...
        plain = node.spawn(_idle)
        ok, _ = await member.locker.acquire(b"y", LockType.LOCAL, owner=plain.pid)
        assert ok is True
        async with asyncio.timeout(10):
            assert await plain.wait() == A("killed")
        # ... while the ctl holder is pinned: still alive, still holding, until unlock
        assert holder.is_alive
        assert member.locker_service.lookup(b"x") == held
        assert member.locker_service.is_pinned(holder.pid) is True
        assert await member.ctl.unlock(b"x", A("local")) == (True, [node.name])
        assert member.locker_service.lookup(b"x") is None
        assert member.locker_service.is_pinned(holder.pid) is False
        assert await member.ctl.unlock(b"x", A("local")) == (A("error"), A("not_locked"))
    finally:
        await member.stop()


async def _idle(proc: Any) -> None:
    await proc.receive()


async def test_an_all_ctl_lock_outlives_the_lease_on_every_server(make_py: Any) -> None:
    nodes = [await make_py() for _ in range(3)]
    members = await form_cluster(nodes, MemberOptions(lease_ms=100))
    try:
        first = members[0]
        assert first.ctl is not None
        granted = await first.ctl.lock(b"q", A("all"))
        assert granted[0] is True and set(granted[1]) == {n.name for n in nodes}
        # a plain owner on the same node with an `all` lock is killed by the other
        # servers' lease checks (they ask its node first, and it is not pinned)
        plain = first.node.spawn(_idle)
        ok, _ = await first.locker.acquire(b"r", LockType.ALL, owner=plain.pid)
        assert ok is True
        async with asyncio.timeout(10):
            assert await plain.wait() == A("killed")
        for member in members:
            held = member.locker_service.lookup(b"q")
            assert held is not None and first.node.runtime.is_alive(held.owner)
        released = await first.ctl.unlock(b"q", A("all"))
        assert released[0] is True
        for member in members:
            assert member.locker_service.lookup(b"q") is None
    finally:
        for member in reversed(members):
            await member.stop()
