"""An embedded, EPMD-compatible server on asyncio (no Erlang install needed).

The state machine is the sans-I/O :mod:`pyekka.dist.epmd_server`; this module
owns the listening sockets, one task per connection, and the timeouts::

    server = EpmdServer()
    await server.start()            # 127.0.0.1, port from ERL_EPMD_PORT or 4369
    ...                             # real OTP nodes register and find each other
    await server.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyekka.dist.epmd import NodeInfo
from pyekka.dist.epmd_server import (
    CloseConnection,
    EpmdRegistry,
    EpmdServerConnection,
    StopServer,
)
from pyekka.dist.events import SendBytes
from pyekka.node.epmd_client import configured_epmd_port

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DEFAULT_PACKET_TIMEOUT", "EpmdServer", "is_local_peer"]

log = logging.getLogger("pyekka.node.epmd")

#: Seconds a server connection may take to send its request (epmd's default).
DEFAULT_PACKET_TIMEOUT = 60.0
#: Connections the embedded server serves at once.
DEFAULT_MAX_CONNECTIONS = 1024

_READ_SIZE = 4096


def is_local_peer(peer_ip: str, local_ip: str) -> bool:
    """Whether a client at ``peer_ip`` is on this host, as OTP's epmd decides it.

    Loopback addresses (also IPv4-mapped ones) are local, and so is a peer whose
    address is the one it connected to. Only local peers may register or kill.
    """
    try:
        peer = ipaddress.ip_address(peer_ip.split("%", 1)[0])
        local = ipaddress.ip_address(local_ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    if isinstance(local, ipaddress.IPv6Address) and local.ipv4_mapped is not None:
        local = local.ipv4_mapped
    return peer.is_loopback or peer == local


@dataclass(eq=False)
class _Client:
    """One accepted connection of the embedded server."""

    conn: EpmdServerConnection
    writer: asyncio.StreamWriter
    peer: str
    kept: bool = False  # a registration connection: no request deadline any more


class EpmdServer:
    """An embedded, EPMD-compatible server on asyncio.

    Real OTP nodes (and ``epmd -names``/``-kill``/``-dump``) talk to it as to
    OTP's ``epmd``; creations follow epmd's rules. Each connection is served by
    its own task: a client that sends garbage, an oversized or truncated request,
    or nothing at all is closed (the last after ``packet_timeout`` seconds for the
    whole request) without affecting the others. When ``max_connections`` are
    open, a new client displaces the oldest one that has not registered.
    A local ``KILL_REQ`` (``epmd -kill``) stops the server when no node is
    registered (always with ``relaxed_command_check``).
    """

    def __init__(
        self,
        *,
        relaxed_command_check: bool | None = None,
        packet_timeout: float = DEFAULT_PACKET_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if relaxed_command_check is None:
            relaxed_command_check = "ERL_EPMD_RELAXED_COMMAND_CHECK" in os.environ
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.registry = EpmdRegistry(relaxed_command_check=relaxed_command_check, clock=clock)
        self.packet_timeout = packet_timeout
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._clients: OrderedDict[asyncio.Task, _Client] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._changed: asyncio.Condition | None = None
        self._stopped: asyncio.Event | None = None

    # -- lifecycle --

    async def start(self, host: str | Sequence[str] = "127.0.0.1", port: int | None = None) -> None:
        """Listen on ``host`` (one address or several) and ``port``.

        ``port=None`` takes :func:`configured_epmd_port` (``ERL_EPMD_PORT`` or
        4369); ``0`` picks a free port (see :attr:`port`).
        """
        if self._server is not None:
            raise RuntimeError("EpmdServer already started")
        port = configured_epmd_port() if port is None else port
        self._changed = asyncio.Condition()
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, host, port)
        self.registry.epmd_port = self.port
        log.info("embedded epmd listening on %s port %d", host, self.port)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("EpmdServer is not listening")
        return self._server.sockets[0].getsockname()[1]

    @property
    def closed(self) -> bool:
        """Whether the server stopped (:meth:`close`, or a KILL request)."""
        return self._stopped is not None and self._stopped.is_set()

    def _shutdown(self) -> None:
        if self._stopped is None or self._stopped.is_set():
            return
        self._stopped.set()
        if self._server is not None:
            self._server.close()
        for client in self._clients.values():
            client.writer.close()

    async def wait_closed(self) -> None:
        """Return once the server has stopped and every connection is finished."""
        if self._stopped is None:
            raise RuntimeError("EpmdServer was not started")
        await self._stopped.wait()
        if self._server is not None:
            await self._server.wait_closed()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop listening and close every connection (registered nodes are forgotten)."""
        if self._stopped is None:
            return
        self._shutdown()
        await self.wait_closed()

    async def __aenter__(self) -> EpmdServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- what it knows --

    def nodes(self) -> list[NodeInfo]:
        """Registered nodes, most recent first (as NAMES lists them)."""
        return self.registry.nodes()

    async def wait_registered(self, name: str, timeout: float | None = None) -> NodeInfo:
        """Wait until a node called ``name`` is registered; its :class:`NodeInfo`."""
        await self._wait_for(lambda: self.registry.lookup(name) is not None, timeout)
        node = self.registry.lookup(name)
        assert node is not None
        return node

    async def wait_unregistered(self, name: str, timeout: float | None = None) -> None:
        """Wait until no node called ``name`` is registered."""
        await self._wait_for(lambda: self.registry.lookup(name) is None, timeout)

    async def _wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> None:
        if self._changed is None:
            raise RuntimeError("EpmdServer was not started")
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    # -- connections --

    def _make_room(self, me: asyncio.Task) -> bool:
        """Keep at most ``max_connections``: displace the oldest pending client."""
        if len(self._clients) <= self.max_connections:
            return True
        for task, client in self._clients.items():
            if task is not me and not client.kept:
                log.warning("epmd: too many connections, dropping %s", client.peer)
                client.writer.close()
                del self._clients[task]
                return True
        return False

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peername = writer.get_extra_info("peername") or ("?", 0)
        sockname = writer.get_extra_info("sockname") or ("?", 0)
        conn = EpmdServerConnection(
            self.registry, local_peer=is_local_peer(str(peername[0]), str(sockname[0]))
        )
        client = _Client(conn, writer, f"{peername[0]}:{peername[1]}")
        self._clients[task] = client
        self._tasks.add(task)
        try:
            if self.closed:
                return
            if not self._make_room(task):
                log.warning("epmd: refusing %s: every connection holds a registration", client.peer)
                return
            await self._converse(client, reader)
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.debug("epmd: connection %s failed: %s", client.peer, exc)
        except Exception:  # a bug must not take the server down
            log.exception("epmd: error serving %s", client.peer)
        finally:
            before = {n.name for n in self.registry.nodes()}
            conn.connection_closed()
            self._log_changes(before, client)
            self._clients.pop(task, None)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            await self._notify()

    async def _converse(self, client: _Client, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.packet_timeout
        while True:
            if client.kept:
                data = await reader.read(_READ_SIZE)
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await reader.read(_READ_SIZE)
                except TimeoutError:
                    log.debug("epmd: %s sent no complete request in time", client.peer)
                    return
            if not data:
                return
            before = {n.name for n in self.registry.nodes()}
            events = client.conn.receive_data(data)
            self._log_changes(before, client)
            if not events:
                continue  # a request still incomplete
            for event in events:
                if isinstance(event, SendBytes):
                    client.writer.write(event.data)
            await client.writer.drain()
            await self._notify()
            finished = False
            for event in events:
                if isinstance(event, CloseConnection):
                    log.debug("epmd: closing %s: %s", client.peer, event.reason)
                    finished = True
                elif isinstance(event, StopServer):
                    log.info("epmd: stopped by a KILL request from %s", client.peer)
                    self._shutdown()
            if finished or self.closed:
                return
            client.kept = True  # answered and kept open: a registration connection

    def _log_changes(self, before: set[str], client: _Client) -> None:
        nodes = {n.name: n for n in self.registry.nodes()}
        for name in nodes.keys() - before:
            log.info("epmd: %r registered port %d from %s", name, nodes[name].port, client.peer)
        for name in before - nodes.keys():
            log.info("epmd: %r unregistered", name)
