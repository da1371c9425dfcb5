"""``etcd`` discovery: the v2 keys API of ekka 0.8, and etcd v3 as ekka 0.23 lays it out.

**v2** (``ekka_cluster_etcd`` 0.8.1.9), with ``Cluster`` the cluster name (``ekka``
when unset) and ``node`` the local node name, every request to one of the servers:

==========  =======================================================================
discover    ``GET v2/keys/{prefix}/{Cluster}/nodes?recursive=true``: the last path
            segment of every ``node.nodes[].key``. On 404 the directory is created
            (``PUT .../nodes`` with ``dir=true``) and the GET repeated.
lock        ``PUT .../lock`` with ``ttl=30&prevExist=false&value={node}``; while the
            key exists (412) wait 1 s and retry, 10 attempts in all.
unlock      ``DELETE .../lock?prevExist=true&prevValue={node}``
register    ``PUT .../nodes/{node}`` with ``ttl={node_ttl}`` (no value), repeated in
            the background every ``node_ttl / 2`` seconds.
unregister  stop the refresher, ``DELETE .../nodes/{node}``.
==========  =======================================================================

Bodies are ``application/x-www-form-urlencoded`` exactly as OTP encodes them.

**v3** through etcd's JSON gateway (``/v3/...``), the layout genuine ekka 0.23 uses
through gRPC: a lease (5 s) kept alive in the background; the node key
``{prefix}/ekkacl/nodes/{node}`` holding the node name, attached to the lease;
discovery reads the values of the keys under ``{prefix}/ekkacl/nodes/``; the join
lock is etcd's lock service (``/v3/lock/lock``) on ``{prefix}/ekkacl/lock/`` bound
to the lease; unregister deletes the node key; :meth:`close` revokes the lease.

Several servers: each request goes to the servers in a random order, the next one
being tried only when a server does not answer. Use :func:`etcd_strategy` to get the
strategy of the configured ``version``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pyekka.discovery._http import (
    HttpClient,
    HttpError,
    HttpStatusError,
    TlsOptions,
    form_urlencode,
)
from pyekka.discovery.strategy import DiscoveryError, Outcome, Strategy, check_node_name

__all__ = [
    "DEFAULT_CLUSTER",
    "V3_CLUSTER",
    "EtcdOptions",
    "EtcdV2Strategy",
    "EtcdV3Strategy",
    "TlsOptions",
    "etcd_strategy",
]

log = logging.getLogger("pyekka.discovery.etcd")

DEFAULT_CLUSTER = "ekka"
"""The cluster segment of v2 paths when no cluster name is set."""
V3_CLUSTER = "ekkacl"
"""The fixed cluster segment of ekka's v3 keys."""
_NODE_SAFE = "@:+!$&'()*,;=-._~"


@dataclass(frozen=True)
class EtcdOptions:
    """ekka's etcd options.

    ``servers`` are base URLs (``http://`` is assumed without a scheme); ``prefix``
    (the schema's fallback is ``emqcl``); ``node_ttl`` in seconds (v2: the key's TTL,
    refreshed every half of it); ``tls`` for https servers (CA, client cert and key);
    ``version`` ``"v2"`` (ekka 0.8) or ``"v3"``. The lock tunables default to ekka's:
    30 s lock TTL, 10 attempts 1 s apart (v2); the v3 lease lives 5 s and a v3 lock
    waits at most ``lock_timeout`` seconds (``math.inf``: as long as it takes).
    """

    servers: Sequence[str]
    prefix: str = "emqcl"
    node_ttl: float = 60.0
    version: str = "v2"
    tls: TlsOptions | None = None
    timeout: float = 10.0
    lock_ttl: int = 30
    lock_attempts: int = 10
    lock_retry_interval: float = 1.0
    lease_ttl: int = 5
    lock_timeout: float = 60.0

    def __post_init__(self) -> None:
        servers = [self.servers] if isinstance(self.servers, str) else list(self.servers)
        if not servers:
            raise ValueError("etcd discovery needs at least one server URL")
        fixed = tuple((s if "://" in s else "http://" + s).rstrip("/") for s in servers)
        object.__setattr__(self, "servers", fixed)
        if self.version not in ("v2", "v3"):
            raise ValueError(f"etcd version must be 'v2' or 'v3', not {self.version!r}")
        if self.node_ttl < 1:
            raise ValueError("node_ttl must be at least 1 second")
        if self.lock_attempts < 1 or self.lease_ttl < 1:
            raise ValueError("lock_attempts and lease_ttl must be at least 1")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: Any) -> str:
    if not isinstance(text, str):
        raise ValueError(f"expected a base64 string, got {text!r}")
    return base64.b64decode(text, validate=True).decode()


