"""A pyekka node heals a real mnesia partition of GENUINE ekka 0.8 nodes (issue 4).

Run only when ``PYEKKA_EKKA_EBIN`` names genuine ekka's beams (see
``tests/test_cluster_service_ekka.py``), on runtimes with mnesia (OTP 25 here).

A pyekka node P is started first with ``GuidPolicy.GENUINE``, so its guid is the
oldest: it is ``leader()`` on every genuine node once attached to them. A real mnesia
partition is made between genuine nodes (``erlang:disconnect_node/1``, then
``net_kernel:connect_node/1``: mnesia raises ``inconsistent_database``); their node
monitors confirm it after 3 s and report to P (rpc ``ekka_node:is_running(P, ekka)``
from ``ekka_node_monitor`` is ``true``). Checked: P heals a two-way split through the
genuine coordinator (``{heal_partition, SplitView}``) and a three-way split as the
coordinator itself; afterwards every genuine node runs mnesia with the others again
and their tables are intact.
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
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode
from tests.genuine_ekka import GENUINE_MARKS, genuine_ekka_starter, q
from tests.otp_nodes import LogWatch

pytestmark = GENUINE_MARKS

A = Atom
RUNNING_DB = "lists:sort(mnesia:system_info(running_db_nodes))"
TABLE = "pyekka_heal"


HEAL_PROCESS_ENDED = (
    "State = sys:get_state(ekka_node_monitor),"
    " case ekka_autoheal:proc(element(4, State)) of undefined -> true;"
    "   Proc -> Ref = erlang:monitor(process, Proc),"
    "     receive {'DOWN', Ref, process, Proc, _} -> true after 20000 -> false end"
    " end"
)
"""On a genuine node: ``true`` once its autoheal heal process (if any) has ended."""


def names(nodes: list[OtpNode]) -> list[Atom]:
    return sorted((n.atom for n in nodes), key=lambda a: a.name)


@pytest.fixture
def make_ekka(otp: OtpRuntime, make_otp: Any, tmp_path: Path) -> Callable[[], OtpNode]:
    """Start an OTP node running genuine ekka (mnesia in a fresh directory; global
    does not cut other connections when one is lost, so the test decides who sees
    whom)."""
    return genuine_ekka_starter(
        otp, make_otp, tmp_path, "-kernel", "prevent_overlapping_partitions", "false"
    )


@pytest.fixture
async def leader(make_py: Any, tmp_path: Path) -> AsyncIterator[tuple[Cluster, NodeMonitor]]:
    """P: started before any genuine node, with GENUINE guids and a 1 s autoheal delay."""
    node = await make_py(prefix="pl")
    cluster = Cluster(
        node, tmp_path / "p", "heal", guid_policy=GuidPolicy.GENUINE, genuine_refresh=0.5
    )
    monitor = NodeMonitor(
        autoheal=AutohealSettings(delay_ms=1000, heal_rpc_timeout=30.0), heartbeat_ms=(500, 1000)
    )
    cluster.add_service(monitor)
    await cluster.start()
    try:
        yield cluster, monitor
    finally:
        await cluster.stop()


async def genuine_cluster(make_ekka: Callable[[], OtpNode], count: int) -> list[OtpNode]:
    """``count`` genuine nodes in one mnesia cluster, with a replicated table."""
    nodes = [make_ekka() for _ in range(count)]
    for e in nodes[1:]:
        assert await e.aeval(f"ekka:join({q(nodes[0].atom)})") == A("ok")
    everyone = "[" + ", ".join(q(n) for n in names(nodes)) + "]"
    assert await nodes[0].aeval(f"mnesia:create_table({TABLE}, [{{disc_copies, {everyone}}}])") == (
        A("atomic"),
        A("ok"),
    )
    write = f"mnesia:transaction(fun() -> mnesia:write({{{TABLE}, k, v}}) end)"
    assert await nodes[0].aeval(write) == (A("atomic"), A("ok"))
    return nodes


async def attach(p: Cluster, nodes: list[OtpNode]) -> None:
    """Attach P; once it heard every genuine node's pong (a genuine node pongs after
    adding the pinger), P is leader() on every genuine node."""
    assert await p.join(nodes[0].atom) is True
    assert p.genuine_nodes() == names(nodes)

    def known() -> bool:
        entries = [p.membership.lookup(n) for n in names(nodes)]
        return all(e is not None and e.guid is not None for e in entries)

    await p.wait_for(known, 15)
    assert p.leader() == p.node.name
    for e in nodes:
        leader = await e.aeval("sys:get_state(ekka_membership), ekka_membership:leader()")
        assert leader == p.node.name


async def cut(a: OtpNode, others: list[OtpNode]) -> None:
    """``a`` drops its connections to ``others`` (mnesia_down on both sides)."""
    for b in others:
        assert await a.aeval(f"erlang:disconnect_node({q(b.atom)})") is True


async def wait_running(e: OtpNode, want: list[Atom], timeout_ms: int = 20000) -> list[Atom]:
    """``running_db_nodes`` of ``e`` once it is ``want`` (or what it is at the timeout),
    woken by mnesia's own system events."""
    expr = (
        f"Want = {lit_nodes(want)}, mnesia:subscribe(system),"
        f" Deadline = erlang:monotonic_time(millisecond) + {timeout_ms},"
        " Loop = fun Loop() ->"
        f"   case catch {RUNNING_DB} of Want -> Want;"
        "     Other -> Left = Deadline - erlang:monotonic_time(millisecond),"
        "       case Left > 0 of false -> Other;"
        "         true -> receive {mnesia_system_event, _} -> Loop() after Left -> Loop() end"
        "       end end end,"
        " R = Loop(), mnesia:unsubscribe(system), R"
    )
    return await e.aeval(expr, timeout=timeout_ms / 1000 + 10)


