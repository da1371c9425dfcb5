"""Fixtures for the node tests: live OTP nodes and Python nodes on 127.0.0.1.

Every node, OTP or Python, is named ``<prefix><n>@127.0.0.1`` with a number
unique in the session, and runs epmd-less with ekka's port rule on a block of
free ports (``base + n``), so tests never collide and need no epmd. OTP nodes
load ``pyekka_epmd``/``pyekka_dist`` from ``erl_interop`` for that rule and are
controlled through ``pyekka_ctl`` (never through the distribution under test).

``tests/conftest.py`` registers this module as a plugin (``pytest_plugins``), so
every test module can ask for its fixtures (``ekka_base``, ``make_otp``, ``erl``,
``make_py``, ``py``) without importing them; import only the plain helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.node.node import Node
from pyekka.node.process import Process
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode, epmd_less_args
from pyekka.testing.plugin import COOKIE, HOST, next_node_number

__all__ = [
    "COOKIE",
    "HOST",
    "FakeAcceptor",
    "LogWatch",
    "NodeFactory",
    "OtpFactory",
    "closing_all",
    "ekka_base",
    "erl",
    "fake_acceptor",
    "make_otp",
    "make_py",
    "next_number",
    "py",
    "wait_for",
]


@pytest.fixture(scope="session")
def ekka_base(pyekka_port_base: int) -> int:
    """The base port (``inet_dist_base_port``) of every node of the session: the
    plugin's ``pyekka_port_base``, shared with its ``otp_node``/``pyekka_node``."""
    return pyekka_port_base


def next_number() -> int:
    """A node number not used before in this session (its port offset)."""
    return next_node_number()


OtpFactory = Callable[..., OtpNode]
NodeFactory = Callable[..., Node]


@contextlib.contextmanager
def closing_all() -> Iterator[list[OtpNode]]:
    """A list to put started OTP nodes in: all are closed when the block ends."""
    started: list[OtpNode] = []
    try:
        yield started
    finally:
        for node in started:
            node.close()


@pytest.fixture
def make_otp(otp: OtpRuntime, interop_ebin: Path, ekka_base: int) -> Iterator[OtpFactory]:
    """Start OTP nodes of runtime ``otp`` for one test; all killed afterwards."""
    with closing_all() as started:

        def start(*extra: str, prefix: str = "erl", cookie: str = COOKIE, **kw: Any) -> OtpNode:
            name = f"{prefix}{next_number()}@{HOST}"
            args = [*epmd_less_args(ekka_base, HOST), *extra]
            node = OtpNode(otp, interop_ebin, name, cookie, args=args, **kw)
            started.append(node)
            return node

        yield start


@pytest.fixture(scope="module")
def erl(otp: OtpRuntime, interop_ebin: Path, ekka_base: int) -> Iterator[OtpNode]:
    """One OTP node shared by the tests of a module (per runtime)."""
    node = OtpNode(
        otp,
        interop_ebin,
        f"erl{next_number()}@{HOST}",
        COOKIE,
        args=epmd_less_args(ekka_base, HOST),
    )
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
async def make_py(ekka_base: int) -> AsyncIterator[NodeFactory]:
    """Start Python nodes (epmd-less, on 127.0.0.1) for one test; stopped afterwards."""
    started: list[Node] = []

    async def start(prefix: str = "py", cookie: str = COOKIE, host: str = HOST, **kw: Any) -> Node:
        kw.setdefault("epmd", False)
        kw.setdefault("dist_base_port", ekka_base)
        kw.setdefault("dist_interface", HOST)
        node = Node(f"{prefix}{next_number()}@{host}", cookie, **kw)
        await node.start()
        started.append(node)
        return node

    try:
        yield start  # type: ignore[misc]
    finally:
        for node in reversed(started):
            await node.stop()


@pytest.fixture
async def py(make_py: Any) -> Node:
    """A started Python node."""
    return await make_py()


class FakeAcceptor:
    """A TCP server where ekka's rule puts the node :attr:`name` (see :func:`fake_acceptor`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.writers: list[asyncio.StreamWriter] = []
        self.connected = asyncio.Event()


@contextlib.asynccontextmanager
async def fake_acceptor(
    base: int, greeting: bytes = b"", prefix: str = "fake"
) -> AsyncIterator[FakeAcceptor]:
    """A server on the port of ``<prefix><n>@127.0.0.1`` by ekka's rule with ``base``:
    it writes ``greeting`` to each connection, then says nothing more."""
    number = next_number()
    fake = FakeAcceptor(f"{prefix}{number}@{HOST}")

    def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fake.writers.append(writer)
        writer.write(greeting)
        fake.connected.set()

    server = await asyncio.start_server(accept, HOST, base + number)
    try:
        yield fake
    finally:
        server.close()
        for writer in fake.writers:
            writer.close()
        await server.wait_closed()


async def wait_for(
    node: Node, match: Callable[[Any], bool], *, timeout: float = 10.0, setup: Any = None
) -> Any:
    """Run a process on ``node`` that first calls ``setup(proc)`` and then returns the
    first message matching ``match`` (``TimeoutError`` after ``timeout``)."""

    async def body(proc: Process) -> Any:
        if setup is not None:
            setup(proc)
        return await proc.receive(match, timeout=timeout)

    return await node.run(body)


class LogWatch:
    """Waits for a log record, as an event (a ``logging.Handler``)."""

    def __init__(self, logger: str = "pyekka") -> None:
        self.records: list[logging.LogRecord] = []
        self._changed = asyncio.Event()
        self._handler = logging.Handler()
        self._handler.emit = self._emit  # type: ignore[method-assign]
        self._logger = logging.getLogger(logger)

    def _emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._changed.set()

    def __enter__(self) -> LogWatch:
        self._level = self._logger.level
        self._logger.setLevel(logging.DEBUG)
        self._logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)

    def texts(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    async def wait(self, needle: str, level: int = logging.DEBUG, timeout: float = 10.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                for text in self.texts(level):
                    if needle in text:
                        return text
                self._changed.clear()
                await self._changed.wait()
