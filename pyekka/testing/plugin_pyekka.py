"""The plugin's pyekka fixtures: in-process nodes (``pyekka_node``), ``pyekka start``
child processes (``pyekka_node_process``) and formed clusters (``pyekka_cluster``).

Part of :mod:`pyekka.testing.plugin`, which registers these fixtures.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import pyekka
from pyekka.cluster.app import ClusterMember, MemberOptions
from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.clusters import form_cluster
from pyekka.testing.otp import clean_env
from pyekka.testing.plugin_runtime import COOKIE, HOST, START_TIMEOUT, node_name
from pyekka.testing.processes import OsProcess

__all__ = [
    "PyekkaProcess",
    "pyekka_cluster",
    "pyekka_node",
    "pyekka_node_process",
    "pyekka_subprocess_env",
]


@pytest.fixture
async def pyekka_node(pyekka_port_base: int) -> AsyncIterator[Callable[..., Any]]:
    """Start in-process pyekka nodes for this test: ``await pyekka_node(name="py",
    cookie=COOKIE, **Node_options)``; all stopped afterwards."""
    started: list[Node] = []

    async def start(name: str = "py", *, cookie: str = COOKIE, **options: Any) -> Node:
        options.setdefault("epmd", False)
        options.setdefault("dist_base_port", pyekka_port_base)
        options.setdefault("dist_interface", HOST)
        node = Node(node_name(name), cookie, **options)
        await node.start()
        started.append(node)
        return node

    try:
        yield start
    finally:
        for node in reversed(started):
            await node.stop()


@dataclass
class PyekkaProcess:
    """A ``pyekka start`` child process (see the ``pyekka_node_process`` fixture)."""

    name: Atom
    process: OsProcess
    """Its output is in ``process.lines``; ``process.expect(regex)`` waits for a line."""

    @property
    def os_pid(self) -> int:
        """The child's OS process id."""
        return self.process.proc.pid


def pyekka_subprocess_env() -> dict[str, str]:
    """The environment of a ``python -m pyekka`` child: ours, with the directory this
    ``pyekka`` package was imported from first on ``PYTHONPATH``."""
    env = clean_env()
    package_parent = str(Path(pyekka.__file__).resolve().parents[1])
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_parent + (os.pathsep + path if path else "")
    return env


@pytest.fixture
async def pyekka_node_process(
    pyekka_port_base: int, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Callable[..., Any]]:
    """Run pyekka nodes as child processes for this test: ``await
    pyekka_node_process(name="py", cookie=COOKIE, args=())`` (extra ``pyekka start``
    arguments); returns once the node listens. All killed afterwards."""
    started: list[OsProcess] = []
    home = tmp_path_factory.mktemp("pyekka_home")

    async def start(
        name: str = "py",
        *,
        cookie: str = COOKIE,
        args: Sequence[str] = (),
        timeout: float = START_TIMEOUT,
    ) -> PyekkaProcess:
        full = node_name(name)
        argv = [sys.executable, "-m", "pyekka", "start", "--name", full, "--cookie", cookie]
        argv += ["--no-epmd", "--dist-base-port", str(pyekka_port_base)]
        argv += ["--dist-interface", HOST, *args]
        env = pyekka_subprocess_env()
        env["HOME"] = str(home)  # never touch the user's ~/.erlang.cookie
        proc = await OsProcess.start(argv, env)
        started.append(proc)
        await proc.expect(rf"node {re.escape(full)} listening on ", timeout=timeout)
        return PyekkaProcess(Atom(full), proc)

    try:
        yield start
    finally:
        for proc in reversed(started):
            await proc.kill()


@pytest.fixture
async def pyekka_cluster(pyekka_node: Callable[..., Any]) -> AsyncIterator[Callable[..., Any]]:
    """Form ekka clusters of in-process pyekka nodes: ``members = await
    pyekka_cluster(3, options=MemberOptions(...), name="py")`` starts the nodes, joins
    them and waits until all agree (see :func:`pyekka.testing.clusters.form_cluster`);
    every member is stopped afterwards, before its node."""
    formed: list[ClusterMember] = []

    async def form(
        count: int = 3,
        *,
        options: MemberOptions | None = None,
        name: str = "py",
        **node_options: Any,
    ) -> list[ClusterMember]:
        nodes = [await pyekka_node(name, **node_options) for _ in range(count)]
        members = await form_cluster(nodes, options)
        formed.extend(members)
        return members

    try:
        yield form
    finally:
        for member in reversed(formed):
            await member.stop()
