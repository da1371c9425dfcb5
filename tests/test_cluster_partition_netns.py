"""Real network partitions of a Python-only cluster, in a lab of network namespaces.

Every node is a ``pyekka start -c FILE`` subprocess alone in a host of a
:class:`~pyekka.testing.netns.NetnsLab` (static discovery, short autocluster timings,
``node.net_ticktime`` of 2 s), watched with ``pyekka ctl status`` from inside the lab.
The network is cut under running nodes: packets are dropped, no connection is closed.

* one host's link taken down: each side sees the other down (stopped nodes) while it
  keeps running; once the link is back the nodes report the partition, and autoheal
  makes one cluster again;
* four nodes split two against two (hosts on two bridges), then merged: the same;
* autoclean: a host cut for longer than ``cluster.autoclean`` is force-left by the
  others, which no longer list it at all, and, cut off, cleans them in turn; once the
  link is back the two clusters stay apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.testing.netns import NetnsLab
from tests.autocluster_nodes import LabNode, LabNodes
from tests.cli_nodes import CliEnv

APP = "part"
TICKTIME = 2
"""``node.net_ticktime``: a silent peer is down after 2 to 2.5 s."""
TIMEOUT = 20.0
"""Seconds for each step of a test (a cut seen, a heal done)."""

Status = dict[str, Any]


@pytest.fixture
def lab(netns_lab: Callable[..., NetnsLab]) -> NetnsLab:
    return netns_lab(hosts=4, service=False)


@pytest.fixture
async def lab_nodes(lab: NetnsLab, tmp_path: Path, cli_env: CliEnv) -> AsyncIterator[LabNodes]:
    async with contextlib.AsyncExitStack() as stack:
        yield LabNodes(lab, tmp_path, cli_env(), stack)


def _name(lab: NetnsLab, index: int) -> str:
    return f"{APP}@{lab.hosts[index].address}"


async def _cluster(
    lab_nodes: LabNodes, count: int, **keys: Any
) -> tuple[list[LabNode], dict[str, str]]:
    """``count`` nodes, one per host (started side by side), that form one cluster
    through static discovery; and their guids."""
    lab = lab_nodes.lab
    names = [_name(lab, i) for i in range(count)]
    conf = {
        "cluster.name": "partcl",
        "cluster.discovery": "static",
        "cluster.static.seeds": names,
        "node.net_ticktime": TICKTIME,
        "cluster.autoheal": "500ms",
        **keys,
    }
    nodes = await asyncio.gather(
        *(lab_nodes.start(lab.hosts[i], names[i], conf) for i in range(count))
    )
    statuses = await lab_nodes.one_cluster(nodes)
    return nodes, _guids(statuses)


def _guids(statuses: dict[str, Status]) -> dict[str, str]:
    """Each node's own guid (a new one once autoheal has rebooted its services)."""
    return {
        name: next(m["guid"] for m in status["members"] if m["node"] == name)
        for name, status in statuses.items()
    }


def _members(status: Status) -> list[str]:
    return sorted(m["node"] for m in status["members"])


def _sees(running: list[LabNode], stopped: list[LabNode]) -> Callable[[LabNode, Status], bool]:
    """A status check: this node runs with ``running`` and lists ``stopped`` as stopped."""
    want_running = sorted(n.name for n in running)
    want_stopped = sorted(n.name for n in stopped)

    def check(_node: LabNode, status: Status) -> bool:
        return (
            status["running"]
            and sorted(status["running_nodes"]) == want_running
            and sorted(status["stopped_nodes"]) == want_stopped
        )

    return check


async def _split_seen(lab_nodes: LabNodes, sides: list[list[LabNode]]) -> None:
    """Each side runs by itself and lists the nodes of the other sides as stopped."""
    everyone = [n for side in sides for n in side]
    for side in sides:
        others = [n for n in everyone if n not in side]
        await lab_nodes.wait_statuses(
            side,
            _sees(side, others),
            f"{[n.name for n in side]} run alone, the others stopped, once the network is cut",
            timeout=TIMEOUT,
        )


async def _healed(
    lab_nodes: LabNodes, nodes: list[LabNode], marks: dict[str, int]
) -> dict[str, Status]:
    """Some node reported a partition since ``marks`` (its output line counts), and
    autoheal made one cluster again: every node runs with all, none stopped, no
    partition; their statuses."""
    await _first_report(nodes, marks)
    everyone = _sees(nodes, [])
    return await lab_nodes.wait_statuses(
        nodes,
        lambda n, s: everyone(n, s) and not s["partitions"] and len(s["members"]) == len(nodes),
        f"{[n.name for n in nodes]} healed into one cluster (no stopped node, no partition)",
        timeout=TIMEOUT,
    )


