"""EPMD over asyncio: a client (register, look up, list) and an embedded server.

The bytes on the wire come from the sans-I/O layer (:mod:`pyekka.dist.epmd` for
the messages, :mod:`pyekka.dist.epmd_server` for the server's state machine);
this module owns the sockets, the timeouts and the tasks.

Client::

    reg = await register("mynode", listen_port)     # keep it for the node's life
    reg.creation                                     # from epmd
    await port_please("127.0.0.1", "other")          # (port, version) or None
    await names("127.0.0.1")                         # [(name, port), ...]
    await reg.close()                                # unregisters

Server (so that a host needs no Erlang install)::

    server = EpmdServer()
    await server.start()            # 127.0.0.1, port from ERL_EPMD_PORT or 4369
    ...                             # real OTP nodes register and find each other
    await server.close()

The epmd port follows OTP (:func:`configured_epmd_port`): the ``ERL_EPMD_PORT``
environment variable, else an explicit ``-epmd_port`` value, else 4369.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyekka.dist import epmd as wire
from pyekka.dist.epmd import EPMD_PORT, NODE_TYPE_HIDDEN, NODE_TYPE_NORMAL, NodeInfo
from pyekka.dist.epmd_server import (
    CloseConnection,
    EpmdRegistry,
    EpmdServerConnection,
    StopServer,
)
from pyekka.dist.errors import ProtocolError
from pyekka.dist.events import SendBytes

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PACKET_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "ENV_EPMD_PORT",
    "EpmdError",
    "EpmdProtocolError",
    "EpmdRegistration",
    "EpmdServer",
    "EpmdTimeout",
    "EpmdUnavailable",
    "RegistrationRefused",
    "configured_epmd_port",
    "is_local_peer",
    "lookup_node",
    "names",
    "port_please",
    "register",
    "select_best_version",
]

log = logging.getLogger(__name__)

#: The environment variable OTP reads for the epmd port (``erlexec`` turns it
#: into ``-epmd_port``, placed before the command line's own arguments).
ENV_EPMD_PORT = "ERL_EPMD_PORT"
#: How long a client waits for epmd (connect and reply), as ``erl_epmd`` does.
DEFAULT_TIMEOUT = 10.0
#: Seconds a server connection may take to send its request (epmd's default).
DEFAULT_PACKET_TIMEOUT = 60.0
#: Connections the embedded server serves at once.
DEFAULT_MAX_CONNECTIONS = 1024

_READ_SIZE = 4096
# A NAMES reply larger than this is not from an epmd.
_MAX_NAMES_REPLY = 16 * 1024 * 1024
# Erlang's list_to_integer/1: an optional sign and ASCII digits, nothing else.
_ERLANG_INTEGER = re.compile(r"[+-]?[0-9]+")


class EpmdError(Exception):
    """Talking to epmd failed."""


class EpmdUnavailable(EpmdError):
    """No epmd answers at that address and port (not running, refused, unreachable)."""


class EpmdTimeout(EpmdError, TimeoutError):
    """epmd accepted the connection but did not answer in time."""


class EpmdProtocolError(EpmdError):
    """epmd answered something that is not a valid reply, or hung up without one."""


class RegistrationRefused(EpmdError):
    """epmd refused ALIVE2 (result != 0): the name is already registered."""

    def __init__(self, name: str, result: int) -> None:
        super().__init__(f"epmd refused to register {name!r} (result {result}): name in use?")
        self.name = name
        self.result = result


# ------------------------------------------------------------------ configuration


def configured_epmd_port(
    environ: Mapping[str, str] | None = None, epmd_port_arg: str | int | None = None
) -> int:
    """The epmd port an OTP node would use.

    ``erlexec`` turns ``ERL_EPMD_PORT`` into an ``-epmd_port`` argument placed
    before the command line's own, and ``erl_epmd`` takes the first one, so the
    environment variable wins over ``epmd_port_arg`` (the ``-epmd_port`` value);
    with neither the port is 4369. The text must be what Erlang's
    ``list_to_integer/1`` accepts (optional sign, ASCII digits, no blanks);
    anything else, or a number outside 1..65535, raises ``ValueError`` (OTP's
    ``erl_epmd`` crashes with ``badarg`` instead).
    """
    env = os.environ if environ is None else environ
    text = env.get(ENV_EPMD_PORT)
    source = ENV_EPMD_PORT
    if text is None:
        if epmd_port_arg is None:
            return EPMD_PORT
        text, source = str(epmd_port_arg), "-epmd_port"
    if not _ERLANG_INTEGER.fullmatch(text):
        raise ValueError(f"{source}={text!r} is not an integer")
    port = int(text)
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"{source}={text!r} is not a TCP port number")
    return port


def select_best_version(our_low: int, our_high: int, low: int, high: int) -> int:
    """The distribution version to use with a peer announcing ``low..high``.

    As ``erl_epmd``: the smaller of the two highest versions, or ``0`` when the
    ranges do not overlap.
    """
    if our_low > high or low > our_high:
        return 0
    return min(our_high, high)


# ------------------------------------------------------------------ client


async def _open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_connection(host, port)
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        raise EpmdUnavailable(
            f"no epmd at {host}:{port}: {detail} (is epmd running? is {ENV_EPMD_PORT} right?)"
        ) from exc


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _read_reply(
    reader: asyncio.StreamReader,
    parse: Callable[[bytearray], Any],
    at_eof: Callable[[bytearray], Any] | None,
    what: str,
    where: str,
) -> Any:
    """Read until ``parse`` returns a value, or until EOF if ``at_eof`` is given."""
    data = bytearray()
    while True:
        try:
            reply = parse(data)
        except ProtocolError as exc:
            raise EpmdProtocolError(f"epmd at {where}: bad {what}: {exc}") from exc
        if reply is not None:
            return reply
        try:
            chunk = await reader.read(_READ_SIZE)
        except OSError as exc:
            raise EpmdProtocolError(f"epmd at {where} reset the connection: {exc}") from exc
        if not chunk:
            if at_eof is None:
                raise EpmdProtocolError(f"epmd at {where} closed the connection without a {what}")
            try:
                return at_eof(data)
            except ProtocolError as exc:
                raise EpmdProtocolError(f"epmd at {where}: bad {what}: {exc}") from exc
        data += chunk


async def _exchange(
    host: str,
    port: int,
    request: bytes,
    what: str,
    timeout: float | None,
    parse: Callable[[bytearray], Any],
    at_eof: Callable[[bytearray], Any] | None = None,
    *,
    keep: bool = False,
) -> tuple[Any, asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to epmd, send ``request``, read the reply; close unless ``keep``."""
    where = f"{host}:{port}"
    connected = False
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await _open(host, port)
            connected = True
            try:
                writer.write(request)
                await writer.drain()
                reply = await _read_reply(reader, parse, at_eof, what, where)
            except BaseException:
                await _close_writer(writer)
                raise
            if not keep:
                await _close_writer(writer)
            return reply, reader, writer
    except TimeoutError as exc:
        if isinstance(exc, EpmdError):
            raise
        if not connected:
            raise EpmdUnavailable(f"no epmd at {where}: connect timed out") from exc
        raise EpmdTimeout(f"epmd at {where} did not send its {what} within {timeout} s") from exc
    except OSError as exc:
        raise EpmdProtocolError(f"epmd at {where}: connection failed: {exc}") from exc


