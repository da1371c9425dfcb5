"""The Python cluster API: :class:`Cluster`, pyekka's ``ekka`` application on a node.

>>> async with Node("py1@127.0.0.1", "cookie", epmd=False) as node:
...     async with Cluster(node, "data/py1", "mycluster") as cluster:
...         await cluster.join("py2@127.0.0.1")
...         print(cluster.members(), cluster.leader(), cluster.info())

A :class:`Cluster` owns what genuine ekka's application and mnesia hold:

* the :class:`~pyekka.cluster.cluster_view.ClusterDb` (pyekka's stand-in for mnesia:
  the replicated cluster view, persisted in ``data_dir``, and its running nodes) and
  its :class:`~pyekka.cluster.cluster_view.ViewReplicator`;
* the *services*, what ``application:stop(ekka)`` stops and ``ekka:start()`` starts:
  the :class:`~pyekka.cluster.service_membership.MembershipService` first, then every
  :class:`ClusterService` added with :meth:`Cluster.add_service` (locker, node monitor);
* the RPC surface genuine and pyekka nodes call (:mod:`pyekka.cluster.rpc_surface`).

Operations follow ``ekka_cluster`` 0.8.1.9 (spec 7), with pyekka's view where ekka
has mnesia:

* :meth:`Cluster.join` to a **pyekka** node: announce ``join``, stop the services,
  leave the old cluster (if any), get the target's view (the target adds this node
  and pushes its view to every member), restart the db and the services (a new
  guid). To a **genuine** ekka node (one that answers ``ekka_node:is_running(ekka)``
  with ``true`` and has no ``pyekka_cluster``): *attach* the cluster to it at the
  membership level: its mnesia db nodes become genuine members of the view (on every
  pyekka member), and every pyekka member pings them, so that they list the pyekka
  nodes as ``up``. Nothing of the genuine nodes' mnesia changes. A Python cluster
  attaches to one genuine cluster at a time.
* :meth:`Cluster.leave`: announce ``leave``, stop the services, remove this node
  from the view on every reachable member, reset to a standalone view, restart.
* :meth:`Cluster.force_leave`: as ekka (``prepare(leave)`` and ``reboot()`` by rpc on
  a live pyekka node; announce ``{force_leave, N}`` for a dead one), removing the
  node from the view on every member; a node that was down learns it from the first
  member it syncs with after its restart and goes standalone. A genuine member is
  removed by a live genuine member (rpc ``ekka:force_leave/1`` there: mnesia is
  theirs) and detached from the view; with no genuine member reachable it is only
  detached.

Errors are raised as :class:`ClusterError` carrying ekka's reason term
(``{node_down, N}``, ``{already_in_cluster, N}``, ``node_not_in_cluster`` ...).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyekka.cluster import cluster_ops
from pyekka.cluster.cluster_types import (
    ClusterError,
    ClusterInfo,
    ClusterService,
    ClusterStatus,
    EventStream,
)
from pyekka.cluster.cluster_view import ClusterDb, ViewReplicator
from pyekka.cluster.events import Event, EventType
from pyekka.cluster.guid import GuidPolicy
from pyekka.cluster.member import Member, MemberStatus, MnesiaStatus
from pyekka.cluster.service_membership import MembershipService
from pyekka.node.functions import as_atom
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.node.node import Node

__all__ = [
    "Cluster",
    "ClusterError",
    "ClusterInfo",
    "ClusterService",
    "ClusterStatus",
    "EventStream",
]

log = logging.getLogger("pyekka.cluster")

A = Atom
_OK = A("ok")


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Cluster:
    """pyekka's ``ekka`` on ``node`` (see the module doc).

    ``data_dir`` holds the cluster view (``None``: memory only, no rejoin after a
    restart). ``cluster_name`` must be the same on every member (ekka's
    ``cluster_name``); nodes of different names never merge their views.
    ``guid_policy``: spec 16.2 (default ``DEFER``: genuine members always lead a mixed
    cluster, the oldest pyekka node leads a Python-only one). ``genuine_refresh``:
    seconds between re-announcements to genuine members. ``rpc_timeout``: seconds
    for each rpc of a cluster operation. ``prepare(action)`` / ``reboot()``: ekka's
    callbacks, replacing the default :meth:`stop_services` / :meth:`start_services`.
    """

    def __init__(
        self,
        node: Node,
        data_dir: str | Path | None = None,
        cluster_name: str | None = None,
        *,
        guid_policy: GuidPolicy = GuidPolicy.DEFER,
        genuine_refresh: float | None = 5.0,
        rpc_timeout: float = 15.0,
        prepare: Callable[[str], Any] | None = None,
        reboot: Callable[[], Any] | None = None,
    ) -> None:
        self.node = node
        self.cluster_name = cluster_name
        self.data_dir = None if data_dir is None else Path(data_dir)
        self.rpc_timeout = rpc_timeout
        self.prepare_callback = prepare
        self.reboot_callback = reboot
        self.db = ClusterDb(node.name, cluster_name, self.data_dir)
        self.replicator = ViewReplicator(node, self.db, rpc_timeout=rpc_timeout)
        self.membership = MembershipService(
            node,
            self.db,
            guid_policy=guid_policy,
            genuine_refresh=genuine_refresh,
            rpc_timeout=rpc_timeout,
            on_genuine_change=self.replicator.publish,
        )
        self.partitions_provider: Callable[[], list[Atom]] = list
        """Where :meth:`partitions` reads the partition list (the node monitor's)."""
        self._services: list[ClusterService] = []
        self._services_running = False
        self._started = False
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._hooks: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<Cluster {self.node.name.name} {self.db.db_nodes()!r}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Cluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the services run (``ekka_node:is_running(ekka)`` here)."""
        return self._services_running

    async def start(self) -> None:
        """Register the RPC surface, start the db and the services, sync the view.

        A view restored from ``data_dir`` makes the node reconnect to its members.
        """
        from pyekka.cluster.rpc_surface import register_rpc_surface

        if self._started:
            raise RuntimeError("the cluster is already started")
        self._started = True
        register_rpc_surface(self)
        self._hooks = [
            self.db.on_event(lambda _ev: self._changed.set()),
            self.db.on_view_change(lambda _nodes: self._changed.set()),
            self.db.on_removed(self._removed),
            self.membership.on_change(self._changed.set),
        ]
        self.db.start()
        await self.replicator.start()
        await self.start_services()

    async def stop(self) -> None:
        """Stop the services and the db (the view stays in ``data_dir``)."""
        from pyekka.cluster.rpc_surface import unregister_rpc_surface

        if not self._started:
            return
        self._started = False
        await self.stop_services()
        incarnation = self.db.incarnation
        peers = self.db.stop()
        if incarnation is not None:
            self.replicator.notify_db_down(peers, incarnation)
        await self.replicator.stop()
        for unhook in self._hooks:
            unhook()
        self._hooks.clear()
        unregister_rpc_surface(self)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def add_service(self, service: ClusterService) -> None:
        """Start ``service`` with the cluster's services from now on (now if they run)."""
        self._services.append(service)
        if self._services_running:
            self._background(service.start(self))

    async def start_services(self) -> None:
        """``ekka:start()``: the membership (a new guid), then the added services."""
        if self._services_running:
            return
        await self.membership.start()
        for service in self._services:
            await service.start(self)
        self._services_running = True
        self._changed.set()

    async def stop_services(self) -> None:
        """``application:stop(ekka)``: the added services (last first), the membership."""
        if not self._services_running:
            return
        self._services_running = False
        for service in reversed(self._services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %r failed", service)
        await self.membership.stop()
        self._changed.set()

    def _background(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _removed(self) -> None:
        """A member's copy says this node was removed: restart the db, reboot."""
        self.db.stop()
        self.db.start()
        if self._services_running and not self._lock.locked():
            self._background(self._reboot_services())

    async def _reboot_services(self) -> None:
        async with self._lock:
            await self.stop_services()
            await self.start_services()

    # -- reading -----------------------------------------------------------------------

    def members(self, status: MemberStatus | None = None) -> list[Member]:
        """``ekka:members()`` (of ``status``), in node order."""
        return self.membership.members(status)

    def local_member(self) -> Member:
        """``ekka:local_member()``."""
        return self.membership.local_member()

    def leader(self) -> Atom | None:
        """``ekka_membership:leader()``: the oldest member, ``down`` ones included."""
        return self.membership.leader()

    def coordinator(self) -> Atom | None:
        """``ekka_membership:coordinator()``: the oldest ``up`` member."""
        return self.membership.coordinator()

    def db_nodes(self) -> list[Atom]:
        """The pyekka nodes of the cluster (``ekka_mnesia:cluster_nodes(all)``)."""
        return self.db.db_nodes()

    def running_nodes(self) -> list[Atom]:
        """The running pyekka nodes (``ekka_mnesia:running_nodes()``)."""
        return self.db.running_nodes()

    def stopped_nodes(self) -> list[Atom]:
        """The pyekka nodes that are not running (``cluster_nodes(stopped)``)."""
        return self.db.stopped_nodes()

    def genuine_nodes(self) -> list[Atom]:
        """The genuine ekka nodes the cluster is attached to."""
        return self.db.view.genuine_nodes()

    def node_status(self, node: str | Atom) -> MnesiaStatus:
        """``ekka_cluster:status(Node)``: running, stopped or not in the cluster."""
        return self.db.cluster_status(as_atom(node))

    def partitions(self) -> list[Atom]:
        """The partitions the node monitor knows of (``[]`` without one)."""
        return list(self.partitions_provider())

    def info(self) -> ClusterInfo:
        """``ekka:info()``."""
        return ClusterInfo(
            self.members(), self.running_nodes(), self.stopped_nodes(), self.partitions()
        )

    def status(self) -> ClusterStatus:
        """A summary for people and ``pyekka ctl status``."""
        return ClusterStatus(
            node=self.node.name,
            running=self.running,
            cluster_name=self.cluster_name,
            running_nodes=self.running_nodes(),
            stopped_nodes=self.stopped_nodes(),
            genuine_nodes=self.genuine_nodes(),
            partitions=self.partitions(),
            leader=self.leader(),
            coordinator=self.coordinator(),
            members=self.members(),
        )

    # -- events ------------------------------------------------------------------------

    def on_event(
        self, callback: Callable[[Event], None], types: Iterable[EventType] | None = None
    ) -> Callable[[], None]:
        """``ekka:monitor/2``: call ``callback(event)``; returns the unsubscriber."""
        return self.membership.on_event(callback, types)

    def events(self, types: Iterable[EventType] | None = None) -> EventStream:
        """Membership and/or partition events as an :class:`EventStream`."""
        return EventStream(self.membership, types)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait until ``predicate()`` holds, re-checking at every change of the
        members, the view or the db (``TimeoutError`` after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    # -- the operations ------------------------------------------------------------

    async def join(self, node: str | Atom) -> bool:
        """``ekka:join(Node)``: ``False`` for this node itself (ekka's ``ignore``),
        ``True`` once joined (see the module doc); :class:`ClusterError` else."""
        target = as_atom(node)
        if target == self.node.name:
            return False
        async with self._lock:
            await cluster_ops.join(self, target)
        return True

    async def leave(self) -> None:
        """``ekka:leave()``: leave the cluster (see the module doc)."""
        async with self._lock:
            await cluster_ops.leave(self)
        log.info("%s left its cluster", self.node.name.name)

    async def force_leave(self, node: str | Atom) -> bool:
        """``ekka:force_leave(Node)``: ``False`` for this node (ekka's ``ignore``)."""
        target = as_atom(node)
        if target == self.node.name:
            return False
        async with self._lock:
            await cluster_ops.force_leave(self, target)
        return True

    # -- ekka_cluster's entry points (also called by rpc) ------------------------

    async def prepare(self, action: str) -> Any:
        """``ekka_cluster:prepare(Action)``: announce, then the callback or stop."""
        self.membership.announce(action)
        if self.prepare_callback is not None:
            return await _maybe_await(self.prepare_callback(action))
        await self.stop_services()
        return _OK

    async def reboot(self) -> Any:
        """``ekka_cluster:reboot()``: the callback or start the services."""
        if self.reboot_callback is not None:
            return await _maybe_await(self.reboot_callback())
        await self.start_services()
        return _OK

    async def heal(self, action: str) -> Any:
        """``ekka_cluster:heal(shutdown | reboot)`` (spec 7.4)."""
        if action == "shutdown":
            await self.prepare("heal")
            incarnation = self.db.incarnation
            peers = self.db.stop()
            if incarnation is not None:
                self.replicator.notify_db_down(peers, incarnation)
            return _OK
        if action == "reboot":
            self.db.start()
            self.replicator.resync()
            return await self.reboot()
        raise ValueError(f"heal needs shutdown or reboot, not {action!r}")

    # -- pyekka's own entry points (rpc from the joining node) ------------------------

    def check_join(self, joiner: Atom, name: Any) -> Any:
        """``pyekka_cluster:check_join/2``: ``ok`` or ``{error, Reason}``."""
        return cluster_ops.check_join(self, joiner, name)

    async def accept_join(self, joiner: Atom, name: Any) -> Any:
        """``pyekka_cluster:join/2``: add ``joiner``, push the view, return it."""
        checked = self.check_join(joiner, name)
        if checked != _OK:
            return checked
        async with self._lock:
            return await cluster_ops.accept_join(self, joiner)
