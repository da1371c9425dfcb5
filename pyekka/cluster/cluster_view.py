"""pyekka's replicated cluster view: what mnesia's ``db_nodes`` are to genuine ekka.

Genuine ekka 0.8 says a node is "in the cluster" when it is one of mnesia's
``db_nodes`` (spec 1, 7). pyekka has no mnesia, so every pyekka node keeps a
:class:`NodeView` of the nodes that form its cluster, replicated to every member and
persisted in the node's data directory (so that a restarted node rejoins its cluster
without discovery, as an ekka node does from its mnesia schema):

* **pyekka members** are the cluster's db nodes: ``ekka_mnesia:cluster_view/0``,
  ``cluster_status/1``, ``running_nodes`` and autoheal work on them only;
* **genuine members** are genuine ekka nodes the cluster is attached to at the
  membership level (spec 14.2): pyekka nodes ping them so that they list the pyekka
  nodes as ``up``, but they are never db nodes (pyekka cannot join mnesia, spec 16.4).

The view is a last-writer-wins map ``node -> (member?, stamp, kind)``: joining stamps a
node in, leaving and force-leaving stamp it out (a tombstone that keeps a removed node
from being resurrected by a stale copy); two copies merge entry by entry, the higher
stamp winning (a removal wins a tie). Stamps are wall-clock microseconds made monotonic
per node, so nodes whose clocks differ by more than the time between two changes of
one entry may order those changes wrongly.

Copies meet through ``pyekka_cluster:sync/1`` (rpc): at start, on every connection to
a member, and after every local change (pushed to every member). A node merges a
peer's copy only if it counts the peer as a member, and a node learns that it was
removed only from a member's copy. A node that finds itself removed resets to a
standalone view (and :class:`~pyekka.cluster.cluster.Cluster` reboots it).

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

import asyncio
import contextlib
import json
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pyekka.cluster.constants import UNDEFINED
from pyekka.cluster.member import MnesiaStatus
from pyekka.cluster.split_view import ClusterView
from pyekka.term import format_term
from pyekka.term.order import term_sort_key
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.node.node import Node
    from pyekka.node.process import Process

__all__ = [
    "PYEKKA_CLUSTER",
    "VIEW_FILE",
    "ClusterDb",
    "DbEvent",
    "NodeKind",
    "NodeView",
    "ViewEntry",
    "ViewReplicator",
    "cluster_name_term",
    "cluster_name_value",
    "load_view",
    "save_view",
]

log = logging.getLogger("pyekka.cluster.view")

VIEW_FILE = "cluster_view.json"
"""The view's file in the data directory."""
PYEKKA_CLUSTER = Atom("pyekka_cluster")
"""Module name of pyekka's own RPCs and registered name of the replicator."""

_FORMAT = 1
_SYNC = Atom("sync")
_OK = Atom("ok")
_DB_DOWN = Atom("db_down")
_NODEUP = Atom("nodeup")
_NODEDOWN = Atom("nodedown")
_GEN_CAST = Atom("$gen_cast")
_RESYNC = Atom("$pyekka_resync")


def _sorted(nodes: Iterable[Atom]) -> list[Atom]:
    return sorted(nodes, key=term_sort_key)


def _now_us() -> int:
    return time.time_ns() // 1000


class NodeKind(Enum):
    """What kind of node a view entry names."""

    PYEKKA = "pyekka"
    """A pyekka node: a db node of the cluster."""
    GENUINE = "genuine"
    """A genuine ekka node the cluster is attached to (membership only)."""


@dataclass(frozen=True)
class ViewEntry:
    """One node of the view: in (``member``) or removed, when, and what kind."""

    member: bool
    stamp: int
    kind: NodeKind = NodeKind.PYEKKA

    def wins_over(self, other: ViewEntry | None) -> bool:
        """Whether this entry replaces ``other`` in a merge: the higher stamp; on a
        tie a removal, then the kind's name (a total order, so merges commute)."""
        if other is None:
            return True
        return self._order() > other._order()

    def _order(self) -> tuple[int, bool, str]:
        return (self.stamp, not self.member, self.kind.value)

    def to_term(self, node: Atom) -> tuple:
        """``{Node, IsMember, Stamp, Kind}``."""
        return (node, self.member, self.stamp, Atom(self.kind.value))


