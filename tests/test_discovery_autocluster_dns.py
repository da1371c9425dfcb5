"""Autocluster with dns discovery against a real dnsmasq.

In a lab of network namespaces (:mod:`pyekka.testing.netns`: one host, one address
per node; dnsmasq on the lab's service address), ``pyekka start -c FILE`` nodes:

* A records of one name give ``app@IP`` nodes that form one cluster by themselves; a
  fourth node added to the records joins; a node that leaves is gone from the others'
  running nodes;
* SRV records give ``app@TARGET`` nodes (targets are host names the lab resolves
  through dnsmasq, the hosts' ``resolv.conf``) that form one cluster.

In-process, on 127.0.0.1: a name that does not exist is a clear error, retried, never
fatal.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pyekka.discovery.autocluster import AutoclusterState
from pyekka.testing.netns import NetnsLab
from tests.autocluster_nodes import COOKIE, LAB_PORT, Fleet, LabNodes, write_conf
from tests.cli_nodes import CliEnv
from tests.discovery_servers import Dnsmasq, dnsmasq_server, run_dnsmasq

DOMAIN = "autocluster.test"
APP = "dnsapp"


@pytest.fixture
def lab(netns_lab: Callable[..., NetnsLab]) -> NetnsLab:
    return netns_lab(hosts=4)


@pytest.fixture
async def lab_nodes(lab: NetnsLab, tmp_path: Path, cli_env: CliEnv) -> AsyncIterator[LabNodes]:
    async with contextlib.AsyncExitStack() as stack:
        yield LabNodes(lab, tmp_path, cli_env(), stack)


@contextlib.contextmanager
def lab_dnsmasq(lab: NetnsLab, *records: str) -> Iterator[Dnsmasq]:
    """dnsmasq in the lab's switch namespace, on its service address, port 53."""
    assert lab.service_address is not None
    prefix = lab.exec_argv(lab.switch)
    with dnsmasq_server(
        records, DOMAIN, address=lab.service_address, port=53, prefix=prefix
    ) as server:
        yield server


def _dns_keys(name: str, record_type: str) -> dict[str, str]:
    return {
        "cluster.name": "dnscl",
        "cluster.discovery": "dns",
        "cluster.dns.name": name,
        "cluster.dns.app": APP,
        "cluster.dns.type": record_type,
    }


async def test_a_records_form_one_cluster_a_new_one_joins_and_one_leaves(
    lab: NetnsLab, lab_nodes: LabNodes, tmp_path: Path
) -> None:
    assert lab.service_address is not None
    names = tmp_path / "nodes.hosts"  # re-read by dnsmasq on SIGHUP
    names.write_text("".join(f"{h.address} nodes.{DOMAIN}\n" for h in lab.hosts[:3]))
    keys = {
        **_dns_keys(f"nodes.{DOMAIN}", "a"),
        "cluster.dns.nameserver": lab.service_address,
        "cluster.dns.port": 53,
    }
    with lab_dnsmasq(lab, f"--addn-hosts={names}") as dns:
        nodes = [await lab_nodes.start(h, f"{APP}@{h.address}", keys) for h in lab.hosts[:3]]
        statuses = await lab_nodes.one_cluster(nodes)
        for status in statuses.values():
            last = status["discovery"]["last_result"]
            assert sorted(last["discovered"]) == sorted(n.name for n in nodes)
            assert status["discovery"]["strategy"] == "dns"

        fourth = lab.hosts[3]
        with names.open("a") as file:
            file.write(f"{fourth.address} nodes.{DOMAIN}\n")
        assert "4 names" in dns.reload()
        newcomer = await lab_nodes.start(fourth, f"{APP}@{fourth.address}", keys)
        statuses = await lab_nodes.one_cluster([*nodes, newcomer])
        last = statuses[newcomer.name]["discovery"]["last_result"]
        assert last["joined"] and last["target"] in {n.name for n in nodes}
        assert sorted(last["discovered"]) == sorted(f"{APP}@{a}" for a in lab.addresses)

        leaver, *staying = [*nodes, newcomer]
        got = await lab_nodes.ctl(leaver, "leave")
        assert got.status == 0, got
        await lab_nodes.one_cluster(staying)  # none of them lists it, not even stopped
        alone = await lab_nodes.status(leaver)
        assert alone["running_nodes"] == [leaver.name]
        assert alone["discovery"]["state"] == "stopped"


async def test_srv_records_form_one_cluster_of_target_names(
    lab: NetnsLab, lab_nodes: LabNodes
) -> None:
    assert lab.service_address is not None
    hosts = {f"n{chr(ord('a') + h.index)}.{DOMAIN}": h for h in lab.hosts[:3]}
    service = f"_ekka._tcp.{DOMAIN}"
    records = [f"--host-record={name},{h.address}" for name, h in hosts.items()]
    records += [f"--srv-host={service},{name},{LAB_PORT}" for name in hosts]
    # the hosts resolve names (node names, SRV records) through the lab's dnsmasq
    lab.write_etc(
        {
            "resolv.conf": f"nameserver {lab.service_address}\n",
            "hosts": lab.hosts_file({}),
        }
    )
    keys = _dns_keys(service, "srv")  # no nameserver: the system resolver
    with lab_dnsmasq(lab, *records):
        nodes = [await lab_nodes.start(h, f"{APP}@{name}", keys) for name, h in hosts.items()]
        statuses = await lab_nodes.one_cluster(nodes)
    want = sorted(f"{APP}@{name}" for name in hosts)
    for status in statuses.values():
        assert status["discovery"]["last_result"]["discovered"] == want
        assert sorted(status["running_nodes"]) == want


# -- in-process, on 127.0.0.1 ------------------------------------------------------------


async def test_nxdomain_is_retried_and_never_fatal(
    fleet: Fleet, tmp_path: Path, ekka_base: int
) -> None:
    with run_dnsmasq([f"--host-record=nodes.{DOMAIN},127.0.0.1"], DOMAIN) as port:
        conf = write_conf(
            tmp_path / "lonely.conf",
            {
                "node.name": f"{APP}@127.0.0.1",
                "node.cookie": COOKIE,
                "node.data_dir": tmp_path / "lonely",
                "node.epmd": "off",
                "node.dist_base_port": ekka_base,
                "node.dist_interface": "127.0.0.1",
                **_dns_keys(f"missing.{DOMAIN}", "a"),
                "cluster.dns.nameserver": "127.0.0.1",
                "cluster.dns.port": port,
            },
        )
        lonely = await fleet.start(conf)
        await lonely.autocluster.wait_for(lambda a: a.rounds >= 3)
    result = lonely.autocluster.last_result
    assert result is not None and result.discovered is None and result.registered is None
    assert len(result.errors) == 1 and "NXDOMAIN" in result.errors[0]
    assert lonely.autocluster.state is not AutoclusterState.DONE
    assert lonely.cluster.running  # the node and its services keep running
