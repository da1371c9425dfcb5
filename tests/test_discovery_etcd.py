"""etcd discovery against a real etcd on 127.0.0.1 (v2 keys API and v3 JSON gateway)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pyekka.discovery import (
    DiscoveryError,
    EtcdOptions,
    EtcdV2Strategy,
    EtcdV3Strategy,
    Outcome,
    TlsOptions,
    etcd_strategy,
)
from tests.discovery_servers import Etcd, free_port, make_tls_files, run_etcd

WAIT = 15.0
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    with run_etcd(tmp_path_factory.mktemp("etcd")) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test (one etcd serves the whole module)."""
    return f"pyekka-test-{next(_prefixes)}"


def _v2(etcd: Etcd, prefix: str, node: str, **kw: Any) -> EtcdV2Strategy:
    cluster = kw.pop("cluster_name", "pytestcl")
    options = EtcdOptions(servers=[etcd.url], prefix=prefix, version="v2", **kw)
    return EtcdV2Strategy(node, options, cluster)


def _v3(etcd: Etcd, prefix: str, node: str, **kw: Any) -> EtcdV3Strategy:
    options = EtcdOptions(servers=[etcd.url], prefix=prefix, version="v3", **kw)
    return EtcdV3Strategy(node, options)


async def _raw(method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def _v3_raw(etcd: Etcd, path: str, body: dict) -> dict:
    status, answer = await _raw("POST", f"{etcd.url}/v3/{path}", json=body)
    assert status == 200, answer
    return answer


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Re-check a condition that has no event to wait on, for at most WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- v2


async def test_v2_discover_creates_the_directory(etcd: Etcd, prefix: str) -> None:
    async with _v2(etcd, prefix, "n1@127.0.0.1") as s:
        assert await s.discover() == []
    status, answer = await _raw("GET", f"{etcd.url}/v2/keys/{prefix}/pytestcl/nodes")
    assert status == 200 and answer["node"]["dir"] is True


async def test_v2_register_discover_unregister(etcd: Etcd, prefix: str) -> None:
    names = ["n1@127.0.0.1", "n2@127.0.0.1", "n3@127.0.0.1"]
    strategies = [_v2(etcd, prefix, n, node_ttl=60) for n in names]
    try:
        for s in strategies:
            assert await s.register() is Outcome.OK
        assert sorted(await strategies[0].discover()) == names
        # The key genuine ekka writes: no value, the node TTL in seconds.
        url = f"{etcd.url}/v2/keys/{prefix}/pytestcl/nodes/n2@127.0.0.1"
        status, answer = await _raw("GET", url)
        assert status == 200
        assert answer["node"]["key"] == f"/{prefix}/pytestcl/nodes/n2@127.0.0.1"
        assert answer["node"]["value"] == ""
        assert 55 <= answer["node"]["ttl"] <= 60
        assert await strategies[1].unregister() is Outcome.OK
        assert sorted(await strategies[2].discover()) == [names[0], names[2]]
        assert (await _raw("GET", url))[0] == 404
    finally:
        for s in strategies:
            await s.close()


async def test_v2_default_cluster_segment(etcd: Etcd, prefix: str) -> None:
    async with _v2(etcd, prefix, "n1@127.0.0.1", cluster_name=None) as s:
        await s.register()
        status, _ = await _raw("GET", f"{etcd.url}/v2/keys/{prefix}/ekka/nodes/n1@127.0.0.1")
        assert status == 200


async def test_v2_ttl_is_refreshed_in_the_background(etcd: Etcd, prefix: str) -> None:
    async with _v2(etcd, prefix, "n1@127.0.0.1", node_ttl=2) as s:
        await s.register()
        url = f"{etcd.url}/v2/keys/{prefix}/pytestcl/nodes/n1@127.0.0.1"
        _, answer = await _raw("GET", url)
        index = answer["node"]["modifiedIndex"]
        # Wait (an etcd watch, no polling) for the refresher's PUT, due after 1 s.
        _, event = await asyncio.wait_for(
            _raw("GET", f"{url}?wait=true&waitIndex={index + 1}"), WAIT
        )
        assert event["action"] == "set" and event["node"]["ttl"] == 2
        await s.unregister()
    assert (await _raw("GET", url))[0] == 404


async def test_v2_lock_is_exclusive(etcd: Etcd, prefix: str) -> None:
    fast = {"lock_attempts": 3, "lock_retry_interval": 0.05}
    a = _v2(etcd, prefix, "a@127.0.0.1", **fast)
    b = _v2(etcd, prefix, "b@127.0.0.1", lock_attempts=400, lock_retry_interval=0.05)
    async with a, b:
        assert await a.lock() is Outcome.OK
        url = f"{etcd.url}/v2/keys/{prefix}/pytestcl/lock"
        _, answer = await _raw("GET", url)
        assert answer["node"]["value"] == "a@127.0.0.1"
        assert 25 <= answer["node"]["ttl"] <= 30
        # a cannot take it twice; b cannot release a's lock (prevValue).
        with pytest.raises(DiscoveryError, match="still held after 3 attempts"):
            await a.lock()
        with pytest.raises(DiscoveryError, match="releasing the lock failed: HTTP 412"):
            await b.unlock()
        # b retries while a holds the lock; releasing it lets b through.
        waiter = asyncio.create_task(b.lock())
        _, answer = await _raw("GET", url)
        assert answer["node"]["value"] == "a@127.0.0.1"
        assert await a.unlock() is Outcome.OK
        assert await asyncio.wait_for(waiter, WAIT) is Outcome.OK
        _, answer = await _raw("GET", url)
        assert answer["node"]["value"] == "b@127.0.0.1"
        assert await b.unlock() is Outcome.OK


async def test_v2_several_servers_one_down(etcd: Etcd, prefix: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    options = EtcdOptions(servers=[dead, etcd.url, dead], prefix=prefix)
    async with etcd_strategy("n1@127.0.0.1", options, "pytestcl") as s:
        for _ in range(5):  # random order: some requests try the dead server first
            await s.register()
            assert await s.discover() == ["n1@127.0.0.1"]


async def test_v2_unreachable(prefix: str) -> None:
    options = EtcdOptions(
        servers=[f"127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"], prefix=prefix
    )
    async with etcd_strategy("n1@127.0.0.1", options) as s:
        for op in (s.discover, s.lock, s.register, s.unregister, s.unlock):
            with pytest.raises(DiscoveryError, match="no etcd server answered"):
                await op()


async def test_v2_tls_with_client_certificate(tmp_path: Path, prefix: str) -> None:
    tls = make_tls_files(tmp_path / "tls")
    with run_etcd(tmp_path / "data", tls=tls) as server:
        good = TlsOptions(
            cacertfile=str(tls.ca_cert), certfile=str(tls.client_cert), keyfile=str(tls.client_key)
        )
        options = EtcdOptions(servers=[server.url], prefix=prefix, tls=good)
        async with etcd_strategy("n1@127.0.0.1", options) as s:
            await s.register()
            assert await s.discover() == ["n1@127.0.0.1"]
        no_cert = replace(options, tls=TlsOptions(cacertfile=str(tls.ca_cert)))
        async with etcd_strategy("n1@127.0.0.1", no_cert) as s:
            with pytest.raises(DiscoveryError, match="no etcd server answered"):
                await s.discover()
        no_ca = replace(options, tls=None)
        async with etcd_strategy("n1@127.0.0.1", no_ca) as s:
            with pytest.raises(DiscoveryError, match=r"(?i)certificate"):
                await s.discover()


# ---------------------------------------------------------------- wire format, bad answers


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list, dict]]:
    """An HTTP server that records requests and answers from ``replies[(method, path)]``."""
    seen: list[tuple[str, str, str, str, str]] = []
    replies: dict[tuple[str, str], tuple[int, bytes]] = {}

    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        path, _, query = request.raw_path.partition("?")
        seen.append(
            (
                request.method,
                path,
                query,
                request.headers.get("Content-Type", ""),
                body,
            )
        )
        status, data = replies.get((request.method, request.path), (200, b"{}"))
        return web.Response(status=status, body=data, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", seen, replies
    finally:
        await runner.cleanup()


async def test_v2_requests_are_ekkas(recorder: tuple[str, list, dict]) -> None:
    url, seen, replies = recorder
    base = "/v2/keys/emqcl/ekkacl/"
    replies[("GET", base + "nodes")] = (200, b'{"node": {"dir": true}}')
    options = EtcdOptions(servers=[url], node_ttl=60)
    form = "application/x-www-form-urlencoded"
    async with etcd_strategy("emqx@10.0.0.1", options, "ekkacl") as s:
        assert await s.discover() == []
        await s.lock()
        await s.unlock()
        await s.register()
        await s.unregister()
    assert seen == [
        ("GET", base + "nodes", "recursive=true", "", ""),
        ("PUT", base + "lock", "", form, "ttl=30&prevExist=false&value=emqx%4010.0.0.1"),
        ("DELETE", base + "lock", "prevExist=true&prevValue=emqx%4010.0.0.1", "", ""),
        ("PUT", base + "nodes/emqx@10.0.0.1", "", form, "ttl=60"),
        ("DELETE", base + "nodes/emqx@10.0.0.1", "", "", ""),
    ]


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (200, b"<html>oops", "not JSON"),
        (200, b'{"node": {"nodes": [{"nokey": 1}]}}', "malformed node list"),
        (200, b'["x"]', "malformed node list"),
        (500, b'{"message": "boom"}', "HTTP 500"),
        (403, b"", "HTTP 403"),
    ],
)
async def test_v2_bad_answers(
    recorder: tuple[str, list, dict], status: int, body: bytes, match: str
) -> None:
    url, _, replies = recorder
    replies[("GET", "/v2/keys/emqcl/ekka/nodes")] = (status, body)
    async with etcd_strategy("n@h", EtcdOptions(servers=[url])) as s:
        with pytest.raises(DiscoveryError, match=match):
            await s.discover()