class NodeView:
    """The replicated view of one node (pure; see the module doc)."""

    def __init__(
        self,
        self_node: Atom,
        entries: dict[Atom, ViewEntry] | None = None,
        cluster_name: str | None = None,
    ) -> None:
        self.self_node = self_node
        self.cluster_name = cluster_name
        self.entries: dict[Atom, ViewEntry] = dict(entries or {})

    @classmethod
    def standalone(
        cls, self_node: Atom, cluster_name: str | None = None, now_us: int | None = None
    ) -> NodeView:
        """A view holding only the local node."""
        stamp = _now_us() if now_us is None else now_us
        return cls(self_node, {self_node: ViewEntry(True, stamp)}, cluster_name)

    # -- reading --

    def is_member(self, node: Atom) -> bool:
        """Whether ``node`` is in the cluster (either kind)."""
        entry = self.entries.get(node)
        return entry is not None and entry.member

    def kind(self, node: Atom) -> NodeKind | None:
        """The kind of a member, ``None`` if not a member."""
        entry = self.entries.get(node)
        return entry.kind if entry is not None and entry.member else None

    def db_nodes(self) -> list[Atom]:
        """The pyekka members (``mnesia:system_info(db_nodes)``), sorted."""
        return _sorted(n for n, e in self.entries.items() if e.member and e.kind is NodeKind.PYEKKA)

    def genuine_nodes(self) -> list[Atom]:
        """The genuine ekka nodes the cluster is attached to, sorted."""
        return _sorted(
            n for n, e in self.entries.items() if e.member and e.kind is NodeKind.GENUINE
        )

    def members(self) -> list[Atom]:
        """Every member, both kinds, sorted."""
        return _sorted(n for n, e in self.entries.items() if e.member)

    @property
    def self_removed(self) -> bool:
        """Whether the view says that the local node was removed from the cluster."""
        return not self.is_member(self.self_node)

    # -- changing --

    def next_stamp(self, now_us: int | None = None) -> int:
        """A stamp after every stamp in the view."""
        now = _now_us() if now_us is None else now_us
        latest = max((e.stamp for e in self.entries.values()), default=0)
        return max(now, latest + 1)

    def add(self, node: Atom, kind: NodeKind = NodeKind.PYEKKA, now_us: int | None = None) -> bool:
        """Stamp ``node`` in; whether the view changed."""
        if self.kind(node) is kind:
            return False
        self.entries[node] = ViewEntry(True, self.next_stamp(now_us), kind)
        return True

    def remove(self, node: Atom, now_us: int | None = None) -> bool:
        """Stamp ``node`` out (a tombstone); whether the view changed."""
        old = self.entries.get(node)
        if old is None or not old.member:
            return False
        self.entries[node] = ViewEntry(False, self.next_stamp(now_us), old.kind)
        return True

    def merge(self, entries: dict[Atom, ViewEntry]) -> list[Atom]:
        """Merge another copy in; the nodes whose entry changed."""
        changed = []
        for node, entry in entries.items():
            if entry.wins_over(self.entries.get(node)):
                self.entries[node] = entry
                changed.append(node)
        return changed

    # -- terms and JSON --

    def to_term(self) -> list[tuple]:
        """The entries as ``[{Node, IsMember, Stamp, Kind}]`` (sorted by node)."""
        return [self.entries[n].to_term(n) for n in _sorted(self.entries)]

    @staticmethod
    def entries_from_term(term: Any) -> dict[Atom, ViewEntry]:
        """Parse :meth:`to_term`'s list; ``ValueError`` if malformed."""
        if type(term) is not list:
            raise ValueError(f"not a view: {term!r}")
        out: dict[Atom, ViewEntry] = {}
        for item in term:
            if not (type(item) is tuple and len(item) == 4):
                raise ValueError(f"not a view entry: {item!r}")
            node, member, stamp, kind = item
            if type(node) is not Atom or type(member) is not bool or type(stamp) is not int:
                raise ValueError(f"not a view entry: {item!r}")
            if type(kind) is not Atom or kind.name not in ("pyekka", "genuine"):
                raise ValueError(f"not a node kind: {kind!r}")
            out[node] = ViewEntry(member, stamp, NodeKind(kind.name))
        return out

    def to_json(self) -> dict[str, Any]:
        """The view as a JSON object (the data directory's file)."""
        return {
            "format": _FORMAT,
            "node": self.self_node.name,
            "cluster_name": self.cluster_name,
            "entries": [
                {"node": n.name, "member": e.member, "stamp": e.stamp, "kind": e.kind.value}
                for n, e in sorted(self.entries.items(), key=lambda kv: term_sort_key(kv[0]))
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> NodeView:
        """Parse :meth:`to_json`'s object; ``ValueError`` if malformed."""
        try:
            if data["format"] != _FORMAT:
                raise ValueError(f"unknown view format {data['format']!r}")
            entries = {
                Atom(str(e["node"])): ViewEntry(
                    bool(e["member"]), int(e["stamp"]), NodeKind(e["kind"])
                )
                for e in data["entries"]
            }
            name = data["cluster_name"]
            return cls(Atom(str(data["node"])), entries, None if name is None else str(name))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a cluster view: {exc}") from exc


def save_view(path: Path, view: NodeView) -> None:
    """Write the view to ``path`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(view.to_json(), indent=1).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_view(path: Path, self_node: Atom, cluster_name: str | None) -> NodeView | None:
    """The view saved at ``path`` for this node and cluster name, or ``None``.

    A missing or unreadable file, or one saved by another node or for another cluster
    name, gives ``None`` (logged).
    """
    try:
        view = NodeView.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring the cluster view in %s: %s", path, exc)
        return None
    if view.self_node != self_node or view.cluster_name != cluster_name:
        log.warning(
            "ignoring the cluster view in %s: saved by %s for cluster %r, not %s for %r",
            path,
            view.self_node.name,
            view.cluster_name,
            self_node.name,
            cluster_name,
        )
        return None
    return view


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
        return _sorted(n for n in (self.self_node, *self._running) if n in db)

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
        for node in _sorted(wanted):
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