def _prefix_end(prefix: str) -> str:
    """The v3 range end that selects exactly the keys starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class _EtcdBase(Strategy):
    name = "etcd"
    log = log

    def __init__(self, node: str, options: EtcdOptions, cluster_name: str | None = None) -> None:
        self.node = check_node_name(node)
        self.options = options
        self.cluster = cluster_name if cluster_name is not None else DEFAULT_CLUSTER
        try:
            tls = options.tls.context() if options.tls is not None else None
        except OSError as exc:
            raise ValueError(f"etcd TLS options unusable: {exc}") from exc
        self.http = HttpClient(timeout=options.timeout, tls=tls)

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        form: Iterable[tuple[str, str | int | bool]] | None = None,
        json_body: Any = None,
        timeout: float | None = None,
        failover: bool = True,
    ) -> Any:
        """One request for ``what``, servers tried in random order until one answers.

        Raises :class:`HttpStatusError` for an error status, :class:`DiscoveryError`
        when no server answers (only one is tried without ``failover``) or the
        answer is not JSON.
        """
        servers = list(self.options.servers)
        random.shuffle(servers)
        failures = []
        for server in servers if failover else servers[:1]:
            try:
                return await self.http.request(
                    method, f"{server}/{path}", form=form, json_body=json_body, timeout=timeout
                )
            except HttpStatusError:
                raise
            except HttpError as exc:
                failures.append(str(exc))
            except ValueError as exc:
                raise self.error("%s: malformed answer: %s", what, exc) from None
        raise self.error("%s: no etcd server answered: %s", what, "; ".join(failures))

    def fail(self, what: str, exc: HttpStatusError) -> DiscoveryError:
        """The error for an unexpected HTTP status."""
        return self.error("%s failed: %s", what, exc)

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.http.close()


class EtcdV2Strategy(_EtcdBase):
    """ekka 0.8's etcd v2 strategy (see the module documentation)."""

    def __init__(self, node: str, options: EtcdOptions, cluster_name: str | None = None) -> None:
        super().__init__(node, options, cluster_name)
        base = f"v2/keys/{options.prefix}/{self.cluster}"
        self.nodes_path = f"{base}/nodes"
        self.node_path = f"{base}/nodes/{quote(self.node, safe=_NODE_SAFE)}"
        self.lock_path = f"{base}/lock"
        self._refresher: asyncio.Task[None] | None = None

    async def discover(self) -> list[str]:
        """The node names registered under ``.../nodes`` (the directory made if missing)."""
        try:
            answer = await self._get_nodes()
        except HttpStatusError as exc:
            if exc.status != 404:
                raise self.fail("reading the node list", exc) from None
            await self._ensure_nodes_dir()
            try:
                answer = await self._get_nodes()
            except HttpStatusError as again:
                raise self.fail("reading the node list", again) from None
        return self._extract_nodes(answer)

    async def _get_nodes(self) -> Any:
        query = form_urlencode([("recursive", True)])
        return await self.call("GET", f"{self.nodes_path}?{query}", "reading the node list")

    async def _ensure_nodes_dir(self) -> None:
        try:
            await self.call(
                "PUT", self.nodes_path, "creating the node directory", form=[("dir", True)]
            )
        except HttpStatusError as exc:
            # Another node may have created it meanwhile: the next GET will tell.
            self.log.info("etcd discovery: creating %s: %s", self.nodes_path, exc)

    def _extract_nodes(self, answer: Any) -> list[str]:
        try:
            children = answer["node"].get("nodes", [])
            keys = [child["key"] for child in children]
            if not all(isinstance(k, str) for k in keys):
                raise TypeError("keys are not strings")
        except (TypeError, KeyError, AttributeError) as exc:
            raise self.error("malformed node list (%s): %.200r", exc, answer) from None
        return [key.rsplit("/", 1)[-1] for key in keys]

    async def lock(self) -> Outcome:
        """Create the lock key if absent, waiting while another node holds it."""
        form = [("ttl", self.options.lock_ttl), ("prevExist", False), ("value", self.node)]
        for attempt in range(1, self.options.lock_attempts + 1):
            try:
                await self.call("PUT", self.lock_path, "taking the lock", form=form)
                return Outcome.OK
            except HttpStatusError as exc:
                if exc.status != 412:
                    raise self.fail("taking the lock", exc) from None
                if attempt == self.options.lock_attempts:
                    break
            await asyncio.sleep(self.options.lock_retry_interval)
        raise self.error("the lock %s is still held after %d attempts", self.lock_path, attempt)

    async def unlock(self) -> Outcome:
        """Delete the lock key if it is ours."""
        query = "?" + form_urlencode([("prevExist", True), ("prevValue", self.node)])
        try:
            await self.call("DELETE", self.lock_path + query, "releasing the lock")
        except HttpStatusError as exc:
            raise self.fail("releasing the lock", exc) from None
        return Outcome.OK

    async def _set_node_key(self) -> None:
        ttl = int(self.options.node_ttl)
        await self.call("PUT", self.node_path, "registering", form=[("ttl", ttl)])

    async def register(self) -> Outcome:
        """Write the node key with its TTL and keep refreshing it."""
        try:
            await self._set_node_key()
        except HttpStatusError as exc:
            raise self.fail("registering", exc) from None
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh(), name="etcd-node-ttl")
        return Outcome.OK

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.options.node_ttl / 2)
            try:
                await self._set_node_key()
            except (HttpStatusError, DiscoveryError) as exc:
                self.log.error("etcd discovery: refreshing %s: %s", self.node_path, exc)

    async def _stop_refresher(self) -> None:
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def unregister(self) -> Outcome:
        """Stop refreshing and delete the node key."""
        await self._stop_refresher()
        try:
            await self.call("DELETE", self.node_path, "unregistering")
        except HttpStatusError as exc:
            raise self.fail("unregistering", exc) from None
        return Outcome.OK

    async def close(self) -> None:
        """Stop the refresher (the key then expires after its TTL) and the session."""
        await self._stop_refresher()
        await super().close()

    def __repr__(self) -> str:
        return f"<EtcdV2Strategy {self.node} /{self.nodes_path}>"


