"""Autocluster with k8s discovery against the HTTPS emulation of the Kubernetes API of
``test_discovery_k8s``.

In a lab of network namespaces (:mod:`pyekka.testing.netns`: one host, one address
per node), ``pyekka start -c FILE`` nodes ask the emulator, served by this test
process on the lab's service address (the service-account token and CA from files):

* the ready addresses of the service's ``Endpoints`` give ``app@IP`` nodes that form
  one cluster by themselves; an address that becomes ready joins;
* with ``use_endpoint_slices`` the ready endpoints of its ``EndpointSlices`` do the
  same; endpoints that are not ready are left out.

In-process, on 127.0.0.1: error statuses and malformed answers are clear errors,
retried, never fatal.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.discovery.autocluster import AutoclusterState
from pyekka.testing.netns import NetnsLab
from tests import test_discovery_k8s as k8s_tests
from tests.autocluster_nodes import COOKIE, Fleet, LabNode, LabNodes, write_conf
from tests.cli_nodes import CliEnv
from tests.discovery_servers import make_tls_files
from tests.test_discovery_k8s import FakeApi, serve_fake_api, tls_files  # noqa: F401

# the emulated API server of the k8s discovery tests (it needs ``tls_files``)
k8s_api = k8s_tests.api

APP = "k8sapp"
API_PORT = 6443
ENDPOINTS_PATH = "/api/v1/namespaces/prod/endpoints/emqx"
SLICES_PATH = "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices"


@pytest.fixture
def lab(netns_lab: Callable[..., NetnsLab]) -> NetnsLab:
    return netns_lab(hosts=4)


@pytest.fixture
async def lab_api(lab: NetnsLab, tmp_path: Path) -> AsyncIterator[FakeApi]:
    """The emulator, listening on the lab's service address (its certificate names it)."""
    assert lab.service_address is not None
    tls = make_tls_files(tmp_path / "tls", addresses=[lab.service_address])
    sock = lab.listen(lab.switch, lab.service_address, API_PORT)
    async with serve_fake_api(tls, sock) as api:
        yield api


@pytest.fixture
async def lab_nodes(lab: NetnsLab, tmp_path: Path, cli_env: CliEnv) -> AsyncIterator[LabNodes]:
    async with contextlib.AsyncExitStack() as stack:
        yield LabNodes(lab, tmp_path, cli_env(), stack)


def _endpoints(ready: list[str], not_ready: list[str]) -> bytes:
    """An ``Endpoints`` object of the service with these addresses."""
    subset = {
        "addresses": [{"ip": ip} for ip in ready],
        "notReadyAddresses": [{"ip": ip} for ip in not_ready],
        "ports": [{"port": 4370}],
    }
    return json.dumps({"kind": "Endpoints", "subsets": [subset]}).encode()


def _slices(ready: list[str], not_ready: list[str]) -> bytes:
    """An ``EndpointSliceList`` of the service: one slice per address (as a large
    service gets), readiness in each endpoint's conditions."""

    def one(ip: str, is_ready: bool) -> dict[str, Any]:
        endpoint = {"addresses": [ip], "conditions": {"ready": is_ready}}
        return {"addressType": "IPv4", "endpoints": [endpoint], "ports": [{"port": 4370}]}

    items = [one(ip, True) for ip in ready] + [one(ip, False) for ip in not_ready]
    return json.dumps({"kind": "EndpointSliceList", "items": items}).encode()


def _k8s_keys(tmp_path: Path, api: FakeApi, **extra: Any) -> dict[str, Any]:
    sa = tmp_path / "serviceaccount"
    if not sa.exists():
        sa = k8s_tests._service_account(tmp_path, api.tls.ca_cert)
    return {
        "cluster.name": "k8scl",
        "cluster.discovery": "k8s",
        "cluster.k8s.apiserver": api.url,
        "cluster.k8s.service_name": "emqx",
        "cluster.k8s.namespace": "prod",
        "cluster.k8s.address_type": "ip",
        "cluster.k8s.app_name": APP,
        "cluster.k8s.token_file": sa / "token",
        "cluster.k8s.cacertfile": sa / "ca.crt",
        **extra,
    }


def _discovered(statuses: dict[str, dict[str, Any]]) -> set[tuple[str, ...]]:
    return {tuple(s["discovery"]["last_result"]["discovered"]) for s in statuses.values()}


async def test_ready_endpoints_form_one_cluster_and_a_new_one_joins(
    lab: NetnsLab, lab_nodes: LabNodes, lab_api: FakeApi, tmp_path: Path
) -> None:
    ips = lab.addresses
    lab_api.body = _endpoints(ips[:3], ips[3:])
    keys = _k8s_keys(tmp_path, lab_api)
    nodes = [await lab_nodes.start(h, f"{APP}@{h.address}", keys) for h in lab.hosts[:3]]
    statuses = await lab_nodes.one_cluster(nodes)
    assert _discovered(statuses) == {tuple(f"{APP}@{ip}" for ip in ips[:3])}
    assert {path for path, _query, _auth in lab_api.requests} == {ENDPOINTS_PATH}
    assert {auth for *_, auth in lab_api.requests} == {f"Bearer {k8s_tests.TOKEN}"}

    lab_api.body = _endpoints(ips, [])  # the fourth pod is ready
    fourth = lab.hosts[3]
    newcomer = await lab_nodes.start(fourth, f"{APP}@{fourth.address}", keys)
    statuses = await lab_nodes.one_cluster([*nodes, newcomer])
    last = statuses[newcomer.name]["discovery"]["last_result"]
    assert last["joined"] and last["discovered"] == [f"{APP}@{ip}" for ip in ips]


async def test_ready_endpoint_slices_form_one_cluster(
    lab: NetnsLab, lab_nodes: LabNodes, lab_api: FakeApi, tmp_path: Path
) -> None:
    ips = lab.addresses
    lab_api.body = _slices(ips[:3], ips[3:])
    keys = _k8s_keys(tmp_path, lab_api, **{"cluster.k8s.use_endpoint_slices": "true"})
    nodes: list[LabNode] = []
    for host in lab.hosts[:3]:
        nodes.append(await lab_nodes.start(host, f"{APP}@{host.address}", keys))
    statuses = await lab_nodes.one_cluster(nodes)
    # the endpoint that is not ready is no node of the cluster, and was not discovered
    assert _discovered(statuses) == {tuple(f"{APP}@{ip}" for ip in ips[:3])}
    paths = {(path, query) for path, query, _auth in lab_api.requests}
    assert paths == {(SLICES_PATH, "labelSelector=kubernetes.io/service-name%3Demqx")}


# -- in-process, on 127.0.0.1 ------------------------------------------------------------


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
    conf = write_conf(
        tmp_path / "node.conf",
        {
            "node.name": f"{APP}@127.0.0.1",
            "node.cookie": COOKIE,
            "node.data_dir": tmp_path / "node",
            "node.epmd": "off",
            "node.dist_base_port": ekka_base,
            "node.dist_interface": "127.0.0.1",
            **_k8s_keys(tmp_path, k8s_api),
        },
    )
    node = await fleet.start(conf)
    await node.autocluster.wait_for(lambda a: a.rounds >= 3)
    result = node.autocluster.last_result
    assert result is not None and result.discovered is None
    assert len(result.errors) == 1 and error in result.errors[0], result.errors
    assert node.autocluster.state is not AutoclusterState.DONE and node.cluster.running
