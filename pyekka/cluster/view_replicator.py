"""The ``pyekka_cluster`` process (see :mod:`pyekka.cluster.cluster_view`).

Copies meet through ``pyekka_cluster:sync/1`` (rpc): at start, on every connection to
a member, and after every local change (pushed to every member). A node merges a
peer's copy only if it counts the peer as a member, and a node learns that it was
removed only from a member's copy (:class:`~pyekka.cluster.cluster_db.ClusterDb`
decides; this module carries the terms).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pyekka.cluster.cluster_db import ClusterDb
from pyekka.cluster.node_view import NodeKind, ViewEntry
from pyekka.term import format_term
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.node.node import Node
    from pyekka.node.process import Process

__all__ = ["PYEKKA_CLUSTER", "ViewReplicator"]

log = logging.getLogger("pyekka.cluster.view")

PYEKKA_CLUSTER = Atom("pyekka_cluster")
"""Module name of pyekka's own RPCs and registered name of the replicator."""

_SYNC = Atom("sync")
_DB_DOWN = Atom("db_down")
_NODEUP = Atom("nodeup")
_NODEDOWN = Atom("nodedown")
_GEN_CAST = Atom("$gen_cast")
_RESYNC = Atom("$pyekka_resync")


class ViewReplicator:
    """Keeps the local view in step with the members' (the ``pyekka_cluster`` process).

    Syncs with every pyekka member at start, on every ``nodeup`` of one, and with the
    nodes a change adds; turns ``nodedown`` and peers' ``db_down`` casts into the db's
    running state. :meth:`publish` pushes the local view to every member.
    """

    def __init__(self, node: Node, db: ClusterDb, *, rpc_timeout: float = 15.0) -> None:
        self.node = node
        self.db = db
        self.rpc_timeout = rpc_timeout
        self._proc: Process | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Start the process, then sync with every member in the background."""
        ready = asyncio.get_running_loop().create_future()
        self._proc = self.node.spawn(self._run, ready, name=PYEKKA_CLUSTER)
        await ready
        self._unsubscribe = self.db.on_view_change(self._view_changed)
        self.resync()

    async def stop(self) -> None:
        """Stop the process and any sync in flight."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.is_alive:
            self.node.runtime.exit(proc.pid, Atom("kill"))
            await proc.wait()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def resync(self) -> None:
        """Sync with every pyekka member, in the background."""
        if self._proc is not None:
            self._proc.deliver(_RESYNC)

    async def sync_with(self, peer: Atom) -> ViewEntry | None:
        """One sync with ``peer``: its entry for this node, ``None`` if it has none
        or did not answer."""
        reply = await self.node.rpc(
            peer, PYEKKA_CLUSTER, _SYNC, [self.db.sync_request()], self.rpc_timeout
        )
        try:
            return self.db.handle_sync_reply(peer, reply)
        except ValueError:
            log.info("no view from %s: %s", peer.name, format_term(reply))
            return None

    async def publish(self, nodes: Iterable[Atom] | None = None) -> list[Atom]:
        """Sync with ``nodes`` (default: every other pyekka member) at once; those
        that answered with the same entry for this node as ours (they agree on
        whether it is in the cluster)."""
        mine = self.db.view.entries.get(self.db.self_node)
        peers = [n for n in (self.db.db_nodes() if nodes is None else nodes)]
        peers = [n for n in peers if n != self.db.self_node]
        results = await asyncio.gather(*(self.sync_with(n) for n in peers))
        acked = []
        for peer, entry in zip(peers, results, strict=True):
            if entry == mine:
                acked.append(peer)
            else:
                log.info("%s did not take our view: %r, ours %r", peer.name, entry, mine)
        return acked

    def notify_db_down(self, peers: Iterable[Atom], incarnation: bytes) -> None:
        """Tell ``peers`` that the local db stopped (connections stay up)."""
        for peer in peers:
            self.node.runtime.try_send(
                (PYEKKA_CLUSTER, peer), (_GEN_CAST, (_DB_DOWN, self.db.self_node, incarnation))
            )

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _view_changed(self, nodes: list[Atom]) -> None:
        for peer in nodes:
            if self.db.view.kind(peer) is NodeKind.PYEKKA and peer != self.db.self_node:
                self._background(self._quiet_sync(peer))

    async def _quiet_sync(self, peer: Atom) -> None:
        try:
            await self.sync_with(peer)
        except Exception:
            log.exception("sync with %s failed", peer.name)

    async def _run(self, proc: Process, ready: asyncio.Future[None]) -> None:
        proc.monitor_nodes(True)
        ready.set_result(None)
        while True:
            msg = await proc.receive()
            if msg == _RESYNC:
                for peer in self.db.db_nodes():
                    if peer != self.db.self_node:
                        self._background(self._quiet_sync(peer))
            elif type(msg) is tuple and len(msg) == 2 and msg[0] == _NODEUP:
                if self.db.view.kind(msg[1]) is NodeKind.PYEKKA:
                    self._background(self._quiet_sync(msg[1]))
            elif type(msg) is tuple and len(msg) == 2 and msg[0] == _NODEDOWN:
                self.db.peer_down(msg[1])
            elif type(msg) is tuple and len(msg) == 2 and msg[0] == _GEN_CAST:
                body = msg[1]
                if type(body) is tuple and len(body) == 3 and body[0] == _DB_DOWN:
                    self.db.peer_db_down(body[1], body[2])
