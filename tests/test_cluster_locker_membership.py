# ruff: noqa: F811 - test parameters are the fixtures imported from tests.otp_nodes
"""The locker wired to the real membership: a :class:`Cluster` starts and stops the
lock servers with its services, and a :class:`Locker` reads the cluster's members."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster
from pyekka.cluster.constants import EKKA_LOCKER
from pyekka.cluster.lock import LockType
from pyekka.cluster.locker import Locker
from pyekka.cluster.locker_core import lock_nodes
from pyekka.cluster.member import MemberStatus
from pyekka.cluster.service_locker import LockerService
from pyekka.node.node import Node
from pyekka.term.types import Atom
from tests.otp_nodes import COOKIE, HOST, ekka_base, next_number  # noqa: F401 - fixtures
from tests.test_cluster_locker_service import owner

WAIT = 15.0


@pytest.fixture
async def clusters(ekka_base: int) -> AsyncIterator[list[tuple[Cluster, LockerService]]]:
    started: list[tuple[Node, Cluster, LockerService]] = []
    try:
        for _ in range(3):
            node = Node(
                f"lkc{next_number()}@{HOST}",
                COOKIE,
                epmd=False,
                dist_base_port=ekka_base,
                dist_interface=HOST,
            )
            await node.start()
            cluster = Cluster(node, None, "locker-test")
            service = LockerService(node)
            cluster.add_service(service)
            started.append((node, cluster, service))
            await cluster.start()
        yield [(c, s) for _, c, s in started]
    finally:
        for node, cluster, _ in reversed(started):
            await cluster.stop()
            await node.stop()


def table(cluster: Cluster) -> list[tuple]:
    return [(m.node, m.guid, m.hash, m.status) for m in cluster.members()]


def agreed(clusters: list[Cluster], nodes: set[Atom]) -> bool:
    """Every member table lists ``nodes``, all up with a guid, and they are equal."""
    tables = [table(c) for c in clusters]
    first = tables[0]
    return (
        {row[0] for row in first} == nodes
        and all(row[1] is not None and row[3] is MemberStatus.UP for row in first)
        and all(t == first for t in tables)
    )


async def test_locks_follow_the_cluster_members(clusters: Any) -> None:
    (c1, s1), (c2, _), (c3, s3) = clusters
    assert s1.locker() is not None  # started with the cluster's services
    for c in (c2, c3):
        assert await c.join(c1.node.name)
    everyone = {c.node.name for c, _ in clusters}
    cs = [c for c, _ in clusters]
    # The last change happens on some cluster, whose waiter then sees the agreement.
    waiters = [asyncio.ensure_future(c.wait_for(lambda: agreed(cs, everyone), WAIT)) for c in cs]
    done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in pending:
        waiter.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for waiter in done:
        waiter.result()
    assert agreed(cs, everyone)
    for c, s in clusters:  # a join restarts the services, the lockers with them
        await c.wait_for(lambda s=s: s.locker() is not None, WAIT)

    lockers = [Locker(c.node, c) for c, _ in clusters]
    res = b"cluster-wide"
    for lock_type in (LockType.LEADER, LockType.QUORUM, LockType.ALL):
        expected = lock_nodes(lock_type, res, self_node=c1.node.name, members=c1.members())
        assert all(lk.nodes_for(res, lock_type) == expected for lk in lockers)
        if lock_type is LockType.LEADER:
            assert expected == [c1.leader()]
        a, b = owner(c2.node), owner(c3.node)
        granted = await lockers[1].acquire(res, lock_type, owner=a)
        assert granted[0] is True and set(granted[1]) == set(expected)
        assert (await lockers[2].acquire(res, lock_type, owner=b))[0] is False
        assert (await lockers[1].release(res, lock_type, owner=a))[0] is True
    assert all(s.locks() == [] for _, s in clusters)

    # Stopping the services (ekka stopped) drops the lockers, not their answers.
    await c3.stop_services()
    assert s3.locker() is None and c3.node.whereis(EKKA_LOCKER) is None
    reply = await c1.node.rpc(
        c3.node.name,
        "ekka_locker",
        "release_lock",
        [EKKA_LOCKER, (Atom("lock"), b"x", owner(c1.node).pid, 0, 0)],
    )
    assert reply == (True, [c3.node.name])
