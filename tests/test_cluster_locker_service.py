# ruff: noqa: F811 - test parameters are the fixtures imported from tests.otp_nodes
"""The locker service and client on Python-only clusters of 3 and 5 nodes.

Every node runs a :class:`LockerService` and a :class:`Locker` over one static member
table (the membership service is not involved). Node ``0`` has the oldest guid, so it
is ``leader()``. Waits for table changes go through ``LockerService.wait_for``, which
wakes on every change: no sleeping.

The helpers here (:func:`start_cluster`, :class:`PyCluster`, :func:`owner`) are also
used by the OTP and stress test modules of the locker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pyekka.cluster.constants import EKKA_LOCKER
from pyekka.cluster.lock import Lock, LockType, Piggyback
from pyekka.cluster.locker import Locker, LockRefused, StaticMembers
from pyekka.cluster.locker_core import MalformedReply, MergeMode
from pyekka.cluster.member import Member, MemberStatus
from pyekka.cluster.ring import quorum_count
from pyekka.cluster.service_locker import LockerService
from pyekka.node.node import Node
from pyekka.node.process import Process
from pyekka.term.types import Atom, Pid
from tests.otp_nodes import HOST, ekka_base, make_py, next_number  # noqa: F401 - fixtures

A = Atom
KILL, KILLED = A("kill"), A("killed")
BADRPC, EXIT_TAG, UNDEF = A("badrpc"), A("EXIT"), A("undef")
ERLANG, NODE_FN = A("erlang"), A("node")
STOP = A("stop")
WAIT = 10.0


def guid_of(rank: int) -> bytes:
    """A 16-byte guid; a smaller ``rank`` is older (``leader()`` is rank 0)."""
    return (rank + 1).to_bytes(8, "big") + bytes(8)


@dataclass
class PyCluster:
    """Python nodes, each with a locker service and a client over shared members."""

    nodes: list[Node]
    services: list[LockerService]
    lockers: list[Locker]
    members: StaticMembers
    owners: list[Process] = field(default_factory=list)

    def service_of(self, node: Atom) -> LockerService:
        return self.services[[n.name for n in self.nodes].index(node)]

    def holders(self, resource: Any, name: Atom = EKKA_LOCKER) -> dict[Atom, Pid]:
        """``node -> owner`` of every node whose table holds ``resource``."""
        out = {}
        for node, service in zip(self.nodes, self.services, strict=True):
            entry = service.lookup(resource, name)
            if entry is not None:
                out[node.name] = entry.owner
        return out

    async def wait_free(self, resource: Any, name: Atom = EKKA_LOCKER) -> None:
        for service in self.services:
            await service.wait_for(lambda s=service: s.lookup(resource, name) is None, WAIT)


async def start_cluster(
    make_py: Any,
    size: int,
    *,
    lease_ms: int = 15000,
    monitor_owners: bool = True,
    extra_members: Sequence[Member] = (),
    merge_mode: MergeMode = MergeMode.SAFE,
    prefix: str = "lk",
) -> PyCluster:
    """``size`` started Python nodes serving locks; node ``i`` has guid rank ``i``."""
    nodes = [await make_py(prefix) for _ in range(size)]
    members = StaticMembers(
        [Member.new(n.name, guid_of(i)) for i, n in enumerate(nodes)] + list(extra_members)
    )
    services = []
    for node in nodes:
        service = LockerService(node, lease_ms=lease_ms, monitor_owners=monitor_owners)
        await service.start()
        services.append(service)
    lockers = [Locker(n, members, merge_mode=merge_mode) for n in nodes]
    return PyCluster(nodes, services, lockers, members)


async def _wait_stop(proc: Process) -> None:
    await proc.receive(lambda m: m == STOP)


def owner(node: Node) -> Process:
    """A live process of ``node`` to own locks (ends on ``STOP``)."""
    return node.spawn(_wait_stop)


def node_set(result: Any) -> set[Any]:
    return set(result[1])


TYPES = list(LockType)


def expected_count(lock_type: LockType, size: int) -> int:
    return {
        LockType.LOCAL: 1,
        LockType.LEADER: 1,
        LockType.QUORUM: quorum_count(size),
        LockType.ALL: size,
    }[lock_type]


# -- acquire, re-acquire, refuse, release ------------------------------------------------


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize("lock_type", TYPES, ids=[t.value for t in TYPES])
async def test_acquire_reacquire_refuse_release(
    make_py: Any, size: int, lock_type: LockType
) -> None:
    c = await start_cluster(make_py, size)
    res = b"client-42"
    a = owner(c.nodes[0])
    # The contender lives on another node, except for local locks (one table).
    b_node = 0 if lock_type is LockType.LOCAL else 1
    b = owner(c.nodes[b_node])
    la, lb = c.lockers[0], c.lockers[b_node]
    nodes = la.nodes_for(res, lock_type)
    assert len(nodes) == expected_count(lock_type, size)
    if lock_type is LockType.LEADER:
        assert nodes == [c.nodes[0].name]

    granted = await la.acquire(res, lock_type, owner=a)
    assert granted[0] is True and node_set(granted) == set(nodes)
    assert c.holders(res) == dict.fromkeys(nodes, a.pid)
    created = {n: c.service_of(n).lookup(res).created for n in nodes}  # type: ignore[union-attr]

    again = await la.acquire(res, lock_type, owner=a.pid)
    assert again[0] is True and node_set(again) == set(nodes)
    # A re-acquire leaves the entry (and its lease) as it was.
    assert {n: c.service_of(n).lookup(res).created for n in nodes} == created  # type: ignore[union-attr]

    refused = await lb.acquire(res, lock_type, owner=b)
    assert refused[0] is False and node_set(refused) == set(nodes)
    assert c.holders(res) == dict.fromkeys(nodes, a.pid)  # the failed attempt released nothing

    assert (await lb.release(res, lock_type, owner=b))[0] is False
    assert c.holders(res) == dict.fromkeys(nodes, a.pid)
    released = await la.release(res, lock_type, owner=a)
    assert released[0] is True and node_set(released) == set(nodes)
    assert c.holders(res) == {}

    assert (await lb.acquire(res, lock_type, owner=b))[0] is True
    assert c.holders(res) == dict.fromkeys(nodes, b.pid)


async def test_default_owner_and_close(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    locker = c.lockers[2]
    first = await locker.acquire(b"r", LockType.ALL)
    assert first[0] is True
    pid = locker.owner_pid()
    assert set(c.holders(b"r").values()) == {pid}
    assert (await locker.acquire(b"r", LockType.ALL))[0] is True  # the same owner
    await locker.close()  # the default owner ends: its locks die with it
    await c.wait_free(b"r")


# -- owners dying ---------------------------------------------------------------------------


@pytest.mark.parametrize("lock_type", [LockType.QUORUM, LockType.ALL], ids=["quorum", "all"])
async def test_owner_death_releases_everywhere(make_py: Any, lock_type: LockType) -> None:
    c = await start_cluster(make_py, 5)
    holder = owner(c.nodes[3])
    res = b"dies-with-owner"
    assert (await c.lockers[3].acquire(res, lock_type, owner=holder))[0] is True
    held = c.holders(res)
    assert set(held.values()) == {holder.pid}
    c.nodes[3].runtime.exit(holder.pid, KILL)
    await c.wait_free(res)  # local (same node) and remote (MONITOR_P) owners alike
    assert all(not s.locker().watched() for s in c.services)  # type: ignore[union-attr]


async def test_owner_that_releases_is_no_longer_watched(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    holder = owner(c.nodes[1])
    assert (await c.lockers[1].acquire(b"a", LockType.ALL, owner=holder))[0] is True
    assert (await c.lockers[1].acquire(b"b", LockType.ALL, owner=holder))[0] is True
    for s in c.services:
        await s.wait_for(lambda s=s: s.locker().watched() == [holder.pid], WAIT)  # type: ignore[union-attr]
    assert (await c.lockers[1].release(b"a", LockType.ALL, owner=holder))[0] is True
    assert all(s.locker().watched() == [holder.pid] for s in c.services)  # type: ignore[union-attr]
    assert (await c.lockers[1].release(b"b", LockType.ALL, owner=holder))[0] is True
    for s in c.services:
        await s.wait_for(lambda s=s: s.locker().watched() == [], WAIT)  # type: ignore[union-attr]


async def test_genuine_mode_keeps_a_dead_owners_lock_until_the_lease(make_py: Any) -> None:
    """``monitor_owners=False`` is ekka 0.8.1.9: a dead owner's entry goes only when a
    lease check monitors the owner (and gets ``noproc``)."""
    c = await start_cluster(make_py, 3, lease_ms=150, monitor_owners=False)
    holder = owner(c.nodes[0])
    assert (await c.lockers[0].acquire(b"x", LockType.ALL, owner=holder))[0] is True
    c.nodes[0].runtime.exit(holder.pid, KILL)
    await holder.wait()
    assert set(c.holders(b"x")) == {n.name for n in c.nodes}
    assert all(not s.locker().watched() for s in c.services)  # type: ignore[union-attr]
    await c.wait_free(b"x")


# -- lease and forced release ------------------------------------------------------------------


@pytest.mark.parametrize("remote", [False, True], ids=["local-owner", "remote-owner"])
async def test_lease_kills_a_holder_that_keeps_its_lock(make_py: Any, remote: bool) -> None:
    c = await start_cluster(make_py, 3, lease_ms=100)
    holder_node = 1 if remote else 0
    holder = owner(c.nodes[holder_node])
    res = b"held-too-long"
    granted = await c.lockers[0].acquire(res, LockType.LEADER, owner=holder.pid)
    assert granted == (True, [c.nodes[0].name])
    # Monitored at the first check past the lease, killed at the next one.
    reason = await asyncio.wait_for(holder.wait(), WAIT)
    assert reason == KILLED
    await c.wait_free(res)


async def test_reacquire_keeps_the_lease_running(make_py: Any) -> None:
    c = await start_cluster(make_py, 3, lease_ms=100)
    holder = owner(c.nodes[2])
    assert (await c.lockers[2].acquire(b"r", LockType.QUORUM, owner=holder))[0] is True
    nodes = c.lockers[2].nodes_for(b"r", LockType.QUORUM)
    servers = [c.service_of(n).locker() for n in nodes]
    for server in servers:  # a lease check has seen the entry: the owner is tracked
        await server.service.wait_for(lambda s=server: holder.pid in s.table.tracked(), WAIT)  # type: ignore[union-attr]
    # Re-acquiring does not renew ``created``: the holder is killed all the same.
    assert (await c.lockers[2].acquire(b"r", LockType.QUORUM, owner=holder))[0] is True
    assert await asyncio.wait_for(holder.wait(), WAIT) == KILLED
    await c.wait_free(b"r")


async def test_force_release(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    a, b = owner(c.nodes[0]), owner(c.nodes[1])
    assert (await c.lockers[0].acquire(b"r", LockType.ALL, owner=a))[0] is True
    forced = c.services[2].force_release(b"r")
    assert forced is not None and forced.owner == a.pid and forced.counter == 1
    assert c.services[2].force_release(b"r") is None
    assert set(c.holders(b"r")) == {c.nodes[0].name, c.nodes[1].name}
    refused = await c.lockers[1].acquire(b"r", LockType.ALL, owner=b)
    assert refused[0] is False and node_set(refused) == {c.nodes[0].name, c.nodes[1].name}
    for s in c.services[:2]:
        s.force_release(b"r")
    assert (await c.lockers[1].acquire(b"r", LockType.ALL, owner=b))[0] is True
    assert set(c.holders(b"r").values()) == {b.pid}
    # The forced-out owner is not watched any more by the nodes that let it go.
    for s in c.services:
        await s.wait_for(lambda s=s: a.pid not in s.locker().watched(), WAIT)  # type: ignore[union-attr]


# -- piggyback -----------------------------------------------------------------------------------


async def test_piggyback(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    for node in c.nodes:
        node.register_function("demo", "tag", lambda x, n=node: (n.name, x))
    a, b = owner(c.nodes[0]), owner(c.nodes[1])
    names = [n.name for n in c.nodes]

    on_node = Piggyback(ERLANG, NODE_FN)
    granted = await c.lockers[0].acquire(b"p", LockType.ALL, on_node, owner=a)
    assert granted[0] is True and set(granted[1]) == {(n, n) for n in names}

    # Applied on refusal too; a raw {M, F, Args} tuple works as well.
    refused = await c.lockers[1].acquire(b"p", LockType.ALL, (A("demo"), A("tag"), [7]), owner=b)
    assert refused[0] is False
    assert set(refused[1]) == {(n, (n, 7)) for n in names}

    local = await c.lockers[1].acquire(b"q", LockType.LOCAL, on_node, owner=b)
    assert local == (True, [(names[1], names[1])])
    leader = await c.lockers[2].acquire(b"q", LockType.LEADER, on_node, owner=b)
    assert leader == (True, [(names[0], names[0])])


async def test_failing_piggyback_is_a_refusal_and_releases(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    a = owner(c.nodes[0])
    bad = Piggyback(A("nomod"), A("nofun"), (1,))
    result = await c.lockers[0].acquire(b"f", LockType.ALL, bad, owner=a)
    assert result[0] is False and len(result[1]) == 3
    for reply in result[1]:
        assert reply[0] == BADRPC and reply[1][0] == EXIT_TAG and reply[1][1][0] == UNDEF
    await c.wait_free(b"f")  # stored by the request, then released by the caller


# -- partial failure, bad replies, unreachable nodes ----------------------------------------------


async def test_partial_failure_releases_the_granted_nodes(make_py: Any) -> None:
    c = await start_cluster(make_py, 5)
    res = b"partial"
    a, b = owner(c.nodes[0]), owner(c.nodes[4])
    nodes = c.lockers[0].nodes_for(res, LockType.QUORUM)
    assert len(nodes) == 3
    blocker = nodes[1]
    blocker_locker = c.lockers[[n.name for n in c.nodes].index(blocker)]
    assert (await blocker_locker.acquire(res, LockType.LOCAL, owner=b))[0] is True

    result = await c.lockers[0].acquire(res, LockType.QUORUM, owner=a)
    assert result == (False, [blocker])
    assert c.holders(res) == {blocker: b.pid}  # released where it had been granted


async def test_badrpc_replies_never_crash_the_caller(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    plain = await make_py("nolocker")  # up and connected, but serves no locks
    c.members.set([*c.members.members(), Member.new(plain.name, guid_of(9))])
    a = owner(c.nodes[0])
    result = await c.lockers[0].acquire(b"r", LockType.ALL, owner=a)
    assert result[0] is False and len(result[1]) == 1
    bad = result[1][0]
    assert bad[0] == BADRPC and bad[1][1][0] == UNDEF
    assert c.holders(b"r") == {}  # released on the three that granted

    genuine = Locker(c.nodes[1], c.members, merge_mode=MergeMode.GENUINE)
    with pytest.raises(MalformedReply):
        await genuine.acquire(b"r", LockType.ALL, owner=owner(c.nodes[1]))


async def test_unreachable_members_are_ignored_as_ekka_does(make_py: Any) -> None:
    ghost = A(f"ghost{next_number()}@{HOST}")  # a member nobody runs
    c = await start_cluster(make_py, 3, extra_members=[Member.new(ghost, guid_of(8))])
    a = owner(c.nodes[0])
    result = await c.lockers[0].acquire(b"r", LockType.ALL, owner=a)
    assert result[0] is True and node_set(result) == {n.name for n in c.nodes}
    assert (await c.lockers[0].release(b"r", LockType.ALL, owner=a))[0] is True

    # A leader nobody runs: the rpc fails and the lock is refused.
    c.members.set([*c.members.members()[:3], Member.new(ghost, bytes(16))])
    assert c.lockers[0].nodes_for(b"r", LockType.LEADER) == [ghost]
    result = await c.lockers[0].acquire(b"r", LockType.LEADER, owner=a)
    assert result == (False, [(ghost, (BADRPC, A("nodedown")))])


async def test_down_members_take_no_part_but_still_lead(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    members = c.members.members()
    c.members.set([Member.new(members[0].node, guid_of(0), status=MemberStatus.DOWN), *members[1:]])
    locker = c.lockers[1]
    assert set(locker.nodes_for(b"r", LockType.ALL)) == {c.nodes[1].name, c.nodes[2].name}
    assert locker.nodes_for(b"r", LockType.LEADER) == [c.nodes[0].name]
    result = await locker.acquire(b"r", LockType.QUORUM)
    assert node_set(result) <= {c.nodes[1].name, c.nodes[2].name} and result[0] is True


async def test_nobody_to_ask_is_a_refusal(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    c.members.set([])
    assert await c.lockers[0].acquire(b"r", LockType.ALL) == (False, [])
    assert await c.lockers[0].acquire(b"r", LockType.LEADER) == (False, [])
    genuine = Locker(c.nodes[0], c.members, merge_mode=MergeMode.GENUINE)
    assert await genuine.acquire(b"r", LockType.QUORUM) == (True, [])  # ekka 0.8.1.9's quirk


# -- the context manager ------------------------------------------------------------------------


async def test_lock_context_manager(make_py: Any) -> None:
    c = await start_cluster(make_py, 5)
    res = b"ctx"
    async with c.lockers[0].lock(res, LockType.QUORUM) as held:
        nodes = c.lockers[0].nodes_for(res, LockType.QUORUM)
        assert held.result is not None and held.result[0] is True
        assert set(held.nodes) == set(nodes)
        assert c.holders(res) == dict.fromkeys(nodes, held.owner)
        with pytest.raises(LockRefused) as refused:
            async with c.lockers[3].lock(res, LockType.QUORUM):
                pytest.fail("entered a lock held by another owner")
        assert refused.value.result == (False, refused.value.result[1])
        assert set(refused.value.result[1]) == set(nodes)
        assert not held.lost
    assert held.released is not None and held.released[0] is True
    assert c.holders(res) == {}

    with pytest.raises(RuntimeError, match="inside"):
        async with c.lockers[1].lock(res, LockType.ALL) as held:
            assert set(c.holders(res)) == {n.name for n in c.nodes}
            raise RuntimeError("inside")
    assert c.holders(res) == {}


async def test_lock_context_manager_lost_to_the_lease(make_py: Any) -> None:
    c = await start_cluster(make_py, 3, lease_ms=100)
    async with c.lockers[1].lock(b"slow", LockType.ALL) as held:
        holder = c.nodes[1].runtime.process(held.owner)
        assert holder is not None
        assert await asyncio.wait_for(holder.wait(), WAIT) == KILLED
        assert held.lost
        await c.wait_free(b"slow")
    assert held.released is not None and held.released[0] is True  # nothing left to release


# -- locker names, the RPC surface -----------------------------------------------------------------


async def test_named_lockers_are_separate_tables(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    cm = A("emqx_cm_locker")
    for s in c.services[:2]:
        s.start_locker(cm)
    cm_lockers = [Locker(n, c.members, "emqx_cm_locker") for n in c.nodes]
    a, b = owner(c.nodes[0]), owner(c.nodes[1])
    assert (await c.lockers[0].acquire(b"id", LockType.ALL, owner=a))[0] is True
    # Same resource, other locker: free. Node 2 runs no emqx_cm_locker: it grants
    # without storing, as a genuine node whose locker is not started.
    assert (await cm_lockers[1].acquire(b"id", LockType.ALL, owner=b))[0] is True
    assert c.holders(b"id", cm) == {c.nodes[0].name: b.pid, c.nodes[1].name: b.pid}
    assert c.services[2].locker(cm) is None
    assert c.services[0].names() == [EKKA_LOCKER, cm]

    await c.services[0].stop_locker(cm)  # the table goes with its process
    assert c.services[0].lookup(b"id", cm) is None
    assert c.nodes[0].whereis(cm) is None
    other = owner(c.nodes[2])
    assert (await cm_lockers[2].acquire(b"id", LockType.LOCAL, owner=other))[0] is True


async def test_rpc_surface(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    caller, server = c.nodes[1], c.nodes[0]
    a, b = owner(caller), owner(caller)

    def lock(o: Process, created: int = 1795303282879) -> tuple:
        return Lock.request(b"r2", o.pid, created).to_term()

    async def call(fn: str, *args: Any) -> Any:
        return await caller.rpc(server.name, "ekka_locker", fn, list(args))

    me = server.name
    assert await call("acquire_lock", EKKA_LOCKER, lock(a), A("undefined")) == (True, [me])
    assert await call("acquire_lock", EKKA_LOCKER, lock(a, 5), A("undefined")) == (True, [me])
    assert await call("acquire_lock", EKKA_LOCKER, lock(b)) is False  # acquire_lock/2
    assert await call("acquire_lock", A("nolocker"), lock(b), A("undefined")) == (True, [me])
    assert await call("acquire_lock", EKKA_LOCKER, lock(a), (ERLANG, NODE_FN, [])) == (
        True,
        [(me, me)],
    )
    stored = c.services[0].lookup(b"r2")
    assert stored == Lock(b"r2", a.pid, 1, 1795303282879)
    assert await call("release_lock", EKKA_LOCKER, lock(b)) == (False, [me])
    assert await call("release_lock", EKKA_LOCKER, lock(a)) == (True, [me])
    assert await call("release_lock", EKKA_LOCKER, lock(a)) == (True, [me])
    assert await call("release_lock", A("nolocker"), lock(a)) == (True, [me])

    bad = await call(
        "acquire_lock", EKKA_LOCKER, (A("lock"), b"r", "not a pid", 0, 0), A("undefined")
    )
    assert bad[0] == BADRPC and bad[1][1][0] == A("function_clause")
    bad = await call("acquire_lock", EKKA_LOCKER, lock(a), (ERLANG,))
    assert bad[0] == BADRPC and bad[1][1][0] == A("function_clause")


async def test_process_info_for_lease_checks(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    o = owner(c.nodes[0])
    items = [A("status"), A("message_queue_len"), A("current_stacktrace")]
    info = await c.nodes[1].rpc(c.nodes[0].name, "erlang", "process_info", [o.pid, items])
    assert info == [
        (A("status"), A("waiting")),
        (A("message_queue_len"), 0),
        (A("current_stacktrace"), []),
    ]
    o.deliver(STOP)
    await o.wait()
    gone = await c.nodes[1].rpc(c.nodes[0].name, "erlang", "process_info", [o.pid, items])
    assert gone == A("undefined")
    await c.services[0].stop(withdraw=True)
    assert c.nodes[0].functions.lookup(ERLANG, A("process_info"), 2) is None
    assert c.nodes[0].functions.lookup(EKKA_LOCKER, A("acquire_lock"), 3) is None
    assert c.nodes[0].whereis(EKKA_LOCKER) is None


async def test_a_stopped_service_answers_as_a_node_whose_locker_is_down(make_py: Any) -> None:
    c = await start_cluster(make_py, 3)
    a = owner(c.nodes[0])
    assert (await c.lockers[0].acquire(b"r", LockType.ALL, owner=a))[0] is True
    await c.services[1].stop()  # ekka stopped there: the locks go, the answers stay
    assert c.nodes[1].whereis(EKKA_LOCKER) is None
    assert c.services[1].lookup(b"r") is None
    b = owner(c.nodes[2])
    result = await c.lockers[2].acquire(b"r", LockType.ALL, owner=b)
    assert result[0] is False and node_set(result) == {c.nodes[0].name, c.nodes[2].name}
    granted = await c.lockers[2].acquire(b"s", LockType.ALL, owner=b)
    assert granted[0] is True and node_set(granted) == {n.name for n in c.nodes}
    assert c.services[1].lookup(b"s") is None  # granted without storing
    await c.services[1].start()  # started again: an empty table
    assert c.services[1].locks() == [] and c.nodes[1].whereis(EKKA_LOCKER) is not None


async def test_the_locker_process_survives_odd_messages_and_stops_on_request(
    make_py: Any,
) -> None:
    c = await start_cluster(make_py, 2)
    server = c.services[0].locker()
    assert server is not None and server.process is not None
    a = owner(c.nodes[0])
    assert (await c.lockers[0].acquire(b"r", LockType.LOCAL, owner=a))[0] is True
    target = (EKKA_LOCKER, c.nodes[0].name)
    for odd in ["junk", (A("$gen_call"), "not a from", STOP), (A("$gen_cast"), A("hello"))]:
        c.nodes[1].send(target, odd)

    async def ask(proc: Process, request: Any) -> Any:
        return await proc.call(target, request)

    assert await c.nodes[1].run(ask, A("what")) == A("ignore")  # as ekka answers
    assert server.alive and c.services[0].lookup(b"r") is not None
    assert await c.nodes[1].run(ask, STOP) == A("ok")
    await server.process.wait()
    assert c.services[0].locker() is None and c.services[0].lookup(b"r") is None
