"""An embedded EPMD server, sans I/O, that behaves like OTP's ``epmd``.

:class:`EpmdRegistry` holds the registrations of one embedded epmd, and one
:class:`EpmdServerConnection` per accepted TCP connection turns received bytes
into events (:class:`~pyekka.dist.events.SendBytes`, :class:`CloseConnection`,
:class:`StopServer`). As in OTP's ``epmd``, a registration lives exactly as long
as the connection that made it: call :meth:`EpmdServerConnection.connection_closed`
when the socket closes. Bad requests close the connection without a reply.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pyekka.dist.epmd import (
    ALIVE2_REQ,
    DUMP_REQ,
    EPMD_PORT,
    KILL_REQ,
    MAX_SYM_LEN,
    NAMES_REQ,
    PORT_PLEASE2_REQ,
    NodeInfo,
    encode_alive2_resp,
    encode_names_resp,
    encode_port2_resp,
    parse_alive2_req,
)
from pyekka.dist.errors import ProtocolError
from pyekka.dist.events import SendBytes

__all__ = ["CloseConnection", "EpmdRegistry", "EpmdServerConnection", "StopServer"]

# A request packet (length included) must be shorter than epmd's input buffer.
_INBUF_SIZE = 3 * MAX_SYM_LEN
# How many unregistered names epmd remembers (to give them a new creation).
_MAX_UNREG_COUNT = 1000
# The creation epmd puts in a refused ALIVE2 reply.
_FAILED_CREATION = 99


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """The owner must close this epmd connection (after sending what came before)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StopServer:
    """A local KILL_REQ was accepted: the owner should shut the embedded epmd down."""


@dataclass(slots=True)
class _Registration:
    node: NodeInfo
    counter: int
    conn_id: int

    @property
    def creation(self) -> int:
        return _creation(self.counter, self.node.highest_version)


def _bump(counter: int) -> int:
    counter = (counter + 1) & 0xFFFFFFFF
    return counter if counter >= 4 else 4


def _creation(counter: int, highest_version: int) -> int:
    # Nodes speaking distribution version 6 get the 32-bit counter; older ones 1..3.
    return counter if highest_version >= 6 else counter % 3 + 1


