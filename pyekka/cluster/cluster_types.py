"""The cluster API's value types: :class:`ClusterError`, the :class:`ClusterService`
protocol, :class:`ClusterInfo` / :class:`ClusterStatus` and :class:`EventStream`.

All are re-exported by :mod:`pyekka.cluster.cluster`, where they are used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pyekka.cluster.events import Event, EventType
from pyekka.cluster.member import Member
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.cluster.cluster import Cluster
    from pyekka.cluster.service_membership import MembershipService

__all__ = [
    "ClusterError",
    "ClusterInfo",
    "ClusterService",
    "ClusterStatus",
    "EventStream",
]

A = Atom


class ClusterError(Exception):
    """A cluster operation failed; ``reason`` is ekka's reason term."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class ClusterService(Protocol):
    """A service started and stopped with the cluster's (``ekka`` application's)."""

    async def start(self, cluster: Cluster) -> None:
        """Start; the membership service already runs."""
        ...

    async def stop(self) -> None:
        """Stop; the membership service still runs."""
        ...


@dataclass(frozen=True)
class ClusterInfo:
    """``ekka:info()``: members, running and stopped db nodes, partitions."""

    members: list[Member]
    running_nodes: list[Atom]
    stopped_nodes: list[Atom]
    partitions: list[Atom]

    def to_term(self) -> dict[Atom, Any]:
        """The ``#{members, running_nodes, stopped_nodes, partitions}`` map."""
        return {
            A("members"): [m.to_term() for m in self.members],
            A("running_nodes"): list(self.running_nodes),
            A("stopped_nodes"): list(self.stopped_nodes),
            A("partitions"): list(self.partitions),
        }


@dataclass(frozen=True)
class ClusterStatus:
    """A summary of the cluster as this node sees it (``pyekka ctl status``)."""

    node: Atom
    running: bool
    """Whether the services (the ``ekka`` application) run here."""
    cluster_name: str | None
    running_nodes: list[Atom]
    stopped_nodes: list[Atom]
    genuine_nodes: list[Atom]
    """Genuine ekka nodes the cluster is attached to."""
    partitions: list[Atom]
    leader: Atom | None
    coordinator: Atom | None
    members: list[Member] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (node names as strings, guids in hex)."""

        def names(nodes: Iterable[Atom]) -> list[str]:
            return [n.name for n in nodes]

        return {
            "node": self.node.name,
            "running": self.running,
            "cluster_name": self.cluster_name,
            "running_nodes": names(self.running_nodes),
            "stopped_nodes": names(self.stopped_nodes),
            "genuine_nodes": names(self.genuine_nodes),
            "partitions": names(self.partitions),
            "leader": None if self.leader is None else self.leader.name,
            "coordinator": None if self.coordinator is None else self.coordinator.name,
        }


class EventStream:
    """Membership/partition events as an async iterator (``async for ev in stream``).

    Use as an async context manager, or call :meth:`close` to unsubscribe.
    """

    def __init__(self, membership: MembershipService, types: Iterable[EventType] | None) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._unsubscribe = membership.on_event(self._queue.put_nowait, types)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    async def get(self, timeout: float | None = None) -> Event:
        """The next event (``TimeoutError`` after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._unsubscribe()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
