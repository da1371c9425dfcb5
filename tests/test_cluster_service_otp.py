"""The membership service and the RPC surface against real OTP 25/28 nodes.

The OTP node runs ``pyekka_ekka_probe`` (``erl_interop``), registered as
``ekka_membership``: it records the casts a pyekka node sends to a genuine ekka
node, casts genuine-shaped ``{ping, #member{}}``/``{pong, ...}`` to it, and asks the
VM itself to check the records it gets (8-tuple, 16-byte guid, and the hash
``erlang:phash2({Node, Guid}, 4294967295)`` computed by the VM).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster, ClusterError
from pyekka.cluster.events import NodeEvent
from pyekka.cluster.member import Member, MemberStatus, MnesiaStatus
from pyekka.node.node import Node
from pyekka.term.types import Atom, exact_equal
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import next_number

pytestmark = pytest.mark.otp

A = Atom


def q(node: Atom) -> str:
    return f"'{node.name}'"


@pytest.fixture
async def probe(erl: OtpNode) -> AsyncIterator[OtpNode]:
    """The shared OTP node with a fresh probe registered as ``ekka_membership``."""
    await erl.aeval("pyekka_ekka_probe:stop()")
    assert await erl.aeval("pyekka_ekka_probe:start(#{auto_pong => true})") == A("ok")
    yield erl
    await erl.aeval("pyekka_ekka_probe:stop()")


@pytest.fixture
async def cluster(make_py: Any, tmp_path: Path) -> AsyncIterator[Cluster]:
    node: Node = await make_py()
    c = Cluster(node, tmp_path / "data", "probe-test")
    await c.start()
    yield c
    await c.stop()


async def vm_check(erl: OtpNode) -> dict[str, Any]:
    """Let the VM check the member record of the first pong the probe got."""
    checked = await erl.aeval(
        "[{pong, M} | _] = pyekka_ekka_probe:wait_casts(pong, 1, 10000), "
        "pyekka_ekka_probe:check_member(M)"
    )
    return {k.name: v for k, v in checked.items()}


async def test_ping_is_answered_with_a_genuine_pong(probe: OtpNode, cluster: Cluster) -> None:
    me = cluster.node.name
    await probe.aeval(f"pyekka_ekka_probe:ping({q(me)})")
    pongs = await probe.aeval("pyekka_ekka_probe:wait_casts(pong, 1, 10000)")
    [(tag, record)] = pongs
    assert tag == A("pong")
    assert exact_equal(record, cluster.local_member().to_term())
    checked = await vm_check(probe)
    assert checked == {
        "record": True,
        "node_is_atom": True,
        "addr": A("undefined"),
        "guid_size": 16,
        "hash_by_vm": cluster.local_member().hash,
        "hash_matches": True,
        "status": A("up"),
        "mnesia": A("running"),
        "ltime_ok": True,
    }
    # the probe is stored with pyekka's view of it: not a db node of this cluster
    probe_member = Member.from_term(await probe.aeval("pyekka_ekka_probe:member()"))
    await cluster.wait_for(lambda: cluster.membership.lookup(probe.atom) is not None, 10)
    stored = cluster.membership.lookup(probe.atom)
    assert stored is not None
    assert (stored.guid, stored.hash, stored.status, stored.mnesia) == (
        probe_member.guid,
        probe_member.hash,
        MemberStatus.UP,
        MnesiaStatus.NOT_DB,
    )
    members = await probe.aeval(f"rpc:call({q(me)}, ekka_membership, members, [])")
    assert [m[1] for m in members] == sorted([me, probe.atom], key=lambda a: a.name)
    stored_term = next(m for m in members if m[1] == probe.atom)
    assert stored_term[:6] == probe_member.to_term()[:6] and stored_term[6] is False


async def test_rpc_surface_shapes(probe: OtpNode, cluster: Cluster) -> None:
    me = q(cluster.node.name)
    local = await probe.aeval(
        f"M = rpc:call({me}, ekka_membership, local_member, []), "
        "{M, pyekka_ekka_probe:check_member(M)}"
    )
    record, checked = local
    assert exact_equal(record, cluster.local_member().to_term())
    assert checked[A("hash_matches")] is True and checked[A("guid_size")] == 16
    name = cluster.node.name
    assert await probe.aeval(f"rpc:call({me}, ekka_mnesia, cluster_view, [])") == ([name], [])
    # a genuine caller is never told `true`: it would delete its schema to join us
    assert await probe.aeval(f"rpc:call({me}, ekka_node, is_running, [ekka])") is False
    assert await probe.aeval(f"erpc:call({me}, ekka_node, is_running, [ekka])") is False
    status = await probe.aeval(
        f"[rpc:call({me}, ekka_mnesia, cluster_status, [N]) || N <- [{me}, node()]]"
    )
    assert status == [A("running"), False]
    info = await probe.aeval(f"rpc:call({me}, ekka, info, [])")
    assert set(info) == {A("members"), A("running_nodes"), A("stopped_nodes"), A("partitions")}
    assert info[A("running_nodes")] == [name] and info[A("stopped_nodes")] == []
    undef = await probe.aeval(f"rpc:call({me}, ekka_mnesia, no_such_function, [])")
    assert undef[0] == A("badrpc") and undef[1][1][0] == A("undef")


async def test_announcements_and_bad_casts(probe: OtpNode, cluster: Cluster) -> None:
    me = q(cluster.node.name)
    stranger = A(f"stranger{next_number()}@127.0.0.1")
    events = cluster.events()
    await probe.aeval(f"pyekka_ekka_probe:ping({me})")
    await probe.aeval("pyekka_ekka_probe:wait_casts(pong, 1, 10000)")
    for msg in (
        "not_a_tuple",
        "{ping, {member, x}}",
        "{pong, {member, 1, 2, 3, 4, 5, 6, 7}}",
        '{leaving, <<"binary">>}',
        "{unknown, cast, here}",
        f"{{joining, {q(stranger)}}}",
        "{healing, node()}",
    ):
        await probe.aeval(f"pyekka_ekka_probe:cast({me}, {msg})")
    await cluster.wait_for(
        lambda: (
            cluster.membership.lookup(probe.atom).status  # type: ignore[union-attr]
            is MemberStatus.HEALING
        ),
        10,
    )
    assert cluster.membership.running
    joining = cluster.membership.lookup(stranger)
    assert joining == Member(stranger, status=MemberStatus.JOINING, ltime=joining.ltime)  # type: ignore[union-attr]
    wanted = {
        NodeEvent(MemberStatus.JOINING, stranger),
        NodeEvent(MemberStatus.HEALING, probe.atom),
    }
    seen: set[Any] = set()
    while not wanted <= seen:
        seen.add(await events.get(timeout=10))
    events.close()
    # a leaving entry is deleted when its node goes down
    await probe.aeval(f"pyekka_ekka_probe:cast({me}, {{leaving, node()}})")
    await cluster.wait_for(
        lambda: (
            cluster.membership.lookup(probe.atom).status  # type: ignore[union-attr]
            is MemberStatus.LEAVING
        ),
        10,
    )


async def test_pings_again_after_every_reconnection(probe: OtpNode, cluster: Cluster) -> None:
    me = q(cluster.node.name)
    await probe.aeval(f"pyekka_ekka_probe:ping({me})")
    await probe.aeval("pyekka_ekka_probe:wait_casts(pong, 1, 10000)")
    for round_ in (1, 2):
        assert await probe.aeval(f"erlang:disconnect_node({me})") is True
        await cluster.wait_for(
            lambda: (
                cluster.membership.lookup(probe.atom).status  # type: ignore[union-attr]
                is MemberStatus.DOWN
            ),
            10,
        )
        assert await probe.aeval(f"net_kernel:connect_node({me})") is True
        pings = await probe.aeval(f"pyekka_ekka_probe:wait_casts(ping, {round_}, 10000)")
        assert len(pings) == round_
        assert exact_equal(pings[-1], (A("ping"), cluster.local_member().to_term()))
        # the probe answered with a pong: up again
        await cluster.wait_for(
            lambda: (
                cluster.membership.lookup(probe.atom).status  # type: ignore[union-attr]
                is MemberStatus.UP
            ),
            10,
        )


async def test_leaving_is_announced_to_a_genuine_member(
    probe: OtpNode, make_py: Any, tmp_path: Path
) -> None:
    clusters = []
    for i in range(2):
        c = Cluster(await make_py(), tmp_path / str(i), "probe-test")
        await c.start()
        clusters.append(c)
    c1, c2 = clusters
    try:
        await c2.join(c1.node.name)
        await c2.wait_for(
            lambda: c2.running_nodes() == c1.running_nodes() and len(c2.running_nodes()) == 2, 10
        )
        await probe.aeval(f"pyekka_ekka_probe:ping({q(c2.node.name)})")
        await c2.wait_for(lambda: c2.membership.lookup(probe.atom) is not None, 10)
        await c2.leave()
        leaving = await probe.aeval("pyekka_ekka_probe:wait_casts(leaving, 1, 10000)")
        assert leaving == [(A("leaving"), c2.node.name)]
        # a join to a node that runs no ekka fails, and changes nothing there
        with pytest.raises(ClusterError) as err:
            await c1.join(probe.atom)
        assert err.value.reason == (A("node_down"), probe.atom)
        assert c1.genuine_nodes() == [] and c1.db_nodes() == [c1.node.name]
        assert await probe.aeval("pyekka_ekka_probe:calls()") == []
    finally:
        for c in clusters:
            await c.stop()


async def test_calls_from_a_genuine_node(probe: OtpNode, cluster: Cluster) -> None:
    me = q(cluster.node.name)
    await probe.aeval(f"pyekka_ekka_probe:ping({me})")
    await probe.aeval("pyekka_ekka_probe:wait_casts(pong, 1, 10000)")
    call = f"gen_server:call({{ekka_membership, {me}}}, "
    assert await probe.aeval(call + "{announce, heal})") == A("ok")
    healing = await probe.aeval("pyekka_ekka_probe:wait_casts(healing, 1, 10000)")
    assert healing == [(A("healing"), cluster.node.name)]
    assert await probe.aeval(call + "what_is_this)") == A("ignore")
    # ekka:monitor/1 from another node: events arrive as {membership, Event}
    await probe.aeval("catch unregister(pyekka_events), pyekka_ctl:collector(pyekka_events)")
    assert await probe.aeval(call + "{monitor, {membership, whereis(pyekka_events), true}})") == A(
        "ok"
    )
    await probe.aeval(f"pyekka_ekka_probe:cast({me}, {{joining, 'x@127.0.0.1'}})")
    got = await probe.aeval("pyekka_ctl:wait_messages(pyekka_events, 1, 10000)")
    assert got == [(A("membership"), (A("node"), A("joining"), A("x@127.0.0.1")))]
    await probe.aeval("exit(whereis(pyekka_events), kill)")
