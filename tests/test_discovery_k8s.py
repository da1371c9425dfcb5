"""k8s discovery against an HTTPS server that emulates the Kubernetes API."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pyekka.discovery import DiscoveryError, K8sOptions, K8sStrategy, Outcome
from tests.discovery_servers import TlsFiles, free_port, make_tls_files

TOKEN = "s3cr3t-token"

ENDPOINTS = {
    "kind": "Endpoints",
    "subsets": [
        {
            "addresses": [
                {"ip": "10.1.0.5", "hostname": "emqx-0"},
                {"ip": "10.1.0.6", "hostname": "emqx-1"},
            ],
            "notReadyAddresses": [{"ip": "10.1.0.7", "hostname": "emqx-2"}],
            "ports": [{"port": 4370}],
        },
        {"addresses": [{"ip": "10.1.0.8", "hostname": "emqx-3"}]},
        {"notReadyAddresses": [{"ip": "10.1.0.9"}]},
    ],
}

SLICES = {
    "kind": "EndpointSliceList",
    "items": [
        {
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.2.0.1"], "conditions": {"ready": True}, "hostname": "a"},
                {"addresses": ["10.2.0.2"], "conditions": {"ready": False}, "hostname": "b"},
                {"addresses": ["10.2.0.3", "10.2.0.33"], "hostname": "c"},
            ],
        },
        {
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.2.0.1"], "conditions": {"ready": True}, "hostname": "a"},
                {"addresses": ["10.2.0.4"], "conditions": {"ready": True}, "hostname": "d"},
            ],
        },
    ],
}


@dataclass
class FakeApi:
    """What the emulated API server answers and what it was asked."""

    url: str
    tls: TlsFiles
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    status: int = 200
    body: bytes | None = None


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("k8s-tls"))


@pytest.fixture
async def api(tls_files: TlsFiles) -> AsyncIterator[FakeApi]:
    async with serve_fake_api(tls_files) as fake:
        yield fake


@contextlib.asynccontextmanager
async def serve_fake_api(
    tls_files: TlsFiles, sock: socket.socket | None = None
) -> AsyncIterator[FakeApi]:
    """The emulated API server, on a free port of 127.0.0.1 or on the listening
    ``sock`` (which it then closes), e.g. one made inside a namespace lab."""
    if sock is None:
        host, port = "127.0.0.1", free_port()
    else:
        host, port = sock.getsockname()[:2]
    fake = FakeApi(f"https://{host}:{port}", tls_files)

    async def handle(request: web.Request) -> web.Response:
        fake.requests.append(
            (request.path, request.query_string, request.headers.get("Authorization", ""))
        )
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response(
                {"kind": "Status", "message": "Unauthorized", "code": 401}, status=401
            )
        if fake.status != 200 or fake.body is not None:
            return web.Response(status=fake.status, body=fake.body or b"")
        ns, name = request.match_info["ns"], request.match_info.get("name")
        if ns != "prod":
            return web.json_response({"kind": "Status", "message": "not found"}, status=404)
        if name is None:
            selector = request.query.get("labelSelector")
            return web.json_response(
                SLICES if selector == "kubernetes.io/service-name=emqx" else {"items": []}
            )
        return web.json_response(ENDPOINTS if name == "emqx" else {"kind": "Endpoints"})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{ns}/endpoints/{name}", handle)
    app.router.add_get("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", handle)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    runner = web.AppRunner(app)
    await runner.setup()
    site: web.BaseSite
    if sock is None:
        site = web.TCPSite(runner, host, port, ssl_context=ctx)
    else:
        site = web.SockSite(runner, sock, ssl_context=ctx)
    await site.start()
    try:
        yield fake
    finally:
        await runner.cleanup()


def _service_account(tmp_path: Path, ca: Path | None) -> Path:
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text(TOKEN[:5] + "\n" + TOKEN[5:] + "\n")  # newlines are dropped
    if ca is not None:
        (sa / "ca.crt").write_bytes(ca.read_bytes())
    return sa


def _options(api: FakeApi, sa: Path, **kw: Any) -> K8sOptions:
    base = K8sOptions(
        apiserver=api.url, service_name="emqx", namespace="prod", service_account_dir=str(sa)
    )
    return replace(base, **kw)


async def _discover(options: K8sOptions) -> list[str]:
    async with K8sStrategy(options) as strategy:
        return await strategy.discover()


@pytest.mark.parametrize(
    ("address_type", "suffix", "expected"),
    [
        ("ip", "", ["ekka@10.1.0.5", "ekka@10.1.0.6", "ekka@10.1.0.8"]),
        ("ip", "svc.cluster.local", ["ekka@10.1.0.5", "ekka@10.1.0.6", "ekka@10.1.0.8"]),
        ("dns", "", ["ekka@10-1-0-5", "ekka@10-1-0-6", "ekka@10-1-0-8"]),
        (
            "dns",
            "pod.cluster.local",
            [
                "ekka@10-1-0-5.prod.pod.cluster.local",
                "ekka@10-1-0-6.prod.pod.cluster.local",
                "ekka@10-1-0-8.prod.pod.cluster.local",
            ],
        ),
        ("hostname", "", ["ekka@emqx-0", "ekka@emqx-1", "ekka@emqx-3"]),
        (
            "hostname",
            "svc.cluster.local",
            [
                "ekka@emqx-0.emqx.prod.svc.cluster.local",
                "ekka@emqx-1.emqx.prod.svc.cluster.local",
                "ekka@emqx-3.emqx.prod.svc.cluster.local",
            ],
        ),
    ],
)
async def test_endpoints_naming_rules(
    api: FakeApi, tmp_path: Path, address_type: str, suffix: str, expected: list[str]
) -> None:
    sa = _service_account(tmp_path, api.tls.ca_cert)
    found = await _discover(_options(api, sa, address_type=address_type, suffix=suffix))
    assert found == expected
    assert api.requests == [("/api/v1/namespaces/prod/endpoints/emqx", "", f"Bearer {TOKEN}")]


async def test_app_name_and_other_operations(api: FakeApi, tmp_path: Path) -> None:
    sa = _service_account(tmp_path, api.tls.ca_cert)
    async with K8sStrategy(_options(api, sa, app_name="emqx")) as strategy:
        assert (await strategy.discover())[0] == "emqx@10.1.0.5"
        for op in (strategy.lock, strategy.unlock, strategy.register, strategy.unregister):
            assert await op() is Outcome.IGNORE


async def test_endpoint_slices_ready_only(api: FakeApi, tmp_path: Path) -> None:
    sa = _service_account(tmp_path, api.tls.ca_cert)
    found = await _discover(_options(api, sa, use_endpoint_slices=True))
    # ready false excluded; unknown readiness counts as ready; first address; no repeats
    assert found == ["ekka@10.2.0.1", "ekka@10.2.0.3", "ekka@10.2.0.4"]
    path, query, _ = api.requests[0]
    assert path == "/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices"
    assert query == "labelSelector=kubernetes.io/service-name%3Demqx"
    by_hostname = _options(api, sa, use_endpoint_slices=True, address_type="hostname")
    hostnames = await _discover(by_hostname)
    assert hostnames == ["ekka@a", "ekka@c", "ekka@d"]


async def test_without_ca_file_verification_is_off(api: FakeApi, tmp_path: Path) -> None:
    sa = _service_account(tmp_path, None)  # ca.crt absent: ekka skips verification
    assert len(await _discover(_options(api, sa))) == 3


async def test_wrong_ca_is_refused(api: FakeApi, tmp_path: Path) -> None:
    other = make_tls_files(tmp_path / "other", common_name="another CA")
    sa = _service_account(tmp_path, other.ca_cert)
    with pytest.raises(DiscoveryError, match=r"(?i)certificate"):
        await _discover(_options(api, sa))


async def test_missing_token_gets_the_servers_refusal(api: FakeApi, tmp_path: Path) -> None:
    sa = _service_account(tmp_path, api.tls.ca_cert)
    with pytest.raises(DiscoveryError, match="HTTP 401: Unauthorized"):
        await _discover(_options(api, sa, token_file=str(tmp_path / "absent")))
    assert api.requests[-1][2].strip() == "Bearer"  # an empty token


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (403, json.dumps({"kind": "Status", "message": "forbidden: sa"}).encode(), "HTTP 403"),
        (500, b"internal error", "HTTP 500: internal error"),
        (200, b"{not json", "not JSON"),
        (200, b"[1, 2]", "malformed answer"),
        (200, b'{"subsets": [{"addresses": 7}]}', "malformed answer"),
    ],
)
async def test_bad_answers(
    api: FakeApi, tmp_path: Path, status: int, body: bytes, match: str
) -> None:
    sa = _service_account(tmp_path, api.tls.ca_cert)
    api.status, api.body = status, body
    with pytest.raises(DiscoveryError, match=match):
        await _discover(_options(api, sa))


async def test_unreachable_apiserver(tmp_path: Path) -> None:
    sa = _service_account(tmp_path, None)
    options = K8sOptions(
        apiserver=f"https://127.0.0.1:{free_port()}",
        service_name="emqx",
        service_account_dir=str(sa),
        timeout=5,
    )
    with pytest.raises(DiscoveryError, match="k8s discovery: GET"):
        await _discover(options)


async def test_missing_services_and_namespaces(api: FakeApi, tmp_path: Path) -> None:
    sa = _service_account(tmp_path, api.tls.ca_cert)
    assert await _discover(_options(api, sa, service_name="other")) == []
    with pytest.raises(DiscoveryError, match="HTTP 404"):
        await _discover(_options(api, sa, namespace="nope"))


def test_bad_options() -> None:
    with pytest.raises(ValueError):
        K8sOptions(apiserver="https://x", service_name="s", address_type="pod")
    with pytest.raises(ValueError):
        K8sOptions(apiserver="", service_name="s")