async def test_v2_nodes_dir_cannot_be_created(recorder: tuple[str, list, dict]) -> None:
    url, seen, replies = recorder
    replies[("GET", "/v2/keys/emqcl/ekka/nodes")] = (404, b'{"errorCode": 100}')
    replies[("PUT", "/v2/keys/emqcl/ekka/nodes")] = (403, b'{"errorCode": 110}')
    async with etcd_strategy("n@h", EtcdOptions(servers=[url])) as s:
        with pytest.raises(DiscoveryError, match="HTTP 404"):
            await s.discover()
    assert [r[:2] for r in seen] == [
        ("GET", "/v2/keys/emqcl/ekka/nodes"),
        ("PUT", "/v2/keys/emqcl/ekka/nodes"),
        ("GET", "/v2/keys/emqcl/ekka/nodes"),
    ]


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        EtcdOptions(servers=[])
    with pytest.raises(ValueError):
        EtcdOptions(servers=["http://x"], version="v4")
    assert EtcdOptions(servers="h:2379/").servers == ("http://h:2379",)


# ---------------------------------------------------------------- v3


async def test_v3_register_discover_unregister(etcd: Etcd, prefix: str) -> None:
    names = ["n2@127.0.0.1", "n1@127.0.0.1"]
    strategies = [_v3(etcd, prefix, n) for n in names]
    try:
        for s in strategies:
            assert await s.register() is Outcome.OK
        assert await strategies[0].discover() == sorted(names)  # sorted by key
        # ekka 0.23's layout: the value is the node name, the key is on the lease.
        key = f"{prefix}/ekkacl/nodes/n1@127.0.0.1"
        answer = await _v3_raw(etcd, "kv/range", {"key": _b64(key)})
        (kv,) = answer["kvs"]
        assert base64.b64decode(kv["value"]).decode() == "n1@127.0.0.1"
        assert kv["lease"] == strategies[1].lease_id
        # A key outside the prefix is not a node.
        await _v3_raw(etcd, "kv/put", {"key": _b64(f"{prefix}/ekkacl/nodes0"), "value": _b64("x")})
        assert await strategies[0].unregister() is Outcome.OK
        assert await strategies[1].discover() == ["n1@127.0.0.1"]
    finally:
        for s in strategies:
            await s.close()


