"""The local node's stand-in for mnesia (see :mod:`pyekka.cluster.cluster_view`).

It holds the node's :class:`~pyekka.cluster.node_view.NodeView` (saved in the data
directory at every change), answers what ``ekka_mnesia`` answers, and takes the sync
terms the :class:`~pyekka.cluster.view_replicator.ViewReplicator` carries. No I/O
but the view's file.

Running db nodes, as mnesia's ``running_db_nodes``: the local node while its
:class:`ClusterDb` is started, and each member whose db answered a sync since the
connection came up. Every start of a db takes a fresh random *incarnation*. A member
that went down while running and comes back with the **same** incarnation kept
running while cut off from us: that is mnesia's ``inconsistent_database`` (both sides
see it); such a member stays out of the running nodes until one side restarts its db
(autoheal's reboot does), and :class:`DbEvent` ``inconsistent_database`` is raised, as
mnesia's system event is for ``ekka_node_monitor``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pyekka.cluster.constants import UNDEFINED
from pyekka.cluster.member import MnesiaStatus
from pyekka.cluster.node_view import NodeKind, NodeView, ViewEntry, sorted_nodes
from pyekka.cluster.split_view import ClusterView
from pyekka.cluster.view_file import VIEW_FILE, load_view, save_view
from pyekka.term.types import Atom

__all__ = ["ClusterDb", "DbEvent", "cluster_name_term", "cluster_name_value"]

log = logging.getLogger("pyekka.cluster.view")

_SYNC = Atom("sync")
_OK = Atom("ok")


@dataclass(frozen=True)
class DbEvent:
    """A db-level event, as mnesia's system events (``mnesia:subscribe(system)``)."""

    kind: Literal["mnesia_up", "mnesia_down", "inconsistent_database"]
    node: Atom


