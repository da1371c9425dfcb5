"""How a node finds a peer: the host part to an IP address, the name to a port.

Two port rules, as :class:`PeerResolver` is configured:

* **EPMD** (OTP's default): ask the epmd on the peer's host with PORT_PLEASE2,
  on the port :func:`~pyekka.node.epmd.configured_epmd_port` gives
  (``ERL_EPMD_PORT``, else ``-epmd_port``, else 4369).
* **ekka's epmd-less rule**: the port is computed from the peer's name
  (:func:`pyekka.dist.names.ekka_port`, base ``inet_dist_base_port``, 4370 by
  default); no epmd anywhere, and ekka's ``ekka_epmd`` reports version 5.

The host part is checked the way ``inet_tcp_dist`` checks it (short names have
no dot in the host; long names have a dot or are an IP address) and resolved
like ``inet:getaddr/2``: the first address of the family.

Every failure is a :class:`ResolveError`, a
:class:`~pyekka.node.connect_error.ConnectError` whose ``reason`` tells a bad
name, an unknown host, an unknown node and an epmd that does not answer apart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import ClassVar

from pyekka.dist.names import EKKA_BASE_PORT, ekka_port, split_node, validate_own_name
from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.epmd import EpmdError, lookup_node, select_best_version

__all__ = [
    "DEFAULT_SETUP_TIMEOUT",
    "EKKA_EPMD_VERSION",
    "HostNotFound",
    "IllegalNodeName",
    "NoEpmd",
    "PeerAddress",
    "PeerResolver",
    "PortNotFound",
    "ResolveError",
    "own_node_name",
    "resolve_host",
    "split_peer",
]

#: OTP's default ``net_setuptime`` (seconds) bounds a whole lookup.
DEFAULT_SETUP_TIMEOUT = 7.0
#: The distribution version ``ekka_epmd:port_please/2`` reports for every node.
EKKA_EPMD_VERSION = 5


class ResolveError(ConnectError):
    """The peer ``node`` cannot be reached: bad name, unknown host or no port.

    ``detail`` says why; ``str()`` is ``"node: detail"``.
    """

    failure: ClassVar[ConnectFailure] = ConnectFailure.UNKNOWN_NODE
    node: str

    def __init__(self, node: str, message: str) -> None:
        super().__init__(self.failure, message, node)

    def __str__(self) -> str:
        return f"{self.node}: {self.detail}"


class IllegalNodeName(ResolveError, ValueError):
    """The name is not ``alive@host``, or its host does not suit long/short names."""

    failure = ConnectFailure.BAD_NAME


class HostNotFound(ResolveError):
    """The host part does not resolve to an address of the wanted family."""

    failure = ConnectFailure.UNKNOWN_HOST


class PortNotFound(ResolveError):
    """No port for the node: epmd does not know it, is not reachable, or ekka gives none."""


class NoEpmd(PortNotFound):
    """The epmd on the peer's host cannot be asked: not running, or not answering."""

    failure = ConnectFailure.NO_EPMD


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """Where to connect to a peer, and the distribution version its lookup reported."""

    node: str
    alive: str
    host: str
    ip: str
    port: int
    version: int


def split_peer(
    node: str, *, long_names: bool, family: socket.AddressFamily = socket.AF_INET
) -> tuple[str, str]:
    """``(alive, host)`` of a peer, checked as ``inet_tcp_dist:splitnode/3`` does.

    Short names: the host may not contain a dot (so no IPv4 address either).
    Long names: a host without a dot must be an IP address of ``family``
    (strictly written, as ``inet_parse:ipv4strict_address``/``ipv6strict_address``).
    """
    try:
        alive, host = split_node(node)
    except ValueError as exc:
        raise IllegalNodeName(node, str(exc)) from None
    has_dot = "." in host
    if not long_names and has_dot:
        raise IllegalNodeName(
            node, f"host {host!r} is fully qualified but this node uses short names"
        )
    if long_names and not has_dot and not _is_strict_address(host, family):
        raise IllegalNodeName(
            node, f"host {host!r} is not fully qualified but this node uses long names"
        )
    return alive, host


def _is_strict_address(host: str, family: socket.AddressFamily) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == (6 if family == socket.AF_INET6 else 4)