class EpmdRegistry:
    """The registrations of one embedded epmd, shared by all its connections.

    Creations follow OTP's epmd: a new name starts from the clock (seconds), a name
    registered again gets the next value (never below 4); nodes announcing a highest
    version below 6 get ``counter % 3 + 1`` instead. ``relaxed_command_check``
    allows KILL while nodes are registered (epmd's ``-relaxed_command_check``).
    """

    def __init__(
        self,
        epmd_port: int = EPMD_PORT,
        *,
        relaxed_command_check: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.epmd_port = epmd_port
        self.relaxed_command_check = relaxed_command_check
        self.clock = clock
        self._nodes: dict[str, _Registration] = {}
        self._unregistered: OrderedDict[str, _Registration] = OrderedDict()
        self._next_conn_id = 0

    def lookup(self, name: str) -> NodeInfo | None:
        """The registered node called ``name`` (alive part), if any."""
        reg = self._nodes.get(name)
        return reg.node if reg else None

    def creation_of(self, name: str) -> int | None:
        """The creation handed out to the registered node ``name``."""
        reg = self._nodes.get(name)
        return reg.creation if reg else None

    def nodes(self) -> list[NodeInfo]:
        """Registered nodes, most recent first (the order epmd lists them)."""
        return [r.node for r in reversed(self._nodes.values())]

    def new_connection_id(self) -> int:
        """A fresh id for a connection (shown as its ``fd`` by DUMP)."""
        self._next_conn_id += 1
        return self._next_conn_id

    def register(self, node: NodeInfo, conn_id: int) -> int | None:
        """Register ``node`` for connection ``conn_id``; its creation, or ``None``."""
        raw = node.name.encode("utf-8")
        if (
            not raw
            or len(raw) > MAX_SYM_LEN
            or len(node.name) > 255
            or len(node.extra) > MAX_SYM_LEN
            or node.name in self._nodes
        ):
            return None
        if node.name in self._unregistered:
            counter = _bump(self._unregistered.pop(node.name).counter)
        elif len(self._unregistered) > _MAX_UNREG_COUNT:
            # Too many old names kept: reuse the oldest slot and its counter.
            counter = self._unregistered.popitem(last=False)[1].counter
        else:
            counter = _bump(int(self.clock()) & 0xFFFFFFFF)
        reg = _Registration(node, counter, conn_id)
        self._nodes[node.name] = reg
        return reg.creation

    def unregister_connection(self, conn_id: int) -> None:
        """Drop the registration held by connection ``conn_id`` (if any)."""
        for name, reg in list(self._nodes.items()):
            if reg.conn_id == conn_id:
                del self._nodes[name]
                self._unregistered[name] = reg

    def dump(self) -> bytes:
        """The DUMP reply: port, then NUL-terminated lines for live and old names."""
        out = [struct.pack(">I", self.epmd_port)]
        for reg in reversed(self._nodes.values()):
            out.append(
                b"active name     <%s> at port %d, fd = %d\n\0"
                % (reg.node.name.encode("utf-8"), reg.node.port, reg.conn_id)
            )
        for name, old in self._unregistered.items():
            out.append(
                b"old/unused name <%s>, port = %d, fd = %d \n\0"
                % (name.encode("utf-8"), old.node.port, old.conn_id)
            )
        return b"".join(out)


class EpmdServerConnection:
    """One client connection of the embedded epmd: bytes in, events out.

    ``local_peer`` says whether the client connected from this host (loopback or
    one of our addresses); as OTP's epmd, only local peers may register, dump or
    kill. Requests are one length-prefixed packet per connection, except that an
    accepted ALIVE2_REQ keeps the connection (and its registration) open.
    """

    def __init__(self, registry: EpmdRegistry, *, local_peer: bool) -> None:
        self.registry = registry
        self.local_peer = local_peer
        self.conn_id = registry.new_connection_id()
        self._buf = bytearray()
        self._alive = False
        self._closed = False

    def receive_data(self, data: bytes) -> list[SendBytes | CloseConnection | StopServer]:
        """Feed bytes from the client; the events say what to send and when to close."""
        if self._closed:
            return []
        if self._alive:
            # Anything on a registration connection is a protocol error: epmd
            # unregisters the node and closes.
            return self._close("data on a registration connection")
        self._buf += data
        if len(self._buf) < 2:
            return []
        want = int.from_bytes(self._buf[:2], "big") + 2
        if want < 3 or want >= _INBUF_SIZE:
            return self._close(f"invalid packet size {want - 2}")
        if len(self._buf) > want:
            return self._close("more bytes than the request packet")
        if len(self._buf) < want:
            return []
        body = bytes(self._buf[2:])
        self._buf.clear()
        return self._request(body)

    def connection_closed(self) -> None:
        """The socket closed: release any registration it held."""
        self._closed = True
        self.registry.unregister_connection(self.conn_id)

    def _close(self, reason: str) -> list[SendBytes | CloseConnection | StopServer]:
        self.connection_closed()
        return [CloseConnection(reason)]

    def _reply_and_close(
        self, data: bytes, reason: str
    ) -> list[SendBytes | CloseConnection | StopServer]:
        return [SendBytes(data), *self._close(reason)]

    def _request(self, body: bytes) -> list[SendBytes | CloseConnection | StopServer]:
        tag = body[0]
        if tag == ALIVE2_REQ:
            return self._alive2(body)
        if tag == PORT_PLEASE2_REQ:
            return self._port_please2(body)
        if tag == NAMES_REQ:
            nodes = self.registry.nodes()
            return self._reply_and_close(encode_names_resp(self.registry.epmd_port, nodes), "done")
        if tag == DUMP_REQ:
            if not self.local_peer:
                return self._close("DUMP_REQ from a non-local peer")
            return self._reply_and_close(self.registry.dump(), "done")
        if tag == KILL_REQ:
            if not self.local_peer:
                return self._close("KILL_REQ from a non-local peer")
            if not self.registry.relaxed_command_check and self.registry.nodes():
                return self._reply_and_close(b"NO", "kill refused: live nodes")
            return [SendBytes(b"OK"), *self._close("killed"), StopServer()]
        return self._close(f"unknown request {tag}")

    def _alive2(self, body: bytes) -> list[SendBytes | CloseConnection | StopServer]:
        if not self.local_peer:
            return self._close("ALIVE2_REQ from a non-local peer")
        try:
            node = parse_alive2_req(body)
        except ProtocolError as exc:
            return self._close(str(exc))
        creation = self.registry.register(node, self.conn_id)
        # Even a refused registration keeps the connection, as epmd does.
        self._alive = True
        result = 0 if creation is not None else 1
        if creation is None:
            creation = _FAILED_CREATION
        return [SendBytes(encode_alive2_resp(result, creation, extended=node.highest_version >= 6))]

    def _port_please2(self, body: bytes) -> list[SendBytes | CloseConnection | StopServer]:
        raw = body[1:]
        if raw.endswith(b"\0"):
            raw = raw[:-1]
        if not raw or b"\0" in raw:
            return self._close("bad PORT_PLEASE2_REQ name")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._close("PORT_PLEASE2_REQ name is not UTF-8")
        if len(name) > 255:
            return self._close("PORT_PLEASE2_REQ name too long")
        return self._reply_and_close(encode_port2_resp(self.registry.lookup(name)), "done")
