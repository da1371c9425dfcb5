"""dns discovery against a real dnsmasq on 127.0.0.1 (A, AAAA, SRV, NXDOMAIN)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from pyekka.discovery import DiscoveryError, DnsStrategy, Outcome
from pyekka.discovery.dns import ntoa
from pyekka.testing.otp import OtpRuntime
from tests.discovery_servers import free_port, run_dnsmasq

DOMAIN = "pyekka.test"
RECORDS = [
    f"--host-record=nodes.{DOMAIN},198.51.100.1",
    f"--host-record=nodes.{DOMAIN},198.51.100.2",
    f"--host-record=nodes.{DOMAIN},2001:db8::1",
    f"--host-record=nodes.{DOMAIN},2001:db8:0:0:1::7",
    f"--host-record=v6only.{DOMAIN},2001:db8::5",
    f"--srv-host=_ekka._tcp.{DOMAIN},n2.{DOMAIN},4370,0,10",
    f"--srv-host=_ekka._tcp.{DOMAIN},n1.{DOMAIN},4370,0,10",
    f"--srv-host=_ekka._tcp.{DOMAIN},n1.{DOMAIN},4371,1,5",
]


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    with run_dnsmasq(RECORDS, DOMAIN) as port:
        yield port


def _strategy(port: int, name: str, kind: str = "a", **kw: object) -> DnsStrategy:
    kw.setdefault("app", "emqx")
    return DnsStrategy(name, record_type=kind, nameserver="127.0.0.1", port=port, **kw)  # type: ignore[arg-type]


async def test_a_records(dns_port: int) -> None:
    found = await _strategy(dns_port, f"nodes.{DOMAIN}").discover()
    assert sorted(found) == ["emqx@198.51.100.1", "emqx@198.51.100.2"]


async def test_aaaa_records(dns_port: int) -> None:
    found = await _strategy(dns_port, f"nodes.{DOMAIN}", "aaaa").discover()
    assert sorted(found) == ["emqx@2001:db8::1", "emqx@2001:db8::1:0:0:7"]


async def test_srv_records_distinct_sorted_targets(dns_port: int) -> None:
    found = await _strategy(dns_port, f"_ekka._tcp.{DOMAIN}", "srv").discover()
    assert found == [f"emqx@n1.{DOMAIN}", f"emqx@n2.{DOMAIN}"]


async def test_app_defaults_to_the_local_short_name(dns_port: int) -> None:
    s = DnsStrategy(
        f"nodes.{DOMAIN}", node="broker@10.9.9.9", nameserver="127.0.0.1", port=dns_port
    )
    assert all(n.startswith("broker@198.51.100.") for n in await s.discover())
    assert await s.lock() is Outcome.IGNORE
    assert await s.register() is Outcome.IGNORE


async def test_name_without_records_of_the_type_finds_nothing(dns_port: int) -> None:
    assert await _strategy(dns_port, f"v6only.{DOMAIN}").discover() == []


async def test_nxdomain_is_a_clear_error(dns_port: int) -> None:
    with pytest.raises(DiscoveryError, match="NXDOMAIN"):
        await _strategy(dns_port, f"missing.{DOMAIN}").discover()


async def test_unreachable_nameserver_is_an_error() -> None:
    port = free_port(socket.SOCK_DGRAM)  # nothing listens there
    with pytest.raises(DiscoveryError, match=r"dns discovery: (cannot resolve|timeout)"):
        await _strategy(port, f"nodes.{DOMAIN}", timeout=1.0).discover()


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        DnsStrategy("x", app="a", record_type="mx")
    with pytest.raises(ValueError):
        DnsStrategy("x")  # neither app nor node


_ADDRESSES = [
    "0.0.0.0",
    "198.51.100.7",
    "::",
    "::1",
    "::2",
    "::198.51.100.7",
    "::ffff:198.51.100.7",
    "::ffff:0:0",
    "2001:db8::1",
    "2001:db8:0:0:1::1",
    "2001:0:0:1:0:0:0:1",
    "2001:db8:1:2:3:4:5:6",
    "1::",
    "1:0:1:0:1:0:1:0",
    "fe80::1",
    "fe80:3::1",
    "ff02:1::2",
    "fd00:0:0:0:0:0:0:ab",
]


def test_ntoa_matches_erlang(otp: OtpRuntime) -> None:
    """Node names use ``inet:ntoa/1``'s spelling of addresses; compare with a VM."""
    tuples = []
    for text in _ADDRESSES:
        ip = ipaddress.ip_address(text)
        if ip.version == 4:
            fields = text.split(".")
        else:
            fields = [str(int.from_bytes(ip.packed[i : i + 2], "big")) for i in range(0, 16, 2)]
        tuples.append("{" + ",".join(fields) + "}")
    expr = (
        'lists:foreach(fun(A) -> io:format("~s~n", [inet:ntoa(A)]) end, [' + ",".join(tuples) + "])"
    )
    expected = otp.eval_text(expr).split()
    assert [ntoa(a) for a in _ADDRESSES] == expected