def lit_nodes(nodes: list[Atom]) -> str:
    return "[" + ", ".join(q(n) for n in nodes) + "]"


async def intact(nodes: list[OtpNode], kept: tuple[Atom, ...]) -> None:
    """One mnesia cluster again: everyone runs with everyone, the table is there.

    The kept nodes are asked first: their mnesia never stopped, so its ``mnesia_up``
    events wake the wait; once they run with everyone, so do the rebooted nodes."""
    everyone = names(nodes)
    for e in sorted(nodes, key=lambda e: e.atom not in kept):
        assert await wait_running(e, everyone) == everyone
        assert await e.aeval("lists:sort(mnesia:system_info(db_nodes))") == everyone
        assert await e.aeval(f"mnesia:wait_for_tables([{TABLE}], 15000)") == A("ok")
        assert await e.aeval(f"mnesia:dirty_read({TABLE}, k)") == [(A(TABLE), A("k"), A("v"))]


async def test_pyekka_leader_heals_a_genuine_two_way_partition(
    make_ekka: Callable[[], OtpNode], leader: tuple[Cluster, NodeMonitor]
) -> None:
    p, monitor = leader
    nodes = await genuine_cluster(make_ekka, 2)
    e1, e2 = nodes
    await attach(p, nodes)
    with LogWatch("pyekka.cluster.autoheal") as logs:
        await cut(e1, [e2])
        assert await wait_running(e1, [e1.atom]) == [e1.atom]
        assert await wait_running(e2, [e2.atom]) == [e2.atom]
        assert await e1.aeval(f"net_kernel:connect_node({q(e2.atom)})") is True
        # the genuine node monitors confirm (3 s) and report to P; P heals
        text = await logs.wait("autoheal (genuine nodes): keep", timeout=30)
    assert "(genuine plan)" in text
    assert monitor.autoheal is not None
    [plan] = monitor.autoheal.genuine.plans
    await intact(nodes, plan.keep)
    assert plan.genuine and plan.coordinator in names(nodes)
    assert len(plan.reboot) == 1 and plan.reboot[0] != plan.coordinator
    # the genuine coordinator rebooted the other one itself (its heal process ends
    # once the reboot rpc returned, which may be after mnesia came back up)
    coordinator = next(e for e in nodes if e.atom == plan.coordinator)
    assert await coordinator.aeval(HEAL_PROCESS_ENDED) is True
    texts = [t for _level, t in coordinator.log_events()]
    assert any(f"Shutdown {plan.reboot[0].name} for autoheal" in t for t in texts)
    assert any(f"Reboot {plan.reboot[0].name} for autoheal" in t for t in texts)
    assert "I am not leader" not in " ".join(logs.texts())


async def test_pyekka_leader_coordinates_a_genuine_three_way_partition(
    make_ekka: Callable[[], OtpNode], leader: tuple[Cluster, NodeMonitor]
) -> None:
    p, monitor = leader
    nodes = await genuine_cluster(make_ekka, 3)
    e1, e2, e3 = nodes
    await attach(p, nodes)
    with LogWatch("pyekka.cluster.autoheal") as logs:
        await cut(e1, [e2, e3])
        await cut(e2, [e3])
        for e in nodes:
            assert await wait_running(e, [e.atom]) == [e.atom]
        assert await e1.aeval(f"net_kernel:connect_node({q(e2.atom)})") is True
        assert await e1.aeval(f"net_kernel:connect_node({q(e3.atom)})") is True
        assert await e2.aeval(f"net_kernel:connect_node({q(e3.atom)})") is True
        text = await logs.wait("autoheal (genuine nodes): keep", timeout=30)
        assert "(pyekka's plan)" in text
        assert monitor.autoheal is not None
        [plan] = monitor.autoheal.genuine.plans
        heal = monitor.autoheal.proc  # started with the plan: P reboots the minority
        assert heal is not None
        await intact(nodes, plan.keep)
        await asyncio.wait_for(heal.wait(), 30)  # its last reboot rpc has returned
    assert not plan.genuine and plan.coordinator == p.node.name
    assert len(plan.keep) == 1
    assert sorted(plan.keep + plan.reboot, key=lambda a: a.name) == names(nodes)
    for action in ("Shutdown", "Reboot"):
        done = sorted(t.split()[1] for t in logs.texts() if t.startswith(f"{action} "))
        assert done == [n.name for n in plan.reboot]
