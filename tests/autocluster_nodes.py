"""In-process pyekka nodes started from configuration files, autoclustering: the
shared helpers of the ``test_discovery_autocluster_*`` modules.

* :func:`write_conf` writes a ``.conf`` file; :class:`Fleet` starts a node from
  such a file (``load_config`` -> node -> cluster member -> autocluster, with
  ekka's timings shortened) and stops everything it started.
* :func:`one_cluster` waits (on cluster events, no polling) until the given nodes
  all see one cluster made of exactly them.
* :func:`loopback_hosts`: one loopback address per node, for ``app@IP`` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping
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

__all__ = ["COOKIE", "FAST", "Fleet", "Running", "loopback_hosts", "one_cluster", "write_conf"]

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


def loopback_hosts(count: int) -> list[str]:
    """``127.0.0.1`` .. ``127.0.0.<count>``: strategies that name nodes ``app@IP``
    (dns A records, k8s ``ip`` addresses) need one address per node; all are on
    ``lo``. The project's tests use 127.0.0.1 only unless the developer opts in with
    ``PYEKKA_TEST_LOOPBACK_ALIASES=1`` (the proper home of these tests is a set of
    network namespaces, one per node). Skips the test otherwise, and where the extra
    loopback addresses cannot be bound."""
    if os.environ.get("PYEKKA_TEST_LOOPBACK_ALIASES") != "1":
        pytest.skip(
            "needs one loopback address per node (app@IP names); tests stay on 127.0.0.1 "
            "unless PYEKKA_TEST_LOOPBACK_ALIASES=1"
        )
    hosts = [f"127.0.0.{i}" for i in range(1, count + 1)]
    for host in hosts[1:]:
        with socket.socket() as sock:
            try:
                sock.bind((host, 0))
            except OSError:
                pytest.skip(f"cannot bind the loopback address {host}")
    return hosts
