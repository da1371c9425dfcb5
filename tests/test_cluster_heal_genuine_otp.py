"""A pyekka node that leads genuine ekka nodes heals them (issue 4), against real OTP
25/28 nodes that play genuine ekka 0.8.1.9 nodes without ekka or mnesia.

Each OTP node runs three ``erl_interop`` probes: ``pyekka_ekka_probe`` (its
``ekka_membership``, which answers pings with a member record and a genuine guid),
``pyekka_autoheal_probe`` (its ``ekka_node_monitor``: records casts, and does a genuine
``confirm_partition`` from that registered process) and ``pyekka_genuine_probe`` with
the stand-ins of ``erl_interop/src/ekka_genuine_probe/`` (``ekka_node:is_running/1``,
``ekka_mnesia:cluster_view/0`` answering a chosen view, ``ekka_cluster:heal/1``
recording who asked for what), on the code path of these VMs only.

Checked: ``ekka_node:is_running(ekka)`` is ``true`` only for a caller registered as
``ekka_node_monitor`` (and only while the services run); a pyekka leader with
``GENUINE`` guids (older than the probes) that takes a genuine report heals a clean
two-way split exactly as a genuine leader (the ``{heal_partition, SplitView}`` cast
and its coordinator are computed by the VM), and a three-way split itself (the heal
rpcs reach the minority only, shutdown before reboot); a ``DEFER`` node (never the
genuine nodes' leader) heals nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster
from pyekka.cluster.guid import GuidPolicy
from pyekka.cluster.service_autoheal import AutohealSettings
from pyekka.cluster.service_node_monitor import NodeMonitor
from pyekka.term.types import Atom
from pyekka.testing.otp import OtpError, OtpRuntime, compile_interop, interop_source_dir
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import LogWatch
from tests.test_cluster_partition_otp import lit, q
from tests.test_cluster_partition_python import fast_monitor

pytestmark = pytest.mark.otp

A = Atom
FAST = AutohealSettings(delay_ms=200, reboot_pause_ms=(10, 50), heal_rpc_timeout=10.0)
QUIET = {"confirm_delay_ms": 600_000, "autoheal": FAST}
"""A leader whose own node monitor never reports (the probes do)."""
STUBS_SRC = "ekka_genuine_probe"


@pytest.fixture(scope="session")
def stubs_ebin(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    otp_runtimes: list[OtpRuntime],
) -> Path:
    """The genuine stand-ins (modules named ``ekka_node`` ...), compiled once."""
    cache = getattr(request.config, "cache", None)
    out = cache.mkdir("pyekka_erl_interop") if cache else tmp_path_factory.mktemp("gs")
    try:
        return compile_interop(out, runtimes=otp_runtimes, src_dir=interop_source_dir() / STUBS_SRC)
    except OtpError as exc:
        pytest.skip(str(exc))


class Leader:
    """A pyekka node with a cluster and a fast node monitor."""

    def __init__(self, cluster: Cluster, monitor: NodeMonitor) -> None:
        self.cluster = cluster
        self.monitor = monitor

    @property
    def name(self) -> Atom:
        return self.cluster.node.name


@pytest.fixture
async def make_leader(make_py: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start pyekka nodes (cluster + node monitor); their services stop at the end."""
    started: list[Cluster] = []

    async def start(policy: GuidPolicy = GuidPolicy.GENUINE) -> Leader:
        node = await make_py(prefix="pl")
        cluster = Cluster(
            node,
            tmp_path / node.name.name,
            "heal-genuine",
            guid_policy=policy,
            genuine_refresh=0.5,
            rpc_timeout=5.0,
        )
        monitor = fast_monitor(**QUIET)
        cluster.add_service(monitor)
        await cluster.start()
        started.append(cluster)
        return Leader(cluster, monitor)

    try:
        yield start
    finally:
        for cluster in started:
            await cluster.stop()


@pytest.fixture
def make_genuine(make_otp: Any, stubs_ebin: Path) -> Callable[[int], Any]:
    """Start OTP nodes that play genuine nodes of one mnesia cluster (all running)."""

    async def start(count: int) -> list[OtpNode]:
        return await start_probes(
            [make_otp("-pa", str(stubs_ebin), prefix="gen") for _ in range(count)]
        )

    return start


async def start_probes(probes: list[OtpNode]) -> list[OtpNode]:
    """Start the probes on every node; the nodes."""
    everyone = lit(sorted((p.atom for p in probes), key=lambda a: a.name))
    for p in probes:
        assert await p.aeval("pyekka_ekka_probe:start(#{auto_pong => true})") == A("ok")
        assert await p.aeval("pyekka_autoheal_probe:start()") == A("ok")
        assert await p.aeval(f"pyekka_genuine_probe:start({{{everyone}, []}}, {everyone})") == A(
            "ok"
        )
    return probes