async def _first_report(nodes: list[LabNode], marks: dict[str, int]) -> None:
    waits = [
        asyncio.ensure_future(
            n.process.expect(r"partition with \S+ occurred", after=marks[n.name], timeout=TIMEOUT)
        )
        for n in nodes
    ]
    try:
        done, _pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # an AssertionError (timeout, with the output) if nobody reported
    finally:
        for task in waits:
            task.cancel()


def _marks(nodes: list[LabNode]) -> dict[str, int]:
    return {n.name: len(n.process.lines) for n in nodes}


async def test_a_cut_host_is_seen_down_then_autoheal_makes_one_cluster(
    lab: NetnsLab, lab_nodes: LabNodes
) -> None:
    nodes, before = await _cluster(lab_nodes, 3)
    a, b, c = nodes
    marks = _marks(nodes)
    lab.cut(c.host)
    await _split_seen(lab_nodes, [[a, b], [c]])
    lab.restore(c.host)
    after = _guids(await _healed(lab_nodes, nodes, marks))
    rebooted = sorted(name for name in before if after[name] != before[name])
    assert rebooted == [c.name]  # autoheal reboots the minority, the majority stays


async def test_two_against_two_then_autoheal_makes_one_cluster(
    lab: NetnsLab, lab_nodes: LabNodes
) -> None:
    nodes, before = await _cluster(lab_nodes, 4)
    a, b, c, d = nodes
    marks = _marks(nodes)
    lab.split([a.host, b.host], [c.host, d.host])
    await _split_seen(lab_nodes, [[a, b], [c, d]])
    lab.merge()
    after = _guids(await _healed(lab_nodes, nodes, marks))
    rebooted = sorted(name for name in before if after[name] != before[name])
    assert rebooted in ([a.name, b.name], [c.name, d.name])  # one side, all of it


async def test_autoclean_force_leaves_a_host_cut_for_too_long(
    lab: NetnsLab, lab_nodes: LabNodes
) -> None:
    """Both sides clean, as genuine nodes would (ekka's force-leave of a down node just
    deletes its schema copy): the majority force-leaves the cut node, which
    force-leaves them in turn and stands alone. Once the link is back the two stay
    apart: neither is a member of the other's cluster any more, until the lone node
    joins the others again."""
    nodes, _ = await _cluster(lab_nodes, 3, **{"cluster.autoclean": "3s"})
    a, b, c = nodes
    lab.cut(c.host)
    await _split_seen(lab_nodes, [[a, b], [c]])
    pair = sorted([a.name, b.name])
    await lab_nodes.wait_statuses(
        [a, b],
        lambda _n, s: _sees([a, b], [])(_n, s) and _members(s) == pair,
        f"{c.name} force-left by autoclean: not even a stopped node of {pair}",
        timeout=TIMEOUT,
    )
    await lab_nodes.wait_statuses(
        [c],
        lambda _n, s: _sees([c], [])(_n, s) and _members(s) == [c.name],
        f"{c.name}, cut off, force-left {pair} in turn and stands alone",
        timeout=TIMEOUT,
    )
    for node, gone in ((a, c), (b, c), (c, a), (c, b)):  # autoclean's doing, no one else's
        await node.process.expect(rf"autoclean: {re.escape(gone.name)} was down for more than")
    lab.restore(c.host)
    seen = await lab_nodes.ctl(c, "--json", "status", host=a.host)
    assert seen.status == 0, seen  # from a's host: the link is back
    alone = json.loads(seen.out)
    assert alone["running_nodes"] == [c.name] and _members(alone) == [c.name]
    for node in (a, b):
        status = await lab_nodes.status(node)
        assert _members(status) == pair and not status["stopped_nodes"], status
    # the lone node joins them again (its old view, which removed them, stays behind)
    joined = await lab_nodes.ctl(c, "join", a.name)
    assert joined.status == 0, joined
    everyone = _sees(nodes, [])
    await lab_nodes.wait_statuses(
        nodes,
        lambda n, s: everyone(n, s) and _members(s) == sorted(x.name for x in nodes),
        f"{c.name} joined {pair} again: one cluster of three",
        timeout=TIMEOUT,
    )
