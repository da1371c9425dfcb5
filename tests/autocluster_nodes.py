"""In-process pyekka nodes started from configuration files, autoclustering: the
shared helpers of the ``test_discovery_autocluster_*`` modules.

* :func:`write_conf` writes a ``.conf`` file; :class:`Fleet` starts a node from
  such a file (``load_config`` -> node -> cluster member -> autocluster, with
  ekka's timings shortened) and stops everything it started.
* :func:`one_cluster` waits (on cluster events, no polling) until the given nodes
  all see one cluster made of exactly them.
* :class:`LabNodes` runs ``pyekka start -c FILE`` subprocesses in the hosts of a
  :class:`~pyekka.testing.netns.NetnsLab` (one address per node, for ``app@IP`` and
  ``app@HOST`` names) and watches them from inside the lab with ``pyekka ctl``
  (:meth:`LabNodes.one_cluster`, or any condition with :meth:`LabNodes.wait_statuses`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.cluster import Cluster
from pyekka.config import Settings, load_config
from pyekka.discovery.autocluster import Autocluster, AutoclusterState
from pyekka.discovery.run import ConfiguredMember, autoclustering_member, node_spec
from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.netns import LabHost, NetnsLab
from pyekka.testing.processes import Completed, OsProcess, os_process, run_process
from pyekka.testing.wait import wait_until
from tests.cli_nodes import pyekka_argv
from tests.otp_nodes import HOST

__all__ = [
    "COOKIE",
    "FAST",
    "LAB_PORT",
    "LAB_TIMINGS",
    "Fleet",
    "LabNode",
    "LabNodes",
    "Running",
    "fleet",
    "one_cluster",
    "static_conf",
    "write_conf",
]

COOKIE = "autocluster-test-cookie"

FAST: dict[str, Any] = {
    "interval": 0.3,
    "ignore_delay_ms": 300,
    "ready_timeout": 5.0,
    "member_timeout": 5.0,
    "ping_timeout": 3.0,
}
"""Autocluster timings for tests (ekka's are 5 s, 3000 ms, 10 s, 30 s)."""


def write_conf(path: Path, keys: Mapping[str, Any]) -> Path:
    """A ``.conf`` file with ``key = value`` lines (sequences joined with commas)."""
    lines = []
    for key, value in keys.items():
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        lines.append(f"{key} = {text}")
    path.write_text("\n".join(lines) + "\n")
    return path


def static_conf(
    tmp_path: Path, base: int, name: str, seeds: list[str], cluster: str, **extra: Any
) -> Path:
    """``<alive>.conf`` in ``tmp_path`` for an epmd-less node ``name`` on 127.0.0.1 with
    static discovery of ``seeds`` in cluster ``cluster``; ``extra`` keys added or
    overriding (pass dotted keys as ``**{"node.cookie": ...}``)."""
    alive = name.split("@")[0]
    keys = {
        "node.name": name,
        "node.cookie": COOKIE,
        "node.data_dir": tmp_path / alive,
        "node.epmd": "off",
        "node.dist_base_port": base,
        "node.dist_interface": HOST,
        "cluster.name": cluster,
        "cluster.discovery": "static",
        "cluster.static.seeds": seeds,
        **extra,
    }
    return write_conf(tmp_path / f"{alive}.conf", keys)


@dataclass
class Running:
    """One started node: its settings, node, member and autocluster."""

    settings: Settings
    node: Node
    configured: ConfiguredMember
    lines: list[str]

    @property
    def cluster(self) -> Cluster:
        return self.configured.member.cluster

    @property
    def autocluster(self) -> Autocluster:
        return self.configured.autocluster

    @property
    def name(self) -> Atom:
        return self.node.name


class Fleet:
    """Starts nodes from configuration files; :meth:`close` stops them all."""

    def __init__(self, root: Path, **autocluster: Any) -> None:
        self.root = root
        self.autocluster = {**FAST, **autocluster}
        self.running: dict[Atom, tuple[Running, contextlib.AsyncExitStack]] = {}

    async def start(self, config: Path, **autocluster: Any) -> Running:
        """Start the node ``config`` describes (``PYEKKA_*`` variables ignored)."""
        settings = load_config(config, environ={})
        cookie = settings.node.cookie or COOKIE
        node = node_spec(settings, cookie=cookie).node()
        lines: list[str] = []
        stack = contextlib.AsyncExitStack()
        await node.start()
        stack.push_async_callback(node.stop)
        try:
            configured = await stack.enter_async_context(
                autoclustering_member(
                    node,
                    settings,
                    lines.append,
                    autocluster={**self.autocluster, **autocluster},
                )
            )
        except BaseException:
            await stack.aclose()
            raise
        running = Running(settings, node, configured, lines)
        self.running[node.name] = (running, stack)
        return running

    async def stop(self, name: Atom) -> None:
        """Stop one node (its autocluster, member and node)."""
        _running, stack = self.running.pop(name)
        await stack.aclose()

    async def close(self) -> None:
        """Stop every node still running."""
        for name in list(self.running):
            await self.stop(name)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """A :class:`Fleet` rooted in the test's directory, closed after the test (a
    fixture of every test module: ``tests.autocluster_nodes`` is a conftest plugin)."""
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        await f.close()


def _describe(r: Running) -> str:
    c = r.cluster
    return (
        f"{r.name.name}: db {[n.name for n in c.db_nodes()]} "
        f"running {[n.name for n in c.running_nodes()]}; {r.autocluster.status().describe()}"
    )


async def one_cluster(nodes: list[Running], timeout: float = 30.0) -> None:
    """Wait until every node of ``nodes`` runs in one cluster of exactly ``nodes``
    and its autocluster is done (``AssertionError`` with their states if not)."""
    want = sorted(r.name.name for r in nodes)

    def agreed(r: Running) -> bool:
        c = r.cluster
        return [n.name for n in c.db_nodes()] == want and [
            n.name for n in c.running_nodes()
        ] == want

    async def wait(r: Running) -> None:
        await r.cluster.wait_for(lambda: agreed(r), timeout)
        await r.autocluster.wait_for(lambda a: a.state is AutoclusterState.DONE, timeout)

    try:
        await asyncio.gather(*(wait(r) for r in nodes))
    except TimeoutError:
        raise AssertionError("\n".join(_describe(r) for r in nodes)) from None


# -- pyekka start subprocesses in a namespace lab --------------------------------------

LAB_PORT = 4370
"""Every lab node is alone in its host: all listen on ekka's base port (no epmd)."""

LAB_TIMINGS: dict[str, Any] = {
    "cluster.autocluster.interval": "300ms",
    "cluster.autocluster.ignore_delay": "300ms",
    "cluster.autocluster.ready_timeout": "5s",
    "cluster.autocluster.member_timeout": "5s",
    "cluster.autocluster.ping_timeout": "3s",
}
"""Configuration keys written into every lab node's file: the autocluster timings of
:data:`FAST`, for ``pyekka start -c FILE`` nodes."""

CLUSTER_TIMEOUT = 90.0
"""Seconds for lab nodes to agree on one cluster (two busy cores)."""

_IN_A_CLUSTER = re.compile(r"autocluster round \d+: .*(?<!not )in a cluster")


@dataclass
class LabNode:
    """A ``pyekka start -c FILE`` subprocess in a lab host."""

    name: str
    host: LabHost
    process: OsProcess


class LabNodes:
    """Runs ``pyekka start -c FILE`` in the hosts of ``lab`` (files in ``root``,
    environment ``env``); every process ends with ``stack``."""

    def __init__(
        self,
        lab: NetnsLab,
        root: Path,
        env: dict[str, str],
        stack: contextlib.AsyncExitStack,
    ) -> None:
        self.lab = lab
        self.root = root
        self.env = env
        self.stack = stack
        self.nodes: dict[str, LabNode] = {}

    async def start(self, host: LabHost, name: str, keys: Mapping[str, Any]) -> LabNode:
        """Start node ``name`` in ``host`` from a file of ``keys`` (plus the node's
        name, cookie, address, data directory and :data:`LAB_TIMINGS`); returns once
        its cluster services run."""
        node_dir = self.root / name
        node_dir.mkdir(parents=True, exist_ok=True)
        conf = {
            "node.name": name,
            "node.cookie": COOKIE,
            "node.data_dir": node_dir / "data",
            "node.epmd": "off",
            "node.dist_base_port": LAB_PORT,
            "node.dist_interface": host.address,
            **LAB_TIMINGS,
            **keys,
        }
        path = write_conf(node_dir / "pyekka.conf", conf)
        argv = self.lab.exec_argv(host, *pyekka_argv("start", "-c", str(path)))
        process = await self.stack.enter_async_context(os_process(argv, self.env))
        node = LabNode(name, host, process)
        self.nodes[name] = node
        await process.expect(r"cluster running, leader ")
        return node

    async def ctl(self, node: LabNode, *command: str, host: LabHost | None = None) -> Completed:
        """``pyekka ctl --node NODE COMMAND`` run in ``node``'s host (or in ``host``)."""
        dist = ["--cookie", COOKIE, "--no-epmd", "--dist-base-port", str(LAB_PORT)]
        argv = pyekka_argv("ctl", *dist, "--timeout", "10", "--node", node.name, *command)
        where = node.host if host is None else host
        return await run_process(self.lab.exec_argv(where, *argv), self.env, timeout=30)

    async def status(self, node: LabNode) -> dict[str, Any]:
        """``pyekka ctl status --json`` of ``node``."""
        got = await self.ctl(node, "--json", "status")
        if got.status != 0:
            raise AssertionError(f"ctl status of {node.name}: {got}")
        return json.loads(got.out)

    async def stop(self, node: LabNode) -> None:
        """Kill ``node``'s process."""
        await self.nodes.pop(node.name).process.kill()

    async def one_cluster(
        self, nodes: list[LabNode], timeout: float = CLUSTER_TIMEOUT
    ) -> dict[str, dict[str, Any]]:
        """Wait until each of ``nodes`` has printed that autocluster put it in a
        cluster and, asked with ``pyekka ctl status`` from inside the lab, runs with
        exactly ``nodes`` (none stopped) and is done autoclustering; their statuses."""
        want = sorted(n.name for n in nodes)
        await asyncio.gather(
            *(n.process.expect(_IN_A_CLUSTER.pattern, timeout=timeout) for n in nodes)
        )
        seen: dict[str, Any] = {}

        async def agreed() -> bool:
            statuses = await asyncio.gather(*(self.status(n) for n in nodes))
            seen.clear()
            seen.update({n.name: s for n, s in zip(nodes, statuses, strict=True)})
            return all(
                sorted(s["running_nodes"]) == want
                and not s["stopped_nodes"]
                and (s["discovery"] or {}).get("state") == "done"
                for s in statuses
            )

        await wait_until(
            agreed,
            timeout=timeout,
            interval=0.5,
            message=f"{want} run as one cluster, each done autoclustering (pyekka ctl status)",
            observe=lambda: {name: _brief(status) for name, status in seen.items()},
        )
        return dict(seen)

    async def wait_statuses(
        self,
        nodes: list[LabNode],
        check: Callable[[LabNode, dict[str, Any]], bool],
        message: str,
        timeout: float = CLUSTER_TIMEOUT,
    ) -> dict[str, dict[str, Any]]:
        """Ask every node of ``nodes`` for ``pyekka ctl status`` (from inside the lab)
        until ``check(node, status)`` holds for all of them; their statuses
        (``AssertionError`` with ``message`` and the last statuses if not in time)."""
        seen: dict[str, Any] = {}

        async def agreed() -> bool:
            statuses = await asyncio.gather(*(self.status(n) for n in nodes))
            seen.clear()
            seen.update({n.name: s for n, s in zip(nodes, statuses, strict=True)})
            return all(check(n, s) for n, s in zip(nodes, statuses, strict=True))

        await wait_until(
            agreed,
            timeout=timeout,
            interval=0.2,
            message=message,
            observe=lambda: {name: _views(status) for name, status in seen.items()},
        )
        return dict(seen)


def _views(status: dict[str, Any]) -> str:
    return (
        f"running {status['running_nodes']} stopped {status['stopped_nodes']} "
        f"partitions {status['partitions']}"
    )


def _brief(status: dict[str, Any]) -> str:
    discovery = status.get("discovery") or {}
    last = discovery.get("last_result") or {}
    return (
        f"running {status['running_nodes']} stopped {status['stopped_nodes']}; "
        f"autocluster {discovery.get('state')}: {last.get('summary')}"
    )
