"""The autoheal leader's decision, with pyekka's extension beyond ekka 0.8.1.9 (spec 8, 16.6).

:func:`plan_heal` takes every db node's ``cluster_view()`` answer (``None`` for a node
that did not answer) and returns what to heal:

1. When every node answered and genuine ekka can heal the split view, the plan is
   exactly genuine's: the split view of :func:`~pyekka.cluster.split_view.split_view`,
   sent as ``{heal_partition, SplitView}`` to the oldest member of its first view,
   which reboots what :func:`~pyekka.cluster.split_view.heal_partition` says.
2. Otherwise (three or more sides, overlapping or one-sided views, nodes that did
   not answer, a first view with no known member) genuine ekka gives up; pyekka
   keeps the **largest fully connected group** and reboots every other node that
   answered. Two answering nodes are connected when each lists the other as
   running; a group is fully connected when all its pairs are. Ties between groups
   of the largest size are broken, in this order, by: the group holding the leader
   (as ekka prefers the leader's view); the group whose oldest member (by guid,
   guid-less members last) is older; the smallest sorted node list in Erlang term
   order. The result depends only on the views, never on their order. Nodes that
   did not answer are neither kept nor rebooted (a dead node, however old, does not
   block healing); a later round heals them when they return.
   The plan is sent as ``{heal_cluster, Minority, SplitView}``, the message of
   ekka 0.8.1.14+ (whose coordinators reboot ``Minority -- [node()]``; a 0.8.1.9
   node logs it as an unexpected cast and is not harmed), to the leader if it is
   kept, else to the oldest kept member, among those ``can_coordinate`` allows.

The views must say which nodes a node runs *together* with (as mnesia's
``running_db_nodes`` does after a partition), not merely which ones it is connected to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyekka.cluster.election import guid_sort_key, oldest
from pyekka.cluster.member import Member
from pyekka.cluster.split_view import (
    ClusterView,
    heal_partition,
    split_view,
    split_view_coordinator,
    split_view_term,
)
from pyekka.term.order import term_sort_key
from pyekka.term.types import Atom

__all__ = [
    "HEAL_CLUSTER",
    "HEAL_PARTITION",
    "HealPlan",
    "largest_connected_group",
    "maximal_groups",
    "mutual_links",
    "plan_heal",
]

HEAL_PARTITION = Atom("heal_partition")
HEAL_CLUSTER = Atom("heal_cluster")


@dataclass(frozen=True)
class HealPlan:
    """What the autoheal leader decided."""

    keep: tuple[Atom, ...]
    """Answering nodes that stay up (term order)."""
    reboot: tuple[Atom, ...]
    """Nodes the coordinator shuts down and reboots (in the order it does so)."""
    coordinator: Atom | None
    """Where to cast :attr:`message` (to ``ekka_node_monitor``); ``None``: nobody can.
    In the genuine domain's own plans, the pyekka leader that runs the heal itself
    (:mod:`pyekka.cluster.autoheal_genuine`)."""
    message: Any
    """``{heal_partition, SplitView}`` (genuine) or ``{heal_cluster, Minority, SplitView}``."""
    genuine: bool
    """Whether ekka 0.8.1.9 would have decided exactly this."""
    unreachable: tuple[Atom, ...] = ()
    """Db nodes that did not answer (term order)."""


def _sorted(nodes: Iterable[Atom]) -> tuple[Atom, ...]:
    return tuple(sorted(nodes, key=term_sort_key))


def mutual_links(views: Mapping[Atom, ClusterView]) -> dict[Atom, set[Atom]]:
    """For each node, the other nodes it runs with *and* that run with it."""
    running = {node: set(view.running) for node, view in views.items()}
    return {
        a: {b for b in running if b != a and b in running[a] and a in running[b]} for a in running
    }


def maximal_groups(links: Mapping[Atom, set[Atom]]) -> list[frozenset[Atom]]:
    """Every maximal fully connected group (Bron-Kerbosch with pivoting)."""
    groups: list[frozenset[Atom]] = []

    def expand(group: set[Atom], candidates: set[Atom], excluded: set[Atom]) -> None:
        if not candidates and not excluded:
            groups.append(frozenset(group))
            return
        pivot = max(candidates | excluded, key=lambda n: len(links[n] & candidates))
        for node in sorted(candidates - links[pivot], key=term_sort_key):
            expand(group | {node}, candidates & links[node], excluded & links[node])
            candidates = candidates - {node}
            excluded = excluded | {node}

    expand(set(), set(links), set())
    return groups


def _group_rank(group: frozenset[Atom], leader: Atom, members: Mapping[Atom, Member]) -> tuple:
    known = [members[n] for n in _sorted(group) if n in members]
    eldest = oldest(known, guidless_first=False)
    age = (3,) if eldest is None else guid_sort_key(eldest, guidless_first=False)
    return (-len(group), leader not in group, age, [term_sort_key(n) for n in _sorted(group)])


def largest_connected_group(
    views: Mapping[Atom, ClusterView], leader: Atom, members: Iterable[Member] = ()
) -> tuple[Atom, ...]:
    """The fully connected group pyekka keeps (see the module notes for ties)."""
    if not views:
        return ()
    table = {m.node: m for m in members}
    groups = maximal_groups(mutual_links(views))
    return _sorted(min(groups, key=lambda g: _group_rank(g, leader, table)))


def _pick_coordinator(
    keep: tuple[Atom, ...],
    leader: Atom,
    members: Mapping[Atom, Member],
    can_coordinate: Callable[[Atom], bool],
) -> Atom | None:
    able = [n for n in keep if can_coordinate(n)]
    if leader in able:
        return leader
    eldest = oldest((members[n] for n in able if n in members), guidless_first=False)
    if eldest is not None:
        return eldest.node
    return able[0] if able else None


def plan_heal(
    views: Mapping[Atom, ClusterView | None],
    *,
    leader: Atom,
    members: Iterable[Member] = (),
    can_coordinate: Callable[[Atom], bool] | None = None,
) -> HealPlan | None:
    """Decide how to heal; ``None`` when there is nothing to heal.

    ``views`` maps every db node to its ``cluster_view()`` answer (``None``: no
    answer); ``leader`` is the node deciding; ``members`` its membership table;
    ``can_coordinate`` filters coordinators of pyekka's own plans (default: any).
    """
    table = {m.node: m for m in members}
    answered = {n: v for n, v in views.items() if v is not None}
    unreachable = _sorted(n for n, v in views.items() if v is None)
    if not answered:
        return None
    if not unreachable:
        sv = split_view(answered.values(), leader)
        coordinator = split_view_coordinator(sv, table.values())
        if coordinator is not None:
            action = heal_partition(sv, coordinator)
            if action.healable:
                if not action.reboot:
                    return None
                keep = _sorted(n for n in answered if n not in action.reboot)
                message = (HEAL_PARTITION, split_view_term(sv))
                return HealPlan(keep, action.reboot, coordinator, message, True)
    keep = largest_connected_group(answered, leader, table.values())
    reboot = _sorted(n for n in answered if n not in keep)
    if not reboot:
        return None
    coordinator = _pick_coordinator(keep, leader, table, can_coordinate or (lambda _: True))
    node_views = [(n, *answered[n].to_term()) for n in _sorted(answered)]
    message = (HEAL_CLUSTER, list(reboot), node_views)
    return HealPlan(keep, reboot, coordinator, message, False, unreachable)
