"""The replicated cluster view, a pure data structure (see :mod:`pyekka.cluster.cluster_view`).

The view is a last-writer-wins map ``node -> (member?, stamp, kind)``: joining stamps a
node in, leaving and force-leaving stamp it out (a tombstone that keeps a removed node
from being resurrected by a stale copy); two copies merge entry by entry, the higher
stamp winning (a removal wins a tie). Stamps are wall-clock microseconds made monotonic
per node, so nodes whose clocks differ by more than the time between two changes of
one entry may order those changes wrongly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pyekka.term.order import term_sort_key
from pyekka.term.types import Atom

__all__ = ["NodeKind", "NodeView", "ViewEntry", "sorted_nodes"]

_FORMAT = 1


def sorted_nodes(nodes: Iterable[Atom]) -> list[Atom]:
    """``nodes`` in Erlang term order (as ``lists:sort/1``)."""
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
        return sorted_nodes(
            n for n, e in self.entries.items() if e.member and e.kind is NodeKind.PYEKKA
        )

    def genuine_nodes(self) -> list[Atom]:
        """The genuine ekka nodes the cluster is attached to, sorted."""
        return sorted_nodes(
            n for n, e in self.entries.items() if e.member and e.kind is NodeKind.GENUINE
        )

    def members(self) -> list[Atom]:
        """Every member, both kinds, sorted."""
        return sorted_nodes(n for n, e in self.entries.items() if e.member)

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
        return [self.entries[n].to_term(n) for n in sorted_nodes(self.entries)]

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
