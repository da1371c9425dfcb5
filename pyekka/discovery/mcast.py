"""``mcast`` discovery: UDP multicast pings and pongs (``ekka_cluster_mcast``, ekka 0.8).

Every datagram is ``term_to_binary({ping | pong, Node, ClusterName, CookieHash})``
where ``ClusterName`` is the sender's configured cluster name (the atom
``undefined`` when none is set) and ``CookieHash`` is ``erlang:phash2(Cookie)`` of
the cookie atom. A ping or pong is accepted when its cluster name equals the local
one (``ekka`` when none is set: so two nodes without a cluster name never accept
each other, exactly as in ekka) and its cookie hash equals the local one. Accepted
pings are answered with a pong sent to the multicast group at the ping's source
port, and both add the sender to the *seen* set. A discovery round pings the group
on every configured port, waits the collection window (3 s in ekka) and returns
the local node followed by the sorted seen set, which it then clears.

The responder socket is UDP with ``SO_REUSEADDR`` (so several nodes of one host,
Erlang or Python, share the port), bound to the first port of ``ports`` that is
free, joined to ``addr`` on ``iface``, with the multicast TTL and loop options.
Corrupt, foreign and mismatched datagrams are logged and ignored.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyekka.discovery.strategy import Strategy, check_node_name
from pyekka.term import Atom, DecodeError, EncodeError, binary_to_term, phash2, term_to_binary

__all__ = [
    "DEFAULT_ADDR",
    "DEFAULT_PORTS",
    "DISCOVER_WINDOW",
    "Handshake",
    "McastOptions",
    "McastResponder",
    "McastStrategy",
    "cookie_hash",
    "decode_handshake",
    "encode_handshake",
]

log = logging.getLogger("pyekka.discovery.mcast")

DEFAULT_ADDR = "239.192.0.1"
"""The multicast group of ekka's schema (``cluster.mcast.addr``)."""
DEFAULT_PORTS = (4369,)
"""The ports of ekka's schema (``cluster.mcast.ports``)."""
DISCOVER_WINDOW = 3.0
"""Seconds a discovery round collects answers (ekka: 3000 ms)."""
RECEIVER_DEFAULT_CLUSTER = "ekka"
"""The cluster name a receiver compares with when none is configured."""
SENDER_DEFAULT_CLUSTER = "undefined"
"""The cluster name a sender writes when none is configured."""
PING, PONG = "ping", "pong"


@dataclass(frozen=True)
class McastOptions:
    """ekka's mcast options: ``addr``, ``ports``, ``iface``, ``ttl``, ``loop``.

    ``ttl`` and ``loop`` default to ekka's code defaults (1, on; the schema's ``ttl``
    default is 255). ``window`` is the collection window of a discovery round and
    ``minor_version`` the ETF encoding of sent packets: 1 is what an OTP 25 node
    writes (``ATOM_EXT``), 2 what OTP 26+ writes; receivers accept both.
    """

    addr: str = DEFAULT_ADDR
    ports: Sequence[int] = DEFAULT_PORTS
    iface: str = "0.0.0.0"
    ttl: int = 1
    loop: bool = True
    window: float = DISCOVER_WINDOW
    minor_version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "ports", tuple(self.ports))
        for ip in (self.addr, self.iface):
            try:
                socket.inet_aton(ip)
            except OSError:
                raise ValueError(f"not an IPv4 address: {ip!r}") from None
        if not self.ports or not all(isinstance(p, int) and 0 < p < 65536 for p in self.ports):
            raise ValueError(f"ports must be UDP port numbers, not {self.ports!r}")
        if not 0 <= self.ttl <= 255:
            raise ValueError(f"ttl must be 0..255, not {self.ttl!r}")
        if self.window < 0:
            raise ValueError("window must not be negative")


@dataclass(frozen=True)
class Handshake:
    """One multicast packet: ``{kind, node, cluster, cookie_hash}``."""

    kind: str
    node: str
    cluster: str
    cookie_hash: int