async def test_v3_close_revokes_the_lease(etcd: Etcd, prefix: str) -> None:
    s = _v3(etcd, prefix, "n1@127.0.0.1")
    await s.register()
    lease = s.lease_id
    await s.close()
    answer = await _v3_raw(etcd, "lease/timetolive", {"ID": lease})
    assert int(answer.get("TTL", -1)) == -1  # the lease is gone, and with it the key
    async with _v3(etcd, prefix, "other@127.0.0.1") as other:
        assert await other.discover() == []


async def test_v3_lost_lease_is_replaced(etcd: Etcd, prefix: str) -> None:
    async with _v3(etcd, prefix, "n1@127.0.0.1", lease_ttl=2) as s:
        await s.register()
        old = s.lease_id
        await _v3_raw(etcd, "lease/revoke", {"ID": old})  # as if the lease had expired

        async def back() -> bool:
            return s.lease_id not in (None, old) and await s.discover() == ["n1@127.0.0.1"]

        await _until(back, "the node key to come back on a new lease")


async def test_v3_lock_is_exclusive(etcd: Etcd, prefix: str) -> None:
    a = _v3(etcd, prefix, "a@127.0.0.1")
    b = _v3(etcd, prefix, "b@127.0.0.1", lock_timeout=0.5)
    async with a, b:
        assert await a.lock() is Outcome.OK
        with pytest.raises(DiscoveryError, match=r"taking the lock: .*no answer in time"):
            await b.lock()  # gives up after lock_timeout
        lock_prefix = f"{prefix}/ekkacl/lock/"
        end = _b64(f"{prefix}/ekkacl/lock0")
        held = await _v3_raw(etcd, "kv/range", {"key": _b64(lock_prefix), "range_end": end})
        assert [kv["lease"] for kv in held["kvs"]] == [a.lease_id]  # b's waiter removed
        waiter = asyncio.create_task(b.lock())
        assert await a.unlock() is Outcome.OK
        assert await asyncio.wait_for(waiter, WAIT) is Outcome.OK
        assert await b.unlock() is Outcome.OK
        with pytest.raises(DiscoveryError, match="without a lock"):
            await b.unlock()


