"""A running pyekka cluster member, assembled from options: the one place that wires
the cluster's services together.

:func:`start_member` turns a started :class:`~pyekka.node.node.Node` into what an ekka
node is (``pyekka start`` runs it; tests and benchmarks use it too)::

    async with Node("py1@127.0.0.1", "secret", epmd=False) as node:
        async with cluster_member(node, MemberOptions(data_dir="data/py1")) as member:
            await member.cluster.join("py2@127.0.0.1")
            async with member.locker.lock(b"resource"):
                ...

It builds, in this order:

* the :class:`~pyekka.cluster.cluster.Cluster` (membership, replicated view in
  ``data_dir``, the RPC surface genuine nodes call);
* the :class:`~pyekka.cluster.service_locker.LockerService` (``ekka_locker``) and the
  :class:`~pyekka.cluster.service_node_monitor.NodeMonitor` (``ekka_node_monitor``,
  with autoheal and autoclean as configured), both added as cluster services, so that
  they stop and restart with the cluster's services as ekka's do;
* a :class:`~pyekka.cluster.locker.Locker` reading the cluster's member table;
* the ``pyekka_ctl`` functions of :mod:`pyekka.cluster.ctl` (``pyekka ctl``'s server
  side), unless ``ctl=False``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyekka.cluster.cluster import Cluster
from pyekka.cluster.constants import LEASE_TIME_MS
from pyekka.cluster.ctl import CtlServer
from pyekka.cluster.events import Event, MnesiaEvent, NodeEvent, PartitionEvent
from pyekka.cluster.guid import GuidPolicy
from pyekka.cluster.locker import Locker
from pyekka.cluster.service_autoheal import AutohealSettings
from pyekka.cluster.service_locker import LockerService
from pyekka.cluster.service_node_monitor import NodeMonitor
from pyekka.config.values import format_duration

if TYPE_CHECKING:
    from pyekka.node.node import Node

__all__ = [
    "DEFAULT_CLUSTER_NAME",
    "ClusterMember",
    "MemberOptions",
    "cluster_member",
    "describe_event",
    "serving_member",
    "start_member",
]

DEFAULT_CLUSTER_NAME = "ekka"
"""ekka's ``cluster_name`` when none is configured."""


@dataclass(frozen=True)
class MemberOptions:
    """How a member is assembled; every default is ekka 0.8.1.9's.

    ``data_dir``: where the cluster view persists (``None``: memory only, no rejoin
    after a restart). ``autoheal``: ekka's ``cluster_autoheal`` (``True``: on after
    15 s, an ``int``: on after that many ms, ``False``: off) or
    :class:`~pyekka.cluster.service_autoheal.AutohealSettings`. ``autoclean_ms``:
    ``cluster_autoclean`` (``None``: off). ``lease_ms``: the locker's lease.
    ``monitor``: more keyword arguments of
    :class:`~pyekka.cluster.service_node_monitor.NodeMonitor` (shorter delays for
    tests and benchmarks). ``ctl``: register the ``pyekka_ctl`` functions.
    """

    data_dir: str | Path | None = None
    cluster_name: str | None = DEFAULT_CLUSTER_NAME
    autoheal: bool | int | AutohealSettings = True
    autoclean_ms: int | None = None
    lease_ms: int = LEASE_TIME_MS
    rpc_timeout: float = 15.0
    guid_policy: GuidPolicy = GuidPolicy.DEFER
    monitor: Mapping[str, Any] = field(default_factory=dict)
    ctl: bool = True

    def describe(self) -> str:
        """One line: the cluster name, data directory, autoheal and autoclean."""
        name = self.cluster_name if self.cluster_name is not None else "(unnamed)"
        where = f"data dir {self.data_dir}" if self.data_dir is not None else "no data dir"
        return (
            f"cluster {name}, {where}, autoheal {_autoheal_text(self.autoheal)}, "
            f"autoclean {_autoclean_text(self.autoclean_ms)}"
        )


def _autoheal_text(setting: bool | int | AutohealSettings) -> str:
    if isinstance(setting, AutohealSettings):
        return f"after {format_duration(setting.delay_ms)}"
    settings = AutohealSettings.from_setting(setting)
    return "off" if settings is None else f"after {format_duration(settings.delay_ms)}"


def _autoclean_text(ms: int | None) -> str:
    return "off" if ms is None else f"after {format_duration(ms)} down"


@dataclass
class ClusterMember:
    """The parts of a running member (see the module doc); :meth:`stop` ends them."""

    node: Node
    cluster: Cluster
    locker_service: LockerService
    node_monitor: NodeMonitor
    locker: Locker
    ctl: CtlServer | None
    options: MemberOptions

    async def stop(self) -> None:
        """Unregister ``pyekka_ctl`` (its locks released), end the locker's default
        owner, stop the cluster (and its services). The node keeps running."""
        try:
            if self.ctl is not None:
                await self.ctl.close()
            await self.locker.close()
        finally:
            await self.cluster.stop()


async def start_member(
    node: Node,
    options: MemberOptions | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
) -> ClusterMember:
    """Make the started ``node`` a cluster member as ``options`` say (see the module doc).

    A view restored from ``options.data_dir`` makes the node rejoin its cluster.
    ``on_event`` gets every membership and partition event from the start on.
    """
    options = options or MemberOptions()
    cluster = Cluster(
        node,
        options.data_dir,
        options.cluster_name,
        guid_policy=options.guid_policy,
        rpc_timeout=options.rpc_timeout,
    )
    locker_service = LockerService(node, lease_ms=options.lease_ms)
    monitor = NodeMonitor(
        autoheal=options.autoheal, autoclean_ms=options.autoclean_ms, **options.monitor
    )
    cluster.add_service(locker_service)
    cluster.add_service(monitor)
    if on_event is not None:
        cluster.on_event(on_event)
    await cluster.start()
    locker = Locker(node, cluster)
    ctl = None
    if options.ctl:
        ctl = CtlServer(cluster, locker, locker_service)
        ctl.register()
    return ClusterMember(node, cluster, locker_service, monitor, locker, ctl, options)


@contextlib.asynccontextmanager
async def cluster_member(
    node: Node,
    options: MemberOptions | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
) -> AsyncIterator[ClusterMember]:
    """:func:`start_member` for an ``async with`` block; stopped when it ends."""
    member = await start_member(node, options, on_event=on_event)
    try:
        yield member
    finally:
        await member.stop()


def describe_event(event: Event) -> str:
    """One line for a membership or partition event (``pyekka start`` prints them):
    ``member NODE up``, ``db NODE down``, ``partition with NODE occurred`` ..."""
    if isinstance(event, NodeEvent):
        return f"member {event.node.name} {event.status.value}"
    if isinstance(event, MnesiaEvent):
        return f"db {event.node.name} {event.status}"
    if isinstance(event, PartitionEvent):
        return f"partition with {event.node.name} {event.kind}"
    raise TypeError(f"not a cluster event: {event!r}")


@contextlib.asynccontextmanager
async def serving_member(
    node: Node, options: MemberOptions, report: Callable[[str], None]
) -> AsyncIterator[ClusterMember]:
    """:func:`cluster_member` that reports as ``pyekka start`` does: a first line with
    :meth:`MemberOptions.describe`, then one line per cluster event, then
    ``cluster stopped``."""
    report(options.describe())
    async with cluster_member(node, options, on_event=lambda ev: report(describe_event(ev))) as m:
        report(f"cluster running, leader {_leader(m)}")
        yield m
    report("cluster stopped")


def _leader(member: ClusterMember) -> str:
    leader = member.cluster.leader()
    return "none" if leader is None else leader.name