async def resolve_host(
    host: str,
    *,
    family: socket.AddressFamily = socket.AF_INET,
    timeout: float | None = DEFAULT_SETUP_TIMEOUT,
    node: str | None = None,
) -> str:
    """The first address of ``family`` for ``host`` (like ``inet:getaddr/2``).

    Raises :class:`HostNotFound` (naming ``node`` if given) when it has none.
    """
    who = node if node is not None else host
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, None, family=family, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise HostNotFound(who, f"resolving {host!r} timed out") from None
    except (OSError, UnicodeError) as exc:
        raise HostNotFound(who, f"cannot resolve {host!r}: {exc}") from None
    for _family, _type, _proto, _name, sockaddr in infos:
        return str(sockaddr[0])
    raise HostNotFound(who, f"{host!r} has no address")  # pragma: no cover - libc returns some


@dataclass(frozen=True)
class PeerResolver:
    """Finds peers for a node configured with these settings.

    ``use_epmd=False`` selects ekka's port rule with ``dist_base_port``.
    ``epmd_port=None`` takes :func:`~pyekka.node.epmd.configured_epmd_port` at
    each lookup. ``lowest_version``/``highest_version`` are the distribution
    versions this node speaks (for the version epmd's answer implies).
    """

    long_names: bool = False
    use_epmd: bool = True
    dist_base_port: int = EKKA_BASE_PORT
    epmd_port: int | None = None
    family: socket.AddressFamily = socket.AF_INET
    lowest_version: int = 5
    highest_version: int = 6
    timeout: float | None = DEFAULT_SETUP_TIMEOUT

    async def resolve(self, node: str) -> PeerAddress:
        """Where ``node`` listens: raises a :class:`ResolveError` subclass if unknown."""
        alive, host = split_peer(node, long_names=self.long_names, family=self.family)
        ip = ""
        try:
            async with asyncio.timeout(self.timeout):
                ip = await resolve_host(host, family=self.family, timeout=None, node=node)
                if self.use_epmd:
                    port, version = await self._ask_epmd(node, alive, ip)
                else:
                    port, version = self._ekka_port(node), EKKA_EPMD_VERSION
        except TimeoutError:
            if not ip:
                raise HostNotFound(node, f"resolving {host!r} timed out") from None
            raise NoEpmd(node, f"epmd on {ip} did not answer in time") from None
        return PeerAddress(node, alive, host, ip, port, version)

    async def _ask_epmd(self, node: str, alive: str, ip: str) -> tuple[int, int]:
        try:
            info = await lookup_node(ip, alive, epmd_port=self.epmd_port, timeout=None)
        except EpmdError as exc:
            raise NoEpmd(node, f"epmd lookup failed: {exc}") from exc
        if info is None:
            raise PortNotFound(node, f"epmd on {ip} does not know {alive!r}")
        version = select_best_version(
            self.lowest_version, self.highest_version, info.lowest_version, info.highest_version
        )
        return info.port, version

    def _ekka_port(self, node: str) -> int:
        port = ekka_port(node, self.dist_base_port)
        if port == 0:
            raise PortNotFound(node, "ekka gives remsh* nodes no port (they only connect out)")
        if port > 0xFFFF:
            raise PortNotFound(node, f"ekka's rule gives port {port}, beyond 65535")
        return port

    def listen_port(self, own_node: str) -> int:
        """The port this node must listen on: ``0`` (any) with epmd, else ekka's port."""
        if self.use_epmd:
            return 0
        port = ekka_port(own_node, self.dist_base_port)
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"ekka's rule gives {own_node} port {port}, beyond 65535")
        return port


def own_node_name(name: str, *, long_names: bool) -> str:
    """The full name a node started with ``-name``/``-sname`` ``name`` runs under.

    Without ``@host``, short names take this machine's host name up to the first
    dot, long names its fully qualified name (``ValueError`` if it has no dot, as
    OTP refuses to start then). The result is checked as ``net_kernel`` does.
    """
    if "@" not in name:
        if long_names:
            host = socket.getfqdn()
            if "." not in host:
                raise ValueError(
                    f"cannot use long node names: host name {host!r} is not fully qualified"
                )
        else:
            host = socket.gethostname().split(".", 1)[0]
        name = f"{name}@{host}"
    validate_own_name(name, long_names=long_names)
    return name