async def test_v3_unreachable(prefix: str) -> None:
    options = EtcdOptions(servers=[f"http://127.0.0.1:{free_port()}"], version="v3")
    async with etcd_strategy("n1@127.0.0.1", options) as s:
        for op in (s.discover, s.register, s.lock, s.unregister):
            with pytest.raises(DiscoveryError, match="no etcd server answered"):
                await op()


async def test_v3_register_after_the_lease_vanished(etcd: Etcd, prefix: str) -> None:
    async with _v3(etcd, prefix, "n1@127.0.0.1", lease_ttl=60) as s:
        await s.register()
        old = s.lease_id
        # The lease disappears before the keep-alive notices: a new one is taken.
        await _v3_raw(etcd, "lease/revoke", {"ID": old})
        assert await s.discover() == []
        assert await s.register() is Outcome.OK
        assert s.lease_id not in (None, old)
        assert await s.discover() == ["n1@127.0.0.1"]


async def test_v3_gateway_errors_are_passed_on(recorder: tuple[str, list, dict]) -> None:
    url, seen, replies = recorder
    replies[("POST", "/v3/kv/range")] = (500, b'{"error": "x", "message": "etcdserver: boom"}')
    replies[("POST", "/v3/lease/grant")] = (200, b'{"TTL": "5"}')
    async with etcd_strategy("n@h", EtcdOptions(servers=[url], version="v3")) as s:
        with pytest.raises(DiscoveryError, match=r"reading the node list failed: HTTP 500: .*boom"):
            await s.discover()
        with pytest.raises(DiscoveryError, match="granting a lease: no ID"):
            await s.register()
    assert seen[0][:2] == ("POST", "/v3/kv/range")
    body = json.loads(seen[0][4])
    assert base64.b64decode(body["key"]) == b"emqcl/ekkacl/nodes/"
    assert base64.b64decode(body["range_end"]) == b"emqcl/ekkacl/nodes0"