def cookie_hash(cookie: str) -> int:
    """``erlang:phash2(Cookie)`` of the cookie atom, as ekka puts in its packets."""
    return phash2(Atom(cookie))


def encode_handshake(packet: Handshake, *, minor_version: int = 1) -> bytes:
    """The datagram for ``packet`` (``minor_version=1``: byte-identical to OTP 25's)."""
    term = (Atom(packet.kind), Atom(packet.node), Atom(packet.cluster), packet.cookie_hash)
    return term_to_binary(term, minor_version=minor_version)


def _atom_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Atom):
        return value.name
    return None


def decode_handshake(data: bytes) -> Handshake:
    """Parse a datagram; ``ValueError`` says why it is not a handshake.

    The message starts with ``corrupt data`` for undecodable bytes, ``bad term``
    for a term that is not a 4-tuple and ``bad handshake`` for other 4-tuples.
    """
    try:
        term = binary_to_term(data)
    except DecodeError as exc:
        raise ValueError(f"corrupt data ({exc}): {bytes(data[:64])!r}") from None
    if not (isinstance(term, tuple) and len(term) == 4):
        raise ValueError(f"bad term: {term!r}")
    kind, node, cluster = (_atom_text(t) for t in term[:3])
    chash = term[3]
    if kind not in (PING, PONG) or node is None or cluster is None or type(chash) is not int:
        raise ValueError(f"bad handshake: {term!r}")
    return Handshake(kind, node, cluster, chash)


@dataclass
class _Seen:
    nodes: set[str] = field(default_factory=set)
    waiters: list[tuple[str, asyncio.Future[None]]] = field(default_factory=list)

    def add(self, node: str) -> None:
        self.nodes.add(node)
        for name, fut in self.waiters:
            if name == node and not fut.done():
                fut.set_result(None)
        self.waiters = [(n, f) for n, f in self.waiters if not f.done()]


