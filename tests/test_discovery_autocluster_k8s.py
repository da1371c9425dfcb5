"""Autocluster with k8s discovery against the HTTPS emulation of the Kubernetes API of
``test_discovery_k8s``: the ready endpoints of a service give ``app@IP`` nodes (one
loopback address each, the service-account token and CA from files) that form one
cluster by themselves; an endpoint that becomes ready joins; error statuses and
malformed answers are clear errors, retried, never fatal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyekka.discovery.autocluster import AutoclusterState
from tests import test_discovery_k8s as k8s_tests
from tests.autocluster_nodes import COOKIE, Fleet, loopback_hosts, one_cluster, write_conf
from tests.test_discovery_k8s import FakeApi, tls_files  # noqa: F401

# the emulated API server of the k8s discovery tests (it needs ``tls_files``)
k8s_api = k8s_tests.api

APP = "k8sapp"


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        await f.close()


def _endpoints(ready: list[str], not_ready: list[str]) -> bytes:
    """An ``Endpoints`` object of the service with these addresses."""
    subset = {
        "addresses": [{"ip": ip} for ip in ready],
        "notReadyAddresses": [{"ip": ip} for ip in not_ready],
        "ports": [{"port": 4370}],
    }
    return json.dumps({"kind": "Endpoints", "subsets": [subset]}).encode()


def _conf(tmp_path: Path, base: int, api: FakeApi, ip: str) -> Path:
    sa = tmp_path / "serviceaccount"
    if not sa.exists():
        sa = k8s_tests._service_account(tmp_path, api.tls.ca_cert)
    return write_conf(
        tmp_path / f"{ip}.conf",
        {
            "node.name": f"{APP}@{ip}",
            "node.cookie": COOKIE,
            "node.data_dir": tmp_path / ip,
            "node.epmd": "off",
            "node.dist_base_port": base,
            "node.dist_interface": ip,
            "cluster.name": "k8scl",
            "cluster.discovery": "k8s",
            "cluster.k8s.apiserver": api.url,
            "cluster.k8s.service_name": "emqx",
            "cluster.k8s.namespace": "prod",
            "cluster.k8s.address_type": "ip",
            "cluster.k8s.app_name": APP,
            "cluster.k8s.token_file": sa / "token",
            "cluster.k8s.cacertfile": sa / "ca.crt",
        },
    )


async def test_ready_endpoints_form_one_cluster_and_a_new_one_joins(
    fleet: Fleet, tmp_path: Path, ekka_base: int, k8s_api: FakeApi
) -> None:
    hosts = loopback_hosts(4)
    k8s_api.body = _endpoints(hosts[:3], hosts[3:])
    nodes = [await fleet.start(_conf(tmp_path, ekka_base, k8s_api, ip)) for ip in hosts[:3]]
    await one_cluster(nodes)
    last = nodes[0].autocluster.last_result
    assert last is not None and sorted(last.discovered or ()) == [f"{APP}@{h}" for h in hosts[:3]]
    paths = {path for path, _query, _auth in k8s_api.requests}
    assert paths == {"/api/v1/namespaces/prod/endpoints/emqx"}
    assert {auth for *_, auth in k8s_api.requests} == {f"Bearer {k8s_tests.TOKEN}"}

    k8s_api.body = _endpoints(hosts, [])  # the fourth pod is ready
    newcomer = await fleet.start(_conf(tmp_path, ekka_base, k8s_api, hosts[3]))
    await one_cluster([*nodes, newcomer])
    assert newcomer.autocluster.last_result is not None
    assert newcomer.autocluster.last_result.joined


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b"{not json", "not JSON"),
        (200, b'{"subsets": "nope"}', "malformed answer"),
        (503, b'{"kind": "Status", "message": "etcdserver: leader changed"}', "HTTP 503"),
    ],
)
async def test_bad_answers_are_retried(
    fleet: Fleet,
    tmp_path: Path,
    ekka_base: int,
    k8s_api: FakeApi,
    status: int,
    body: bytes,
    error: str,
) -> None:
    k8s_api.status, k8s_api.body = status, body
    node = await fleet.start(_conf(tmp_path, ekka_base, k8s_api, "127.0.0.1"))
    await node.autocluster.wait_for(lambda a: a.rounds >= 3)
    result = node.autocluster.last_result
    assert result is not None and result.discovered is None
    assert len(result.errors) == 1 and error in result.errors[0], result.errors
    assert node.autocluster.state is not AutoclusterState.DONE and node.cluster.running