class EtcdV3Strategy(_EtcdBase):
    """etcd v3 through the JSON gateway, with ekka 0.23's key layout and a lease."""

    def __init__(self, node: str, options: EtcdOptions, cluster_name: str | None = None) -> None:
        super().__init__(node, options, cluster_name)
        self.nodes_prefix = f"{options.prefix}/{V3_CLUSTER}/nodes/"
        self.node_key = self.nodes_prefix + self.node
        self.lock_name = f"{options.prefix}/{V3_CLUSTER}/lock/"
        self.lease_id: str | None = None
        self.lock_key: str | None = None
        self._registered = False
        self._keepalive: asyncio.Task[None] | None = None
        self._lease_lock = asyncio.Lock()

    async def _v3(
        self, what: str, path: str, body: dict, timeout: float | None = None, failover: bool = True
    ) -> Any:
        try:
            answer = await self.call(
                "POST", f"v3/{path}", what, json_body=body, timeout=timeout, failover=failover
            )
        except HttpStatusError as exc:
            message = exc.json_field("message") or exc.json_field("error")
            if exc.status == 404 and "lease not found" in str(message) and "ID" not in body:
                self._forget_lease()  # the next operation takes a new lease
            raise self.error("%s failed: HTTP %d: %s", what, exc.status, message or exc) from None
        if not isinstance(answer, dict):
            raise self.error("%s: malformed answer %.200r", what, answer)
        return answer

    # ------------------------------------------------------------ lease

    async def _lease(self) -> str:
        async with self._lease_lock:
            if self.lease_id is None:
                answer = await self._v3(
                    "granting a lease", "lease/grant", {"TTL": self.options.lease_ttl}
                )
                if "ID" not in answer:
                    raise self.error("granting a lease: no ID in %.200r", answer)
                self.lease_id = str(answer["ID"])
            if self._keepalive is None or self._keepalive.done():
                self._keepalive = asyncio.create_task(self._keep_alive(), name="etcd-lease")
            return self.lease_id

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.options.lease_ttl / 3)
            try:
                answer = await self._v3(
                    "keeping the lease alive", "lease/keepalive", {"ID": self.lease_id}
                )
                ttl = int((answer.get("result") or {}).get("TTL", 0))
            except DiscoveryError:
                continue  # logged; the next beat may reach a server
            except (ValueError, TypeError):
                ttl = 0
            if ttl <= 0:
                self.log.warning(
                    "etcd discovery: lease %s expired, taking a new one", self.lease_id
                )
                self._forget_lease()
                with contextlib.suppress(DiscoveryError):
                    await self._lease()
                    if self._registered:
                        await self._put_node_key()
                return

    async def _put_node_key(self) -> None:
        body = {"key": _b64(self.node_key), "value": _b64(self.node), "lease": self.lease_id}
        await self._v3("registering", "kv/put", body)

    # ------------------------------------------------------------ strategy

    async def discover(self) -> list[str]:
        """The values (node names) of the keys under ``{prefix}/ekkacl/nodes/``."""
        body = {
            "key": _b64(self.nodes_prefix),
            "range_end": _prefix_end(self.nodes_prefix),
            "sort_order": "ASCEND",
            "sort_target": "KEY",
        }
        answer = await self._v3("reading the node list", "kv/range", body)
        try:
            return [_unb64(kv.get("value", "")) for kv in answer.get("kvs", [])]
        except (ValueError, AttributeError) as exc:
            raise self.error("malformed node list (%s): %.200r", exc, answer) from None

    def _forget_lease(self) -> None:
        self.lease_id = self.lock_key = None
        task, self._keepalive = self._keepalive, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def register(self) -> Outcome:
        """Put the node key, attached to the lease (a new lease if the old one is gone)."""
        for attempt in range(2):
            await self._lease()
            try:
                await self._put_node_key()
                break
            except DiscoveryError:
                if self.lease_id is not None or attempt:
                    raise
        self._registered = True
        return Outcome.OK

    async def unregister(self) -> Outcome:
        """Delete the node key."""
        self._registered = False
        await self._v3("unregistering", "kv/deleterange", {"key": _b64(self.node_key)})
        return Outcome.OK

    async def lock(self) -> Outcome:
        """Acquire etcd's lock ``{prefix}/ekkacl/lock/`` with the lease (waits)."""
        lease = await self._lease()
        body = {"name": _b64(self.lock_name), "lease": lease}
        timeout = self.options.lock_timeout
        try:
            # Never a second server: a waiter left on the first would hold the queue.
            answer = await self._v3("taking the lock", "lock/lock", body, timeout, failover=False)
        except DiscoveryError:
            await self._drop_lock_waiters(lease)
            raise
        if "key" not in answer:
            raise self.error("taking the lock: no key in %.200r", answer)
        self.lock_key = answer["key"]
        return Outcome.OK

    async def _drop_lock_waiters(self, lease: str) -> None:
        """Delete our pending lock keys (a lock call that gave up leaves one behind)."""
        body = {"key": _b64(self.lock_name), "range_end": _prefix_end(self.lock_name)}
        with contextlib.suppress(DiscoveryError):
            answer = await self._v3("listing lock waiters", "kv/range", body)
            for kv in answer.get("kvs", []):
                if str(kv.get("lease")) == lease:
                    await self._v3("dropping a lock waiter", "kv/deleterange", {"key": kv["key"]})

    async def unlock(self) -> Outcome:
        """Release the lock taken by :meth:`lock`."""
        if self.lock_key is None:
            raise self.error("unlock without a lock held")
        await self._v3("releasing the lock", "lock/unlock", {"key": self.lock_key})
        self.lock_key = None
        return Outcome.OK

    async def close(self) -> None:
        """Stop the keep-alive and revoke the lease (which drops the node key and lock)."""
        task, self._keepalive = self._keepalive, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.lease_id is not None:
            with contextlib.suppress(DiscoveryError):
                await self._v3("revoking the lease", "lease/revoke", {"ID": self.lease_id})
            self.lease_id = self.lock_key = None
        self._registered = False
        await super().close()

    def __repr__(self) -> str:
        return f"<EtcdV3Strategy {self.node} {self.nodes_prefix}>"


def etcd_strategy(
    node: str, options: EtcdOptions, cluster_name: str | None = None
) -> EtcdV2Strategy | EtcdV3Strategy:
    """The etcd strategy of ``options.version`` for the local ``node``."""
    cls = EtcdV2Strategy if options.version == "v2" else EtcdV3Strategy
    return cls(node, options, cluster_name)
