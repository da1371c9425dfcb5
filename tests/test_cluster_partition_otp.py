"""Node monitor and autoheal of pyekka nodes against real OTP 25/28 nodes.

The OTP node runs ``pyekka_autoheal_probe`` (``erl_interop``), which plays the genuine
ekka 0.8.1.9 side: registered as ``ekka_node_monitor`` it records the casts pyekka
nodes send it; as a genuine *leader* it multicalls ``ekka_mnesia:cluster_view/0`` on
the pyekka db nodes, builds the split view and the coordinator with ``lists:sort/2``
in the VM and casts ``{heal_partition, SplitView}``; as a genuine *reporter* or peer
it casts ``report_partition``, ``heal_cluster``, ``suspect``, ``heartbeat`` and
malformed casts. Shapes are checked by the VM itself (``check_view/1``,
``check_confirm/1``) and by pyekka's pure split view, which must agree with the VM's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster
from pyekka.cluster.member import MemberStatus, MnesiaStatus
from pyekka.cluster.split_view import ClusterView, split_view, split_view_term
from pyekka.term import term_to_binary
from pyekka.term.types import Atom, exact_equal
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import HOST, LogWatch, next_number
from tests.test_cluster_partition_python import (
    Members,
    all_agree,
    converged,
    cut_off,
    form,
    guids,
    rebooted,
    sees_partition,
)

pytestmark = pytest.mark.otp

A = Atom
UP = MemberStatus.UP
RUNNING = MnesiaStatus.RUNNING
QUIET = {"confirm_delay_ms": 600_000}
"""Node monitors that never report a partition by themselves (the probe does)."""


def lit(term: Any) -> str:
    """An Erlang expression whose value is ``term`` (through the external format)."""
    return "binary_to_term(<<" + ",".join(map(str, term_to_binary(term))) + ">>)"


def q(node: Atom) -> str:
    return f"'{node.name}'"


@pytest.fixture
async def members(ekka_base: int, tmp_path: Path) -> AsyncIterator[Members]:
    m = Members(ekka_base, tmp_path)
    try:
        yield m
    finally:
        await m.close()


@pytest.fixture
async def probe(erl: OtpNode) -> AsyncIterator[OtpNode]:
    """The shared OTP node with a fresh recorder registered as ``ekka_node_monitor``."""
    await erl.aeval("pyekka_autoheal_probe:stop()")
    assert await erl.aeval("pyekka_autoheal_probe:start()") == A("ok")
    yield erl
    await erl.aeval("pyekka_autoheal_probe:stop()")


async def partitioned(members: Members, count: int, **monitor: Any) -> list[Cluster]:
    """``count`` nodes, the last one cut off and back, each side seeing the partition."""
    clusters = await form(members, count, **monitor)
    majority, minority = clusters[:-1], clusters[-1:]
    net = members.partition(clusters)
    await cut_off(net, majority, minority)
    await net.heal()
    await all_agree(majority, sees_partition(majority, minority))
    await all_agree(minority, sees_partition(minority, majority))
    return clusters


def healed_with_a_genuine_member(clusters: list[Cluster], erl: Atom) -> Any:
    """One cluster of pyekka nodes; the genuine node, where still listed, ``up`` (a
    rebooted node lists it no more: genuine nodes ping db nodes only, spec 16.1)."""
    want = sorted((c.node.name for c in clusters), key=lambda a: a.name)

    def check(c: Cluster) -> bool:
        pyekka = [(m.node, m.status, m.mnesia) for m in c.members() if m.node != erl]
        genuine = c.membership.lookup(erl)
        return (
            c.running
            and c.running_nodes() == want
            and c.partitions() == []
            and pyekka == [(n, UP, RUNNING) for n in want]
            and (genuine is None or genuine.status is UP)
        )

    return check


async def test_a_genuine_leader_heals_pyekka_nodes(probe: OtpNode, members: Members) -> None:
    clusters = await partitioned(members, 3, **QUIET)
    c1, c2, c3 = clusters
    before = guids(clusters)
    nodes = ", ".join(q(c.node.name) for c in clusters)
    ok, sv, coordinator, views = await probe.aeval(f"pyekka_autoheal_probe:leader_heal([{nodes}])")
    assert ok == A("ok")
    # every view well-formed for the VM, and what the nodes' dbs say
    assert await probe.aeval(f"[pyekka_autoheal_probe:check_view(V) || V <- {lit(views)}]") == [
        True,
        True,
        True,
    ]
    assert views == [
        ([c1.node.name, c2.node.name], [c3.node.name]),
        ([c1.node.name, c2.node.name], [c3.node.name]),
        ([c3.node.name], [c1.node.name, c2.node.name]),
    ]
    # pyekka's split view is the VM's lists:sort/2 result, and the coordinator the oldest
    ours = split_view([ClusterView.from_term(v) for v in views], A(probe.name))
    assert exact_equal(split_view_term(ours), sv)
    assert coordinator == c1.node.name
    # the pyekka coordinator obeys the genuine order: the minority is rebooted
    await all_agree(clusters, converged(clusters))
    after = guids(clusters)
    assert after[c3.node.name] != before[c3.node.name]
    assert after[c1.node.name] == before[c1.node.name]


async def test_a_genuine_report_makes_the_pyekka_leader_heal(
    probe: OtpNode, members: Members
) -> None:
    clusters = await partitioned(members, 3, **QUIET)
    c1, c2, c3 = clusters
    before = guids(clusters)
    with LogWatch("pyekka.cluster.autoheal") as logs:
        await probe.aeval(f"pyekka_autoheal_probe:report_partition({q(c2.node.name)})")
        text = await logs.wait("I am not leader")
        assert probe.name in text
        await probe.aeval(f"pyekka_autoheal_probe:report_partition({q(c1.node.name)})")
        await logs.wait(f"partition reported by {probe.name}")
        await all_agree(clusters, converged(clusters))
    assert guids(clusters)[c3.node.name] != before[c3.node.name]


async def test_heal_cluster_of_ekka_0_8_1_14_reboots_the_minority(
    probe: OtpNode, members: Members
) -> None:
    clusters = await form(members, 3)
    c1, _c2, c3 = clusters
    before = guids(clusters)
    n1, n3 = c1.node.name, c3.node.name
    # the coordinator never reboots itself, even when named in the minority
    await probe.aeval(f"pyekka_autoheal_probe:heal_cluster({q(n1)}, [{q(n3)}, {q(n1)}], [])")
    await c3.wait_for(lambda: rebooted(c3, before), 15)
    await all_agree(clusters, converged(clusters))
    after = guids(clusters)
    assert after[n3] != before[n3]
    assert after[n1] == before[n1]


async def test_suspect_confirm_and_malformed_casts(probe: OtpNode, members: Members) -> None:
    c1, c2 = await form(members, 2)
    n1, n2 = c1.node.name, c2.node.name
    monitor = members.monitor(c1)
    pid = monitor.pid
    nobody = A(f"nobody{next_number()}@{HOST}")
    await probe.aeval(f"pyekka_autoheal_probe:suspect({q(n1)}, {q(n2)})")
    await probe.aeval(f"pyekka_autoheal_probe:suspect({q(n1)}, {q(nobody)})")
    confirms = await probe.aeval("pyekka_autoheal_probe:wait_casts(confirm, 2, 20000)")
    assert sorted(confirms, key=lambda c: c[1].name != n2.name) == [
        (A("confirm"), n2, A("up")),
        (A("confirm"), nobody, A("down")),
    ]
    assert await probe.aeval(
        f"[pyekka_autoheal_probe:check_confirm(C) || C <- {lit(confirms)}]"
    ) == [True, True]
    # malformed or unexpected casts are logged and ignored: no crash, no heal
    before = guids([c1, c2])
    bad = [
        "{heal_partition, not_a_list}",
        "{heal_partition, [{[a], [b]}, {oops}]}",
        '{report_partition, "not a node"}',
        "{suspect, 1, 2}",
        "{confirm, x, sideways}",
        "{heal_cluster, not_a_list, []}",
        "hello",
    ]
    with LogWatch("pyekka.cluster.monitor") as logs:
        for term in bad:
            await probe.aeval(f"pyekka_autoheal_probe:cast({q(n1)}, {term})")
        await probe.aeval(f"pyekka_autoheal_probe:heartbeat({q(n1)})")
        assert await probe.aeval(f"pyekka_autoheal_probe:partitions({q(n1)})") == []
        assert await probe.aeval(f"pyekka_autoheal_probe:call({q(n1)}, what)") == A("ignore")
        unexpected = [t for t in logs.texts() if t.startswith("Unexpected cast")]
    assert len(unexpected) == len(bad)
    assert monitor.pid == pid and guids([c1, c2]) == before
    # the pyekka node only ever cast confirms to this node
    casts = await probe.aeval("pyekka_autoheal_probe:casts()")
    assert {c[0] for c in casts} == {A("confirm")}


async def test_pyekka_nodes_never_report_to_a_genuine_leader(
    probe: OtpNode, members: Members
) -> None:
    await probe.aeval("pyekka_ekka_probe:stop()")
    assert await probe.aeval("pyekka_ekka_probe:start(#{auto_pong => true})") == A("ok")
    try:
        clusters = await form(members, 3)
        erl = A(probe.name)
        for c in clusters:
            await probe.aeval(f"pyekka_ekka_probe:ping({q(c.node.name)})")
        # the genuine node's guid is older: it is leader() on every pyekka node
        await all_agree(clusters, lambda c: c.leader() == erl)
        majority, minority = clusters[:-1], clusters[-1:]
        before = guids(clusters)
        net = members.partition(clusters)
        await cut_off(net, majority, minority)
        with LogWatch("pyekka.cluster.autoheal") as logs:
            await net.heal()
            await all_agree(clusters, healed_with_a_genuine_member(clusters, erl), timeout=20)
            text = await logs.wait("autoheal: keep")
        assert f"coordinator {clusters[0].node.name.name}" in text
        assert guids(clusters)[minority[0].node.name] != before[minority[0].node.name]
        casts = await probe.aeval("pyekka_autoheal_probe:casts()")
        assert casts == []  # no report_partition, no heartbeat, nothing for a genuine node
    finally:
        await probe.aeval("pyekka_ekka_probe:stop()")