async def attach(leader: Leader, probes: list[OtpNode]) -> None:
    """Attach the leader to the probes' cluster; wait until it knows their guids."""
    c = leader.cluster
    assert await c.join(probes[0].atom) is True
    for p in probes:
        await p.aeval(f"pyekka_ekka_probe:ping({q(leader.name)})")
    names = {p.atom for p in probes}

    def known() -> bool:
        entries = [c.membership.lookup(n) for n in names]
        return all(e is not None and e.guid is not None for e in entries)

    await c.wait_for(known, 15)
    assert set(c.genuine_nodes()) == names


def view(running: list[OtpNode], stopped: list[OtpNode]) -> str:
    """A ``{Running, Stopped}`` expression (sorted lists, as cluster_view answers)."""

    def nodes(ps: list[OtpNode]) -> str:
        return lit(sorted((p.atom for p in ps), key=lambda a: a.name))

    return f"{{{nodes(running)}, {nodes(stopped)}}}"


async def set_views(sides: list[list[OtpNode]]) -> None:
    """Every probe's cluster view: running with its side, the others stopped."""
    for side in sides:
        others = [p for s in sides if s is not side for p in s]
        for p in side:
            assert await p.aeval(f"pyekka_genuine_probe:set_view({view(side, others)})") == A("ok")


async def test_is_running_is_true_for_a_genuine_node_monitor_only(
    make_leader: Any, erl: OtpNode
) -> None:
    leader = await make_leader()
    p = q(leader.name)
    await erl.aeval("pyekka_autoheal_probe:stop()")
    assert await erl.aeval("pyekka_autoheal_probe:start()") == A("ok")
    try:
        # the registered ekka_node_monitor: autoheal's report path
        assert await erl.aeval(f"pyekka_autoheal_probe:monitor_is_running({p})") is True
        # any other process: the join path (a `true` would wipe a genuine schema)
        assert await erl.aeval(f"rpc:call({p}, ekka_node, is_running, [ekka])") is False
        other = (
            "Self = self(), spawn(fun() -> register(ekka_membership, self()),"
            f" Self ! {{is_running, rpc:call({p}, ekka_node, is_running, [ekka])}} end),"
            " receive {is_running, R} -> R after 20000 -> timeout end"
        )
        assert await erl.aeval(other) is False
        # another application, even from the node monitor
        assert await erl.aeval(f"rpc:call({p}, ekka_node, is_running, [emqx])") is False
        # the services stopped (autoheal's shutdown): false for everyone
        await leader.cluster.stop_services()
        assert await erl.aeval(f"pyekka_autoheal_probe:monitor_is_running({p})") is False
        await leader.cluster.start_services()
        assert await erl.aeval(f"pyekka_autoheal_probe:monitor_is_running({p})") is True
        # the node monitor is gone: false again
        assert await erl.aeval("pyekka_autoheal_probe:stop()") == A("ok")
        assert await erl.aeval(f"rpc:call({p}, ekka_node, is_running, [ekka])") is False
    finally:
        await erl.aeval("pyekka_autoheal_probe:stop()")


async def test_a_pyekka_leader_heals_a_genuine_two_way_split_as_genuine_does(
    make_leader: Any, make_genuine: Any
) -> None:
    leader = await make_leader()  # first: its GENUINE guid is the oldest
    probes = await make_genuine(3)
    g1, g2, g3 = probes
    await attach(leader, probes)
    assert leader.cluster.leader() == leader.name  # and so for the genuine nodes
    await set_views([[g1, g2], [g3]])
    with LogWatch("pyekka.cluster.autoheal") as logs:
        assert await g3.aeval(f"pyekka_autoheal_probe:confirm_partition({q(leader.name)})") == A(
            "reported"
        )
        await logs.wait("autoheal (genuine nodes): keep")
    # what a genuine leader named like the pyekka node computes, in the VM
    views = [await g.aeval("ekka_mnesia:cluster_view()") for g in probes]
    sv = await g1.aeval(f"pyekka_autoheal_probe:split_view({lit(views)}, {q(leader.name)})")
    members = [await g.aeval("pyekka_ekka_probe:member()") for g in probes]
    coordinator = await g1.aeval(
        f"pyekka_autoheal_probe:coordinator({lit(sv[0][0])}, {lit(members)})"
    )
    assert coordinator in (g1.atom, g2.atom)
    target = next(g for g in probes if g.atom == coordinator)
    casts = await target.aeval("pyekka_autoheal_probe:wait_casts(heal_partition, 1, 10000)")
    assert casts == [(A("heal_partition"), sv)]
    # exactly once, to the coordinator only; no node asked to shut down by pyekka
    for g in probes:
        got = await g.aeval("pyekka_autoheal_probe:casts()")
        assert got == ([(A("heal_partition"), sv)] if g is target else [])
        assert await g.aeval("pyekka_genuine_probe:heals()") == []
    plans = leader.monitor.autoheal.genuine.plans  # type: ignore[union-attr]
    assert [(p.genuine, p.coordinator, p.reboot) for p in plans] == [
        (True, coordinator, (g3.atom,))
    ]