class EpmdRegistration:
    """A node registered with epmd: the registration lasts as long as this connection.

    Made by :func:`register`. ``await close()`` (or leaving ``async with``)
    unregisters: it half-closes the connection and waits for epmd to close its
    side, which epmd does only after forgetting the name. :meth:`wait_lost`
    returns if epmd goes away first.
    """

    def __init__(
        self,
        node: NodeInfo,
        creation: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        where: str,
    ) -> None:
        self.node = node
        self.creation = creation
        self.where = where
        self._reader = reader
        self._writer = writer
        self._lost = asyncio.Event()
        self._closing = False
        self._watch = asyncio.get_running_loop().create_task(self._watch_connection())

    @property
    def name(self) -> str:
        """The registered alive part."""
        return self.node.name

    @property
    def port(self) -> int:
        """The distribution port registered."""
        return self.node.port

    @property
    def lost(self) -> bool:
        """Whether the connection to epmd has ended (the name is no longer registered)."""
        return self._lost.is_set()

    async def wait_lost(self) -> None:
        """Return once the connection to epmd has ended (epmd died, or :meth:`close`)."""
        await self._lost.wait()

    async def _watch_connection(self) -> None:
        try:
            while await self._reader.read(_READ_SIZE):
                pass  # epmd never talks on this connection; it closes it on errors
        except OSError:
            pass
        finally:
            self._lost.set()
            if not self._closing:
                log.warning("epmd at %s dropped the registration of %r", self.where, self.name)

    async def close(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Unregister: returns once epmd has closed its side (or after ``timeout``)."""
        if self._closing:
            await self._lost.wait()
            return
        self._closing = True
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof():
                self._writer.write_eof()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._lost.wait()
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        await _close_writer(self._writer)

    async def __aenter__(self) -> EpmdRegistration:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "lost" if self.lost else "registered"
        return f"<EpmdRegistration {self.name!r} port={self.port} creation={self.creation} {state}>"


async def register(
    name: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    hidden: bool = False,
    highest_version: int = 6,
    lowest_version: int = 5,
    extra: bytes = b"",
    timeout: float | None = DEFAULT_TIMEOUT,
) -> EpmdRegistration:
    """Register node ``name`` (alive part) listening on ``port`` with epmd (ALIVE2).

    Keep the returned :class:`EpmdRegistration` for the node's lifetime: epmd
    forgets the name when its connection closes. Its ``creation`` is the one epmd
    handed out (32-bit when ``highest_version`` >= 6, else 1..3). ``hidden``
    registers node type ``H`` instead of ``M``. Raises
    :class:`RegistrationRefused` if the name is taken, :class:`EpmdUnavailable`
    if no epmd answers, :class:`EpmdTimeout` or :class:`EpmdProtocolError`.
    """
    node = NodeInfo(
        name=name,
        port=port,
        node_type=NODE_TYPE_HIDDEN if hidden else NODE_TYPE_NORMAL,
        highest_version=highest_version,
        lowest_version=lowest_version,
        extra=extra,
    )
    epmd_port = configured_epmd_port() if epmd_port is None else epmd_port
    reply, reader, writer = await _exchange(
        host,
        epmd_port,
        wire.encode_alive2_req(node),
        "ALIVE2 reply",
        timeout,
        wire.read_alive2_resp,
        keep=True,
    )
    assert isinstance(reply, wire.Alive2Response)
    if reply.result != 0:
        await _close_writer(writer)
        raise RegistrationRefused(name, reply.result)
    where = f"{host}:{epmd_port}"
    log.debug(
        "registered %r (port %d) with epmd at %s: creation %d", name, port, where, reply.creation
    )
    return EpmdRegistration(node, reply.creation, reader, writer, where)


async def lookup_node(
    host: str,
    name: str,
    *,
    epmd_port: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> NodeInfo | None:
    """PORT_PLEASE2 for ``name`` at the epmd on ``host``: everything epmd knows, or ``None``."""
    epmd_port = configured_epmd_port() if epmd_port is None else epmd_port
    request = wire.encode_port_please2_req(name)
    reply, _, _ = await _exchange(
        host, epmd_port, request, "PORT2 reply", timeout, wire.read_port2_resp
    )
    assert isinstance(reply, wire.Port2Response)
    return reply.node


async def port_please(
    host: str,
    name: str,
    *,
    epmd_port: int | None = None,
    lowest_version: int = 5,
    highest_version: int = 6,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> tuple[int, int] | None:
    """``(port, version)`` of node ``name`` (alive part) on ``host``, or ``None``.

    ``version`` is the distribution version to use with it given the versions we
    speak (:func:`select_best_version`; ``0`` if they do not overlap), as
    ``erl_epmd:port_please/2`` answers ``{port, Port, Version}``.
    """
    node = await lookup_node(host, name, epmd_port=epmd_port, timeout=timeout)
    if node is None:
        return None
    version = select_best_version(
        lowest_version, highest_version, node.lowest_version, node.highest_version
    )
    return node.port, version


def _names_incomplete(data: bytearray) -> None:
    """NAMES replies end at EOF: never complete while reading, but bounded."""
    if len(data) > _MAX_NAMES_REPLY:
        raise ProtocolError(f"NAMES reply larger than {_MAX_NAMES_REPLY} bytes")
    return None


async def names(
    host: str = "127.0.0.1",
    *,
    epmd_port: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    check_port: bool = True,
) -> list[tuple[str, int]]:
    """The ``(name, port)`` pairs epmd on ``host`` lists, in the order it lists them.

    That is the order ``epmd -names`` prints (most recently registered first).
    As ``erl_epmd:names/1``, a reply announcing another epmd port than the one
    asked is an error (``check_port=False`` accepts it, e.g. behind port
    forwarding).
    """
    epmd_port = configured_epmd_port() if epmd_port is None else epmd_port
    (reported, pairs), _, _ = await _exchange(
        host,
        epmd_port,
        wire.encode_names_req(),
        "NAMES reply",
        timeout,
        _names_incomplete,
        wire.read_names_resp,
    )
    if check_port and reported != epmd_port:
        raise EpmdProtocolError(f"epmd at {host}:{epmd_port} says it listens on port {reported}")
    return pairs


# ------------------------------------------------------------------ server


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
