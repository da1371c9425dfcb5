"""Autoheal's split view and the coordinator's decision, exactly as ekka 0.8.1.9 (spec 8).

* Every db node answers ``ekka_mnesia:cluster_view()`` with ``{Running, Stopped}``
  (both sorted). The leader deduplicates the views (``lists:usort``) and sorts them
  with ekka's ``compare_view``: more running nodes first; for equal lengths a view
  whose running list holds the leader comes first. That ordering fun is not a total
  order (two equal-length views without the leader each claim to sort after the
  other); genuine ``lists:sort/2`` then emits such views in *reverse* ``usort``
  order, while equal-length views holding the leader keep ``usort`` order. This is
  reproduced (and checked against a real VM by the tests).
* The coordinator is the oldest member among the first view's running nodes.
* The coordinator heals only two shapes: the first view sees nobody stopped (reboot
  all of its nodes but itself) or a clean two-way split (reboot the minority). Any
  other split view makes genuine ekka give up; :mod:`pyekka.cluster.heal_plan`
  handles those.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyekka.cluster.constants import AUTOHEAL_DEFAULT_DELAY_MS
from pyekka.cluster.election import coordinator_of
from pyekka.cluster.member import Member
from pyekka.term.order import term_sort_key
from pyekka.term.types import Atom

__all__ = [
    "ClusterView",
    "HealAction",
    "autoheal_delay",
    "cluster_view",
    "heal_partition",
    "parse_split_view",
    "split_view",
    "split_view_coordinator",
    "split_view_term",
]


def _sorted_nodes(nodes: Iterable[Atom]) -> tuple[Atom, ...]:
    return tuple(sorted(nodes, key=term_sort_key))


@dataclass(frozen=True)
class ClusterView:
    """``{Running, Stopped}``: one node's view of the db nodes (spec 3.4, 7.5)."""

    running: tuple[Atom, ...]
    stopped: tuple[Atom, ...] = ()

    def to_term(self) -> tuple[list[Atom], list[Atom]]:
        """The ``{[Node], [Node]}`` term."""
        return (list(self.running), list(self.stopped))

    @classmethod
    def from_term(cls, term: Any) -> ClusterView:
        """Parse a ``cluster_view()`` reply; ``ValueError`` if malformed."""
        if type(term) is tuple and len(term) == 2 and all(type(x) is list for x in term):
            running, stopped = term
            if all(type(n) is Atom for n in (*running, *stopped)):
                return cls(tuple(running), tuple(stopped))
        raise ValueError(f"not a cluster view: {term!r}")

    def sort_key(self) -> tuple:
        """Erlang term order of the view's term (for ``lists:usort``)."""
        return term_sort_key(self.to_term())


def cluster_view(running: Iterable[Atom], db_nodes: Iterable[Atom]) -> ClusterView:
    """``ekka_mnesia:cluster_view/0`` of a node whose db nodes and running ones are given."""
    running = list(running)
    run_set = set(running)
    stopped = (n for n in db_nodes if n not in run_set)
    return ClusterView(_sorted_nodes(running), _sorted_nodes(stopped))


def split_view(views: Iterable[ClusterView], leader: Atom) -> list[ClusterView]:
    """The split view the leader builds from every node's view (spec 8.2 step 4)."""
    unique = list({v.sort_key(): v for v in views}.values())
    unique.sort(key=ClusterView.sort_key)
    by_length: dict[int, tuple[list[ClusterView], list[ClusterView]]] = {}
    for view in unique:
        with_leader, without = by_length.setdefault(len(view.running), ([], []))
        (with_leader if leader in view.running else without).append(view)
    ordered: list[ClusterView] = []
    for length in sorted(by_length, reverse=True):
        with_leader, without = by_length[length]
        ordered += with_leader + without[::-1]
    return ordered


def split_view_term(views: Sequence[ClusterView]) -> list[tuple[list[Atom], list[Atom]]]:
    """The split view as sent in ``{heal_partition, SplitView}``."""
    return [v.to_term() for v in views]


def parse_split_view(term: Any) -> list[ClusterView]:
    """Parse the ``SplitView`` of a ``heal_partition`` cast; ``ValueError`` if malformed."""
    if type(term) is not list:
        raise ValueError(f"not a split view: {term!r}")
    return [ClusterView.from_term(v) for v in term]


def split_view_coordinator(views: Sequence[ClusterView], members: Iterable[Member]) -> Atom | None:
    """``coordinator(RunningNodesOfFirstView)``: where the leader sends the split view."""
    if not views:
        return None
    return coordinator_of(members, views[0].running)


@dataclass(frozen=True)
class HealAction:
    """What a coordinator does with a split view."""

    reboot: tuple[Atom, ...] = ()
    """Nodes to shut down (``ekka_cluster:heal(shutdown)``) and then reboot, in order."""
    healable: bool = True
    """``False`` where genuine ekka gives up (``unknown_splitview``)."""


def _minus_first(nodes: Sequence[Atom], node: Atom) -> tuple[Atom, ...]:
    # Erlang's ``Nodes -- [Node]`` removes the first occurrence only.
    out = list(nodes)
    if node in out:
        out.remove(node)
    return tuple(out)


def heal_partition(views: Sequence[ClusterView], self_node: Atom) -> HealAction:
    """The genuine coordinator's ``heal_partition/1`` run on ``self_node`` (spec 8.2 step 5)."""
    if not views or (len(views) == 1 and not views[0].stopped):
        return HealAction()
    first = views[0]
    if not first.stopped:
        return HealAction(_minus_first(first.running, self_node))
    if len(views) == 2:
        second = views[1]
        if second.running == first.stopped and second.stopped == first.running:
            return HealAction(first.stopped)
    return HealAction(healable=False)


def autoheal_delay(setting: Any) -> int | None:
    """``cluster_autoheal``: ``true`` -> 15000 ms, an integer -> that many ms, ``false`` -> off."""
    if setting is True:
        return AUTOHEAL_DEFAULT_DELAY_MS
    if setting is False:
        return None
    if type(setting) is int:
        return setting
    raise ValueError(f"cluster_autoheal must be true, false or an integer: {setting!r}")
