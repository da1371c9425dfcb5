"""The pure decisions of the ``ekka_membership`` process (spec 5.2, 16.1): the calls it
answers, whom it pings on ``nodeup``, and which answer of a genuine node lists its
mnesia cluster. :class:`~pyekka.cluster.service_membership.MembershipService` acts
on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyekka.cluster.events import EventType
from pyekka.cluster.member import Member, MemberStatus
from pyekka.cluster.node_view import NodeKind, NodeView
from pyekka.term.types import Atom, Pid

__all__ = [
    "Action",
    "Announce",
    "MonitorRequest",
    "genuine_cluster",
    "parse_action",
    "parse_call",
    "should_ping",
]

Action = str | tuple[str, Atom]
"""``join``, ``leave``, ``heal`` or ``("force_leave", Node)``."""

_MONITOR = Atom("monitor")
_ANNOUNCE = Atom("announce")
_FORCE_LEAVE = Atom("force_leave")
_ACTIONS = {"join", "leave", "heal"}


@dataclass(frozen=True)
class MonitorRequest:
    """``{monitor, {Type, Pid, OnOff}}``: (un)subscribe ``pid`` to events of ``kind``."""

    kind: EventType
    pid: Pid
    on: bool


@dataclass(frozen=True)
class Announce:
    """``{announce, Action}``."""

    action: Action


def parse_action(term: Any) -> Action | None:
    """The action of an ``announce`` call (``None``: not one)."""
    if type(term) is Atom and term.name in _ACTIONS:
        return term.name
    if type(term) is tuple and len(term) == 2 and term[0] == _FORCE_LEAVE and type(term[1]) is Atom:
        return ("force_leave", term[1])
    return None


def parse_call(request: Any) -> MonitorRequest | Announce | None:
    """A call ``ekka_membership`` answers ``ok`` (``None``: answered ``ignore``)."""
    if type(request) is tuple and len(request) == 2 and request[0] == _MONITOR:
        spec = request[1]
        if type(spec) is tuple and len(spec) == 3 and type(spec[1]) is Pid:
            kind, pid, on = spec
            if type(kind) is Atom and kind.name in ("membership", "partition"):
                return MonitorRequest(EventType(kind.name), pid, on is True)
    if type(request) is tuple and len(request) == 2 and request[0] == _ANNOUNCE:
        action = parse_action(request[1])
        if action is not None:
            return Announce(action)
    return None


def should_ping(view: NodeView, node: Atom, entry: Member | None) -> bool:
    """On ``nodeup``: a genuine member, or a node with an entry (not leaving) that is
    not a pyekka member (those are announced by the pong of ``mnesia_up``)."""
    kind = view.kind(node)
    if kind is not None:
        return kind is NodeKind.GENUINE
    return entry is not None and entry.status is not MemberStatus.LEAVING


def genuine_cluster(view: NodeView, node: Atom, nodes: Any) -> list[Atom] | None:
    """``node``'s answer ``nodes`` to ``ekka_mnesia:cluster_nodes(all)`` if it lists a
    genuine cluster ``node`` is in (no pyekka member among them); else ``None``."""
    if type(nodes) is not list or node not in nodes:
        return None
    if not all(type(n) is Atom for n in nodes):
        return None
    if any(view.kind(n) is not None and n not in view.genuine_nodes() for n in nodes):
        return None  # a pyekka member among them: not a genuine cluster's answer
    return nodes