async def test_a_pyekka_leader_coordinates_a_genuine_three_way_split(
    make_leader: Any, make_genuine: Any
) -> None:
    leader = await make_leader()
    probes = await make_genuine(4)
    g1, g2, g3, g4 = probes
    await attach(leader, probes)
    await set_views([[g1, g2], [g3], [g4]])
    with LogWatch("pyekka.cluster.autoheal") as logs:
        for g in (g4, g3):
            assert await g.aeval(f"pyekka_autoheal_probe:confirm_partition({q(leader.name)})") == A(
                "reported"
            )
        await logs.wait("autoheal (genuine nodes): keep")
    heal = leader.monitor.autoheal.proc  # type: ignore[union-attr]
    me = leader.name
    for g in (g3, g4):  # the minority: shut down, then rebooted, by the pyekka node
        heals = await g.aeval("pyekka_genuine_probe:wait_heals(2, 15000)")
        assert heals == [(A("shutdown"), me), (A("reboot"), me)]
    if heal is not None:  # the heal process ends once its last rpc returned
        await asyncio.wait_for(heal.wait(), 10)
    assert leader.monitor.autoheal.proc is None  # type: ignore[union-attr]
    for g in probes:  # the kept side: untouched; nobody got a heal order cast
        if g in (g1, g2):
            assert await g.aeval("pyekka_genuine_probe:heals()") == []
        assert await g.aeval("pyekka_autoheal_probe:casts()") == []
    plans = leader.monitor.autoheal.genuine.plans  # type: ignore[union-attr]
    assert [(p.genuine, p.keep, p.reboot, p.coordinator) for p in plans] == [
        (False, (g1.atom, g2.atom), (g3.atom, g4.atom), me)
    ]


async def test_a_deferring_pyekka_node_never_heals_genuine_nodes(
    make_leader: Any, make_genuine: Any
) -> None:
    leader = await make_leader(GuidPolicy.DEFER)
    probes = await make_genuine(2)
    g1, g2 = probes
    await attach(leader, probes)
    assert leader.cluster.leader() in (g1.atom, g2.atom)  # a genuine node leads
    await set_views([[g1], [g2]])
    with LogWatch("pyekka.cluster.autoheal") as logs:
        assert await g2.aeval(f"pyekka_autoheal_probe:confirm_partition({q(leader.name)})") == A(
            "reported"
        )
        await logs.wait("I am not leader, but received partition report from")
    for g in probes:
        assert await g.aeval("pyekka_genuine_probe:heals()") == []
        assert await g.aeval("pyekka_autoheal_probe:casts()") == []
    assert leader.monitor.autoheal.genuine.plans == []  # type: ignore[union-attr]


async def test_heal_orders_from_elsewhere_never_reboot_a_genuine_node(
    make_leader: Any, make_genuine: Any
) -> None:
    leader = await make_leader()
    probes = await make_genuine(2)
    g1, g2 = probes
    await attach(leader, probes)
    p = q(leader.name)
    with LogWatch("pyekka.cluster.autoheal") as logs:
        # a genuine-shaped split view naming the pyekka node as coordinator ...
        sv = f"[{{[{p}], [{q(g1.atom)}]}}, {{[{q(g1.atom)}], [{p}]}}]"
        await g2.aeval(f"pyekka_autoheal_probe:heal_partition({p}, {sv})")
        await logs.wait("autoheal: not asking genuine nodes to shut down")
        # ... and ekka 0.8.1.14's order naming a genuine minority
        await g2.aeval(f"pyekka_autoheal_probe:heal_cluster({p}, [{q(g1.atom)}], [])")
        await logs.wait("Healing cluster partition")
    spared = [t for t in logs.texts() if t.startswith("autoheal: not asking genuine")]
    assert spared == [f"autoheal: not asking genuine nodes to shut down: {g1.atom.name}"] * 2
    assert leader.monitor.autoheal.proc is None  # type: ignore[union-attr]
    for g in probes:
        assert await g.aeval("pyekka_genuine_probe:heals()") == []
