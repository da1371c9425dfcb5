"""Membership and partition events, as ekka delivers them to local subscribers (spec 3.4).

``ekka:monitor(membership | partition, PidOrFun)`` subscribers receive
``{membership, {node, Status, Node}}``, ``{membership, {mnesia, up | down, Node}}``
and ``{partition, {occurred | healed, Node}}``. These never cross nodes; the Python
classes below carry the same information and convert to and from those terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pyekka.cluster.member import MemberStatus
from pyekka.term.types import Atom

__all__ = [
    "Event",
    "EventType",
    "MnesiaEvent",
    "NodeEvent",
    "PartitionEvent",
    "event_from_term",
]

_NODE = Atom("node")
_MNESIA = Atom("mnesia")


class EventType(Enum):
    """What a subscriber asks for: ``ekka:monitor/1,2``'s first argument."""

    MEMBERSHIP = "membership"
    PARTITION = "partition"

    @property
    def atom(self) -> Atom:
        """The type as an Erlang atom."""
        return Atom(self.value)


@dataclass(frozen=True)
class NodeEvent:
    """``{membership, {node, Status, Node}}``: a member changed status (spec 5.2)."""

    status: MemberStatus
    node: Atom
    type = EventType.MEMBERSHIP

    def to_term(self) -> tuple:
        """The term ekka sends to subscribers."""
        return (self.type.atom, (_NODE, self.status.atom, self.node))


@dataclass(frozen=True)
class MnesiaEvent:
    """``{membership, {mnesia, up | down, Node}}``: the node's database came up or went down."""

    status: Literal["up", "down"]
    node: Atom
    type = EventType.MEMBERSHIP

    def to_term(self) -> tuple:
        """The term ekka sends to subscribers."""
        return (self.type.atom, (_MNESIA, Atom(self.status), self.node))


@dataclass(frozen=True)
class PartitionEvent:
    """``{partition, {occurred | healed, Node}}`` (spec 6.2)."""

    kind: Literal["occurred", "healed"]
    node: Atom
    type = EventType.PARTITION

    def to_term(self) -> tuple:
        """The term ekka sends to subscribers."""
        return (self.type.atom, (Atom(self.kind), self.node))


Event = NodeEvent | MnesiaEvent | PartitionEvent


def _atom_name(term: Any) -> str | None:
    return term.name if type(term) is Atom else None


def event_from_term(term: Any) -> Event:
    """Parse an event term; ``ValueError`` if it is not one of spec 3.4's shapes."""
    if type(term) is tuple and len(term) == 2 and type(term[1]) is tuple:
        kind, body = _atom_name(term[0]), term[1]
        if kind == "membership" and len(body) == 3 and type(body[2]) is Atom:
            what, status = _atom_name(body[0]), _atom_name(body[1])
            if what == "node" and status in {s.value for s in MemberStatus}:
                return NodeEvent(MemberStatus(status), body[2])
            if what == "mnesia" and status in ("up", "down"):
                return MnesiaEvent(status, body[2])  # type: ignore[arg-type]
        if kind == "partition" and len(body) == 2 and type(body[1]) is Atom:
            which = _atom_name(body[0])
            if which in ("occurred", "healed"):
                return PartitionEvent(which, body[1])  # type: ignore[arg-type]
    raise ValueError(f"not an ekka membership or partition event: {term!r}")