class ClusterDb:
    """The local node's stand-in for mnesia: the view, its file, the running nodes.

    No network I/O here (the :class:`ViewReplicator` does it); every method returns
    at once. ``data_dir`` ``None`` keeps the view in memory only.
    """

    def __init__(
        self, self_node: Atom, cluster_name: str | None = None, data_dir: Path | None = None
    ) -> None:
        self.self_node = self_node
        self.cluster_name = cluster_name
        self.path = None if data_dir is None else Path(data_dir) / VIEW_FILE
        loaded = None if self.path is None else load_view(self.path, self_node, cluster_name)
        if loaded is not None and loaded.self_removed:
            loaded = None
        self.view = loaded or NodeView.standalone(self_node, cluster_name)
        self.restored = loaded is not None
        """Whether the view was read from the data directory."""
        self.incarnation: bytes | None = None
        """This db's incarnation while started, else ``None``."""
        self._running: dict[Atom, bytes] = {}
        self._down: dict[Atom, bytes] = {}
        self._inconsistent: dict[Atom, bytes] = {}
        self._listeners: list[Callable[[DbEvent], None]] = []
        self._view_listeners: list[Callable[[list[Atom]], None]] = []
        self._removed_listeners: list[Callable[[], None]] = []
        self._save()

    # -- subscriptions --

    def on_event(self, callback: Callable[[DbEvent], None]) -> Callable[[], None]:
        """Call ``callback(DbEvent)`` on each db event; returns the unsubscriber."""
        return _subscribe(self._listeners, callback)

    def on_view_change(self, callback: Callable[[list[Atom]], None]) -> Callable[[], None]:
        """Call ``callback(changed_nodes)`` after each change of the view."""
        return _subscribe(self._view_listeners, callback)

    def on_removed(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` when a member's copy shows this node was removed."""
        return _subscribe(self._removed_listeners, callback)

    # -- what ekka_mnesia answers --

    @property
    def started(self) -> bool:
        """Whether the db runs (mnesia started)."""
        return self.incarnation is not None

    def db_nodes(self) -> list[Atom]:
        """``ekka_mnesia:cluster_nodes(all)``: the pyekka members, sorted."""
        return self.view.db_nodes()

    def running_nodes(self) -> list[Atom]:
        """``cluster_nodes(running)``: this node (if started) and the running members."""
        if not self.started:
            return []
        db = set(self.view.db_nodes())
        return sorted_nodes(n for n in (self.self_node, *self._running) if n in db)

    def stopped_nodes(self) -> list[Atom]:
        """``cluster_nodes(stopped)``: db nodes that are not running."""
        running = set(self.running_nodes())
        return [n for n in self.db_nodes() if n not in running]

    def is_node_in_cluster(self, node: Atom | None = None) -> bool:
        """``is_node_in_cluster/0,1``: a db node; for the local node, "has company"."""
        if node is None or node == self.self_node:
            return self.db_nodes() != [self.self_node]
        return self.view.kind(node) is NodeKind.PYEKKA

    def cluster_status(self, node: Atom) -> MnesiaStatus:
        """``ekka_mnesia:cluster_status(Node)``: running, stopped or false."""
        if self.view.kind(node) is not NodeKind.PYEKKA:
            return MnesiaStatus.NOT_DB
        return MnesiaStatus.RUNNING if node in self.running_nodes() else MnesiaStatus.STOPPED

    def cluster_view(self) -> ClusterView:
        """``ekka_mnesia:cluster_view()``: ``{Running, Stopped}``, both sorted."""
        return ClusterView(tuple(self.running_nodes()), tuple(self.stopped_nodes()))

    def cluster_info(self) -> dict[Atom, list[Atom]]:
        """``ekka_mnesia:cluster_info()``: ``#{running_nodes, stopped_nodes}``."""
        return {
            Atom("running_nodes"): self.running_nodes(),
            Atom("stopped_nodes"): self.stopped_nodes(),
        }

    def is_inconsistent(self, node: Atom) -> bool:
        """Whether ``node`` is connected but kept out after a partition."""
        return node in self._inconsistent

    # -- lifecycle (mnesia start/stop) --

    def start(self) -> bytes:
        """Start the db with a new incarnation."""
        if self.incarnation is None:
            self.incarnation = secrets.token_bytes(16)
        return self.incarnation

    def stop(self) -> list[Atom]:
        """Stop the db; the peers that were running (to be told)."""
        peers = list(self._running)
        self.incarnation = None
        self._running.clear()
        self._down.clear()
        self._inconsistent.clear()
        for node in peers:
            self._emit(DbEvent("mnesia_down", node))
        return peers

    # -- changes of the view --

    def add(self, node: Atom, kind: NodeKind = NodeKind.PYEKKA) -> bool:
        """Stamp ``node`` in (saved); whether the view changed."""
        return self._changed([node] if self.view.add(node, kind) else [])

    def remove(self, node: Atom) -> bool:
        """Stamp ``node`` out (saved); whether the view changed."""
        return self._changed([node] if self.view.remove(node) else [])

    def set_genuine(self, nodes: Iterable[Atom]) -> list[Atom]:
        """Make the genuine members exactly ``nodes`` (saved); the nodes changed."""
        wanted = set(nodes) - {self.self_node}
        changed = [n for n in self.view.genuine_nodes() if n not in wanted]
        for node in changed:
            self.view.remove(node)
        for node in sorted_nodes(wanted):
            if self.view.kind(node) is None and self.view.add(node, NodeKind.GENUINE):
                changed.append(node)
        self._changed(changed)
        return changed

    def adopt(self, entries: dict[Atom, ViewEntry]) -> None:
        """Replace the view by a member's copy (joining its cluster)."""
        self.view = NodeView(self.self_node, entries, self.cluster_name)
        self.view.add(self.self_node)
        self._drop_outsiders()
        self._changed(list(self.view.entries))

    def reset(self) -> None:
        """Back to a standalone view (after leaving or being removed)."""
        old = list(self.view.entries)
        self.view = NodeView.standalone(self.self_node, self.cluster_name, self.view.next_stamp())
        self._drop_outsiders()
        self._changed(old)

    def _changed(self, nodes: list[Atom]) -> bool:
        if not nodes:
            return False
        self._drop_outsiders()
        self._save()
        for callback in list(self._view_listeners):
            _safely(callback, nodes)
        return True

    def _drop_outsiders(self) -> None:
        for table in (self._running, self._down, self._inconsistent):
            for node in [n for n in table if self.view.kind(n) is not NodeKind.PYEKKA]:
                if table is self._running:
                    del table[node]
                    self._emit(DbEvent("mnesia_down", node))
                else:
                    del table[node]

    def _save(self) -> None:
        if self.path is not None:
            save_view(self.path, self.view)

    # -- replication (the replicator carries these terms) --

    def sync_request(self) -> tuple:
        """``{sync, Node, ClusterName, Incarnation, View}``: what a sync sends."""
        return (
            _SYNC,
            self.self_node,
            cluster_name_term(self.cluster_name),
            self.incarnation if self.incarnation is not None else UNDEFINED,
            self.view.to_term(),
        )

    def handle_sync(self, request: Any) -> tuple:
        """Serve a peer's sync request; the reply ``{ok, ClusterName, Inc, View}``.

        Malformed requests raise ``ValueError``.
        """
        peer, name, inc, entries = _parse_sync(request)
        if name == self.cluster_name and self.view.is_member(peer) and peer != self.self_node:
            self._merge(entries)
            self._peer_seen(peer, inc)
        return (
            _OK,
            cluster_name_term(self.cluster_name),
            self.incarnation if self.incarnation is not None else UNDEFINED,
            self.view.to_term(),
        )

    def handle_sync_reply(self, peer: Atom, reply: Any) -> ViewEntry | None:
        """Take a peer's sync reply in; the peer's entry for this node (``None`` if it
        has none, or belongs to another cluster). ``ValueError`` if malformed."""
        if not (type(reply) is tuple and len(reply) == 4 and reply[0] == _OK):
            raise ValueError(f"not a sync reply: {reply!r}")
        _, name, inc, entries_term = reply
        entries = NodeView.entries_from_term(entries_term)
        if cluster_name_value(name) != self.cluster_name or peer == self.self_node:
            return None
        ours = entries.get(self.self_node)
        if ours is None:
            return None  # the peer does not know us (yet): neither merge nor drop
        if not ours.member:
            if ours.wins_over(self.view.entries.get(self.self_node)):
                self._merge(entries)
        elif self.view.is_member(peer):
            self._merge(entries)
            self._peer_seen(peer, _incarnation(inc))
        return ours

    def _merge(self, entries: dict[Atom, ViewEntry]) -> None:
        changed = self.view.merge(entries)
        if self.view.self_removed:
            log.warning("%s was removed from its cluster", self.self_node.name)
            self.reset()
            for callback in list(self._removed_listeners):
                _safely(callback)
            return
        self._changed(changed)

    def _peer_seen(self, peer: Atom, inc: bytes | None) -> None:
        if inc is None or not self.started or self.view.kind(peer) is not NodeKind.PYEKKA:
            return
        if self._running.get(peer) == inc:
            return
        if self._down.get(peer) == inc:
            if self._inconsistent.get(peer) != inc:
                self._inconsistent[peer] = inc
                log.warning("%s kept running while cut off: a partition", peer.name)
                self._emit(DbEvent("inconsistent_database", peer))
            return
        self._inconsistent.pop(peer, None)
        self._down.pop(peer, None)
        self._running[peer] = inc
        self._emit(DbEvent("mnesia_up", peer))

    def peer_down(self, peer: Atom) -> None:
        """The connection to ``peer`` went down (``nodedown``)."""
        inc = self._running.pop(peer, None)
        if inc is not None:
            self._down[peer] = inc
            self._emit(DbEvent("mnesia_down", peer))

    def peer_db_down(self, peer: Atom, inc: Any) -> None:
        """``peer`` says it stopped its db (incarnation ``inc``) while connected."""
        if self._running.get(peer) == inc:
            del self._running[peer]
            self._emit(DbEvent("mnesia_down", peer))

    def _emit(self, event: DbEvent) -> None:
        for callback in list(self._listeners):
            _safely(callback, event)


def _subscribe(listeners: list, callback: Callable) -> Callable[[], None]:
    listeners.append(callback)

    def unsubscribe() -> None:
        with contextlib.suppress(ValueError):
            listeners.remove(callback)

    return unsubscribe


def _safely(callback: Callable, *args: Any) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("a cluster view listener failed")


def cluster_name_term(name: str | None) -> Any:
    """A cluster name as it travels: a UTF-8 binary, or ``undefined``."""
    return UNDEFINED if name is None else name.encode()


def cluster_name_value(term: Any) -> str | None:
    """The cluster name of :func:`cluster_name_term`'s term; ``ValueError`` if malformed."""
    if term == UNDEFINED:
        return None
    if type(term) is bytes:
        return term.decode("utf-8", "replace")
    raise ValueError(f"not a cluster name: {term!r}")


def _incarnation(term: Any) -> bytes | None:
    return term if type(term) is bytes else None


def _parse_sync(request: Any) -> tuple[Atom, str | None, bytes | None, dict[Atom, ViewEntry]]:
    if not (type(request) is tuple and len(request) == 5 and request[0] == _SYNC):
        raise ValueError(f"not a sync request: {request!r}")
    _, peer, name, inc, entries = request
    if type(peer) is not Atom:
        raise ValueError(f"not a node: {peer!r}")
    return peer, cluster_name_value(name), _incarnation(inc), NodeView.entries_from_term(entries)
