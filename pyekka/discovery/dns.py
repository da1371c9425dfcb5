"""``dns`` discovery: node names from A, AAAA or SRV records (``ekka_cluster_dns``).

* ``a`` / ``aaaa``: one node ``App@IP`` per address record of ``name``, in answer
  order; addresses are written as Erlang's ``inet:ntoa/1`` writes them.
* ``srv``: one node ``App@Target`` per distinct SRV target host, sorted (ports,
  priorities and weights are ignored, as in ekka).

``app`` defaults to the local node's short name (ekka 0.23; 0.8 requires it). The
resolver is the system's (``/etc/resolv.conf``) or the given ``nameserver`` and
``port``. A name that does not exist (NXDOMAIN) is a :class:`DiscoveryError` (ekka
logs nothing and finds no node); a name without records of the type finds no node.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from pyekka.discovery.strategy import Strategy, check_node_name, short_name, unique

__all__ = ["RECORD_TYPES", "DnsStrategy", "ntoa"]

RECORD_TYPES = {"a": "A", "aaaa": "AAAA", "srv": "SRV"}
"""ekka's ``type`` option -> the DNS record type queried."""


def _hex_groups(groups: Sequence[int]) -> str:
    """Colon-hex with the first longest run (>= 2) of zero groups written ``::``."""
    best_at, best_len, run_at, run_len = -1, 1, -1, 0
    for i, g in enumerate(groups):
        if g == 0:
            if run_len == 0:
                run_at = i
            run_len += 1
            if run_len > best_len:
                best_at, best_len = run_at, run_len
        else:
            run_len = 0
    text = [format(g, "x") for g in groups]
    if best_at < 0:
        return ":".join(text)
    return ":".join(text[:best_at]) + "::" + ":".join(text[best_at + best_len :])


def ntoa(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An IP address as Erlang's ``inet:ntoa/1`` prints it (ekka's node-name host part).

    IPv4 is dotted decimal; IPv6 is lowercase colon-hex with the first longest zero
    run compressed, ``::a.b.c.d`` and ``::ffff:a.b.c.d`` for IPv4-compatible and
    -mapped addresses, and ``fe80::...%0N`` for link-local ones carrying a scope.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if ip.version == 4:
        return str(ip)
    g = [int.from_bytes(ip.packed[i : i + 2], "big") for i in range(0, 16, 2)]
    if g == [0] * 8:
        return "::"
    if g == [0] * 7 + [1]:
        return "::1"
    dotted = f"{g[6] >> 8}.{g[6] & 0xFF}.{g[7] >> 8}.{g[7] & 0xFF}"
    if g[:6] == [0] * 6:
        return "::" + dotted
    if g[:6] == [0] * 5 + [0xFFFF]:
        return "::ffff:" + dotted
    if g[0] in (0xFE80, 0xFF02) and g[1] != 0:
        return _hex_groups([g[0], 0, *g[2:]]) + f"%0{g[1]}"
    return _hex_groups(g)


class DnsStrategy(Strategy):
    """Discovery through DNS records of ``name``.

    ``record_type`` is ekka's ``type`` option: ``"a"`` (default), ``"aaaa"`` or
    ``"srv"``. ``app`` is the node-name prefix; without it, ``node``'s short name is
    used. ``nameserver``/``port`` select a server instead of the system resolver.
    """

    name = "dns"

    def __init__(
        self,
        domain: str,
        app: str | None = None,
        record_type: str = "a",
        *,
        node: str | None = None,
        nameserver: str | None = None,
        port: int = 53,
        timeout: float = 5.0,
    ) -> None:
        if record_type not in RECORD_TYPES:
            raise ValueError(f"dns type must be one of {sorted(RECORD_TYPES)}, not {record_type!r}")
        if app is None:
            if node is None:
                raise ValueError("dns discovery needs app (or the local node name)")
            app = short_name(check_node_name(node))
        if not domain:
            raise ValueError("dns discovery needs a domain name")
        self.domain = domain
        self.app = app
        self.record_type = record_type
        self.nameserver = nameserver
        self.port = port
        self.timeout = timeout

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self.nameserver is None:
            try:
                resolver = dns.asyncresolver.Resolver()
            except (dns.exception.DNSException, OSError) as exc:
                raise self.error("no system resolver: %s", exc) from None
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [self.nameserver]
        resolver.port = self.port
        resolver.lifetime = self.timeout
        return resolver

    async def _lookup(self) -> dns.resolver.Answer | None:
        rdtype = RECORD_TYPES[self.record_type]
        where = f" at {self.nameserver}:{self.port}" if self.nameserver else ""
        try:
            # The system resolver applies its search domains, as Erlang's inet_res does.
            search = self.nameserver is None
            return await self._resolver().resolve(self.domain, rdtype, search=search)
        except dns.resolver.NXDOMAIN:
            raise self.error("%s does not exist (NXDOMAIN)%s", self.domain, where) from None
        except dns.resolver.NoAnswer:
            self.log.info("dns discovery: no %s records for %s", rdtype, self.domain)
            return None
        except dns.resolver.LifetimeTimeout:
            raise self.error("timeout resolving %s %s%s", rdtype, self.domain, where) from None
        except (dns.exception.DNSException, OSError) as exc:
            what = f"{rdtype} {self.domain}{where}"
            raise self.error("cannot resolve %s: %s", what, exc) from None

    async def discover(self) -> list[str]:
        """The node names derived from the records (may be empty)."""
        answer = await self._lookup()
        if answer is None:
            return []
        if self.record_type == "srv":
            targets = {r.target for r in answer if r.target != dns.name.root}
            hosts = sorted({t.to_text(omit_final_dot=True) for t in targets})
        else:
            hosts = unique(ntoa(r.address) for r in answer)
        return [f"{self.app}@{host}" for host in hosts]

    def __repr__(self) -> str:
        return f"<DnsStrategy {self.record_type} {self.domain} app={self.app!r}>"
