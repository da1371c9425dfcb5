"""Autocluster with mcast discovery on ``lo``: nodes started from .conf files form one
cluster by themselves while garbage datagrams hit the group, and a new node joins."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pyekka.term import term_to_binary
from pyekka.term.types import Atom
from tests.autocluster_nodes import COOKIE, Fleet, one_cluster, write_conf
from tests.discovery_servers import free_port
from tests.otp_nodes import HOST, next_number
from tests.test_discovery_mcast import GROUP, _group_socket, loopback_multicast  # noqa: F401

pytestmark = pytest.mark.usefixtures("loopback_multicast")

A = Atom


def _conf(tmp_path: Path, base: int, port: int) -> Path:
    alive = f"mc{next_number()}"
    return write_conf(
        tmp_path / f"{alive}.conf",
        {
            "node.name": f"{alive}@{HOST}",
            "node.cookie": COOKIE,
            "node.data_dir": tmp_path / alive,
            "node.epmd": "off",
            "node.dist_base_port": base,
            "node.dist_interface": HOST,
            "cluster.name": "mcastcl",
            "cluster.discovery": "mcast",
            "cluster.mcast.addr": GROUP,
            "cluster.mcast.ports": [port],
            "cluster.mcast.iface": HOST,
            "cluster.mcast.ttl": 1,
            "cluster.mcast.loop": "on",
        },
    )


async def test_three_nodes_form_one_cluster_despite_garbage_then_a_fourth_joins(
    fleet: Fleet, tmp_path: Path, ekka_base: int, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    foreign = term_to_binary((A("ping"), A(f"intruder@{HOST}"), A("othercl"), 1))
    with _group_socket(port) as noise:
        for junk in (b"\x83garbage", b"", foreign):
            noise.sendto(junk, (GROUP, port))
        nodes = [await fleet.start(_conf(tmp_path, ekka_base, port)) for _ in range(3)]
        for junk in (b"\x83\x68\x04", foreign):
            noise.sendto(junk, (GROUP, port))
        await one_cluster(nodes)
    assert {r.autocluster.status().strategy for r in nodes} == {"mcast"}
    assert f"intruder@{HOST}" not in {n for r in nodes for n in r.autocluster.last_result.alive}
    assert "bad handshake" in caplog.text and "ignoring datagram" in caplog.text

    fourth = await fleet.start(_conf(tmp_path, ekka_base, port))
    await one_cluster([*nodes, fourth])
    assert fourth.autocluster.last_result is not None
    assert fourth.autocluster.last_result.joined
