"""Autocluster with dns discovery against a real dnsmasq: the A records of one name
give ``app@IP`` nodes (one loopback address each) that form one cluster by
themselves; a node whose address was listed but not yet running joins later; a
name that does not exist is a clear error, retried, never fatal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pyekka.discovery.autocluster import AutoclusterState
from tests.autocluster_nodes import COOKIE, Fleet, loopback_hosts, one_cluster, write_conf
from tests.discovery_servers import run_dnsmasq

DOMAIN = "autocluster.test"
APP = "dnsapp"
HOSTS = 4


@pytest.fixture(scope="module")
def hosts() -> list[str]:
    return loopback_hosts(HOSTS)


@pytest.fixture(scope="module")
def dns_port(hosts: list[str]) -> Iterator[int]:
    records = [f"--host-record=nodes.{DOMAIN},{ip}" for ip in hosts]
    with run_dnsmasq(records, DOMAIN) as port:
        yield port


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        await f.close()


def _conf(tmp_path: Path, base: int, port: int, ip: str, name: str = f"nodes.{DOMAIN}") -> Path:
    return write_conf(
        tmp_path / f"{ip}.conf",
        {
            "node.name": f"{APP}@{ip}",
            "node.cookie": COOKIE,
            "node.data_dir": tmp_path / ip,
            "node.epmd": "off",
            "node.dist_base_port": base,
            "node.dist_interface": ip,
            "cluster.name": "dnscl",
            "cluster.discovery": "dns",
            "cluster.dns.name": name,
            "cluster.dns.app": APP,
            "cluster.dns.type": "a",
            "cluster.dns.nameserver": "127.0.0.1",
            "cluster.dns.port": port,
        },
    )


async def test_a_records_form_one_cluster_and_a_late_node_joins(
    fleet: Fleet, tmp_path: Path, ekka_base: int, dns_port: int, hosts: list[str]
) -> None:
    nodes = [await fleet.start(_conf(tmp_path, ekka_base, dns_port, ip)) for ip in hosts[:3]]
    await one_cluster(nodes)
    last = nodes[0].autocluster.last_result
    assert last is not None
    assert sorted(last.discovered or ()) == sorted(f"{APP}@{ip}" for ip in hosts)
    assert f"{APP}@{hosts[3]}" not in last.alive  # listed, but nothing runs there yet

    late = await fleet.start(_conf(tmp_path, ekka_base, dns_port, hosts[3]))
    await one_cluster([*nodes, late])
    assert late.autocluster.last_result is not None and late.autocluster.last_result.joined


async def test_nxdomain_is_retried_and_never_fatal(
    fleet: Fleet, tmp_path: Path, ekka_base: int, dns_port: int, hosts: list[str]
) -> None:
    conf = _conf(tmp_path, ekka_base, dns_port, hosts[0], name=f"missing.{DOMAIN}")
    lonely = await fleet.start(conf)
    await lonely.autocluster.wait_for(lambda a: a.rounds >= 3)
    result = lonely.autocluster.last_result
    assert result is not None and result.discovered is None and result.registered is None
    assert len(result.errors) == 1 and "NXDOMAIN" in result.errors[0]
    assert lonely.autocluster.state is not AutoclusterState.DONE
    assert lonely.cluster.running  # the node and its services keep running