class McastResponder(asyncio.DatagramProtocol):
    """The always-on multicast socket of a node: answers pings, collects peers.

    ``cluster_name`` is the configured cluster name (``None``: unset, as in ekka:
    ``undefined`` is sent and ``ekka`` expected). Use :meth:`open` to bind it.
    """

    def __init__(
        self,
        node: str,
        cookie: str,
        cluster_name: str | None = None,
        options: McastOptions | None = None,
    ) -> None:
        self.node = check_node_name(node)
        self.options = options or McastOptions()
        self.cookie_hash = cookie_hash(cookie)
        self.sent_cluster = cluster_name if cluster_name is not None else SENDER_DEFAULT_CLUSTER
        self.expected_cluster = (
            cluster_name if cluster_name is not None else RECEIVER_DEFAULT_CLUSTER
        )
        self.port: int | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._seen = _Seen()
        # Fail early on names that cannot be atoms.
        self._packet(PING)

    # ------------------------------------------------------------ lifecycle

    @property
    def is_open(self) -> bool:
        """Whether the socket is bound and listening."""
        return self._transport is not None and not self._transport.is_closing()

    async def open(self) -> None:
        """Bind the first free port of ``ports`` and join the group (OSError on failure)."""
        if self.is_open:
            return
        sock = self._bind()
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)

    def _bind(self) -> socket.socket:
        opts = self.options
        for port in opts.ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("0.0.0.0", port))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    log.warning("multicast port %d in use, trying the next one", port)
                    continue
                raise
            try:
                iface = socket.inet_aton(opts.iface)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, opts.ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(opts.loop))
                membership = socket.inet_aton(opts.addr) + iface
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            self.port = port
            return sock
        raise OSError(errno.EADDRINUSE, f"every multicast port is in use: {list(opts.ports)}")

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for _, fut in self._seen.waiters:
            fut.cancel()
        self._seen.waiters.clear()

    # ------------------------------------------------------------ protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.warning("multicast socket closed: %s", exc)
        self._transport = None

    def error_received(self, exc: Exception) -> None:
        log.warning("multicast socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = decode_handshake(data)
        except ValueError as exc:
            log.warning("ignoring datagram from %s:%d: %s", addr[0], addr[1], exc)
            return
        if packet.node == self.node:
            return  # our own packet, looped back
        if packet.cluster != self.expected_cluster or packet.cookie_hash != self.cookie_hash:
            log.warning(
                "bad handshake from %s:%d: %s (cluster %r, cookie hash %d expected)",
                addr[0],
                addr[1],
                packet,
                self.expected_cluster,
                self.cookie_hash,
            )
            return
        if packet.kind == PING:
            self._send(PONG, addr[1])
        self._seen.add(packet.node)

    # ------------------------------------------------------------ API

    def _packet(self, kind: str) -> bytes:
        hs = Handshake(kind, self.node, self.sent_cluster, self.cookie_hash)
        try:
            return encode_handshake(hs, minor_version=self.options.minor_version)
        except EncodeError as exc:
            raise ValueError(f"cannot encode the multicast packet: {exc}") from None

    def _send(self, kind: str, port: int) -> None:
        if self._transport is None:
            return
        self._transport.sendto(self._packet(kind), (self.options.addr, port))

    def ping(self) -> None:
        """Send a ping to the group on every configured port."""
        for port in self.options.ports:
            self._send(PING, port)

    def take_seen(self) -> list[str]:
        """The nodes seen since the last call, sorted; the set is cleared."""
        nodes = sorted(self._seen.nodes)
        self._seen.nodes.clear()
        return nodes

    def peek_seen(self) -> list[str]:
        """The nodes seen since the last :meth:`take_seen`, sorted, without clearing."""
        return sorted(self._seen.nodes)

    async def wait_seen(self, node: str) -> None:
        """Return once ``node`` is in the seen set (wrap in a timeout)."""
        if node in self._seen.nodes:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seen.waiters.append((node, fut))
        await fut


class McastStrategy(Strategy):
    """Multicast discovery for the local ``node`` with ``cookie`` and ``cluster_name``.

    :meth:`start` opens the responder (ekka starts it at boot so that a node answers
    pings before its own first round); :meth:`discover` starts it if needed.
    """

    name = "mcast"

    def __init__(
        self,
        node: str,
        cookie: str,
        cluster_name: str | None = None,
        options: McastOptions | None = None,
    ) -> None:
        self.responder = McastResponder(node, cookie, cluster_name, options)
        self._lock = asyncio.Lock()

    @property
    def options(self) -> McastOptions:
        """The socket and timing options."""
        return self.responder.options

    async def start(self) -> None:
        """Open the responder socket; :class:`DiscoveryError` if no port can be bound."""
        if self.responder.is_open:
            return
        async with self._lock:
            try:
                await self.responder.open()
            except OSError as exc:
                raise self.error("cannot open the multicast socket: %s", exc) from None

    async def discover(self) -> list[str]:
        """Ping, collect answers for ``window`` seconds, return ``[node, *seen]``."""
        await self.start()
        try:
            self.responder.ping()
        except OSError as exc:
            raise self.error("cannot send the ping: %s", exc) from None
        await asyncio.sleep(self.options.window)
        if not self.responder.is_open:
            raise self.error("the multicast socket was closed during discovery")
        return [self.responder.node, *self.responder.take_seen()]

    async def wait_seen(self, node: str) -> None:
        """Return once ``node`` has been heard from (wrap in a timeout)."""
        await self.responder.wait_seen(node)

    async def close(self) -> None:
        """Close the responder socket."""
        self.responder.close()

    def __repr__(self) -> str:
        o = self.options
        return f"<McastStrategy {self.responder.node} {o.addr}:{list(o.ports)}>"
