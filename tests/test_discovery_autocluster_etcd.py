"""Autocluster with etcd discovery (v2 and v3) against a real etcd: nodes started from
.conf files take the lock in turn, form one cluster by themselves and register; a new
node joins; a node that leaves unregisters (its key is gone). Unreachable servers and
malformed answers are clear errors, retried, never fatal."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from pyekka.discovery.autocluster import AutoclusterState
from pyekka.term.types import Atom
from tests import test_discovery_etcd as etcd_tests
from tests.autocluster_nodes import COOKIE, Fleet, one_cluster, write_conf
from tests.discovery_servers import Etcd, free_port
from tests.otp_nodes import HOST, next_number
from tests.test_discovery_etcd import _raw, _v3_raw

# the fixtures of the etcd discovery tests, under names of their own here: one etcd
# per module, a fresh key prefix per test, an HTTP server with scripted answers
etcd_server = etcd_tests.etcd
key_prefix = etcd_tests.prefix
fake_etcd = etcd_tests.recorder

CLUSTER = "etcdcl"


def _conf(tmp_path: Path, base: int, servers: str, prefix: str, version: str) -> Path:
    alive = f"et{next_number()}"
    return write_conf(
        tmp_path / f"{alive}.conf",
        {
            "node.name": f"{alive}@{HOST}",
            "node.cookie": COOKIE,
            "node.data_dir": tmp_path / alive,
            "node.epmd": "off",
            "node.dist_base_port": base,
            "node.dist_interface": HOST,
            "cluster.name": CLUSTER,
            "cluster.discovery": "etcd",
            "cluster.etcd.server": servers,
            "cluster.etcd.prefix": prefix,
            "cluster.etcd.node_ttl": "20s",
            "cluster.etcd.version": version,
        },
    )


async def _registered(etcd: Etcd, prefix: str, version: str) -> list[str]:
    """The node names registered in etcd, as ekka 0.8 (v2) or ekka 0.23 (v3) lays them out."""
    if version == "v2":
        url = f"{etcd.url}/v2/keys/{prefix}/{CLUSTER}/nodes?recursive=true"
        status, answer = await _raw("GET", url)
        assert status == 200, answer
        return sorted(n["key"].rsplit("/", 1)[1] for n in answer["node"].get("nodes", []))
    key = f"{prefix}/ekkacl/nodes/"
    end = key[:-1] + chr(ord(key[-1]) + 1)
    answer = await _v3_raw(etcd, "kv/range", {"key": _b64(key), "range_end": _b64(end)})
    return sorted(base64.b64decode(kv["value"]).decode() for kv in answer.get("kvs", []))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_one_cluster_then_a_new_node_joins_and_a_leaver_unregisters(
    fleet: Fleet, tmp_path: Path, ekka_base: int, etcd_server: Etcd, key_prefix: str, version: str
) -> None:
    etcd, prefix = etcd_server, key_prefix

    def conf() -> Path:
        return _conf(tmp_path, ekka_base, etcd.url, prefix, version)

    nodes = [await fleet.start(conf()) for _ in range(3)]
    await one_cluster(nodes)
    names = sorted(r.name.name for r in nodes)
    assert await _registered(etcd, prefix, version) == names
    for r in nodes:
        result = r.autocluster.last_result
        assert result is not None and (result.lock, result.registered) == ("ok", "ok")

    newcomer = await fleet.start(conf())
    await one_cluster([*nodes, newcomer])
    assert newcomer.autocluster.last_result is not None
    assert newcomer.autocluster.last_result.joined
    assert await _registered(etcd, prefix, version) == sorted([*names, newcomer.name.name])

    # `pyekka ctl leave` on the newcomer: ekka's leave, then unregister
    reply = await nodes[0].node.rpc(newcomer.name, "pyekka_ctl", "leave", [], 15)
    assert reply == Atom("ok")
    assert await _registered(etcd, prefix, version) == names
    assert newcomer.autocluster.state is AutoclusterState.STOPPED
    assert newcomer.cluster.db_nodes() == [newcomer.name]
    await one_cluster(nodes)


async def _lonely_rounds(fleet: Fleet, conf: Path, rounds: int = 3) -> Any:
    node = await fleet.start(conf)
    await node.autocluster.wait_for(lambda a: a.rounds >= rounds)
    assert node.autocluster.state is not AutoclusterState.DONE
    assert node.cluster.running
    return node.autocluster.last_result


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_unreachable_servers_are_retried(
    fleet: Fleet, tmp_path: Path, ekka_base: int, version: str
) -> None:
    servers = f"http://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}"
    conf = _conf(tmp_path, ekka_base, servers, "nowhere", version)
    result = await _lonely_rounds(fleet, conf)
    assert result.lock == "error" and result.discovered is None
    assert "no etcd server answered" in result.errors[0]


async def test_malformed_answers_are_retried(
    fleet: Fleet, tmp_path: Path, ekka_base: int, fake_etcd: tuple[str, list, dict]
) -> None:
    url, seen, replies = fake_etcd
    replies[("GET", f"/v2/keys/bad/{CLUSTER}/nodes")] = (200, b"<html>not json")
    result = await _lonely_rounds(fleet, _conf(tmp_path, ekka_base, url, "bad", "v2"))
    assert result.lock == "ok" and result.discovered is None and result.registered is None
    assert len(result.errors) == 1 and "not JSON" in result.errors[0]
    methods = [(method, path.rsplit("/", 1)[1]) for method, path, *_ in seen]
    assert methods[:3] == [("PUT", "lock"), ("GET", "nodes"), ("DELETE", "lock")]
