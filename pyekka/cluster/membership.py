"""The membership table of ``ekka_membership`` 0.8.1.9 as pure state (spec 5.1-5.3).

:class:`MembershipTable` applies the casts of spec 5.2 exactly as genuine ekka does,
and says what to do about them: the events to deliver to local subscribers and the
casts to send to other nodes (a ``pong`` after a ``ping`` or ``mnesia_up``). It does
no I/O: the membership process reads the clock, answers
``ekka_mnesia:cluster_status/1`` from pyekka's own view of the cluster (what ekka gets
from mnesia), and carries the decisions out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pyekka.cluster.constants import EKKA_MEMBERSHIP
from pyekka.cluster.election import sort_members
from pyekka.cluster.events import Event, MnesiaEvent, NodeEvent, PartitionEvent
from pyekka.cluster.member import Member, MemberStatus, MnesiaStatus, Timestamp
from pyekka.term.types import Atom

__all__ = ["Cast", "MembershipTable", "Transition", "announce_message"]

_PONG = Atom("pong")
_NODE_CASTS = {
    "joining",
    "healing",
    "leaving",
    "node_up",
    "node_down",
    "mnesia_up",
    "mnesia_down",
    "partition_occurred",
    "partition_healed",
}
_ANNOUNCE = {"join": "joining", "heal": "healing", "leave": "leaving"}


@dataclass(frozen=True)
class Cast:
    """A ``gen_server`` cast to send: ``Message`` to ``Name`` on ``node``."""

    node: Atom
    message: Any
    name: Atom = EKKA_MEMBERSHIP


@dataclass
class Transition:
    """What one cast caused: events for local subscribers and casts to send."""

    events: list[Event] = field(default_factory=list)
    casts: list[Cast] = field(default_factory=list)


def announce_message(action: str | tuple[str, Atom], self_node: Atom) -> tuple[Any, Atom]:
    """``ekka_membership:announce/1`` (spec 5.3): the message and the node it skips.

    ``action`` is ``"join"``, ``"heal"``, ``"leave"`` or ``("force_leave", Node)``.
    """
    if isinstance(action, tuple) and len(action) == 2 and action[0] == "force_leave":
        return (Atom("leaving"), action[1]), action[1]
    if isinstance(action, str) and action in _ANNOUNCE:
        return (Atom(_ANNOUNCE[action]), self_node), self_node
    raise ValueError(f"unknown announce action: {action!r}")


class MembershipTable:
    """The ``membership`` table of one node, with ekka's rules for every cast."""

    def __init__(self, local: Member, others: Iterable[Member] = ()) -> None:
        self.self_node = local.node
        self._table: dict[Atom, Member] = {m.node: m for m in others}
        self._table[local.node] = local

    # -- reading --

    @property
    def local_member(self) -> Member:
        """``ekka_membership:local_member/0``."""
        return self._table[self.self_node]

    def members(self, status: MemberStatus | None = None) -> list[Member]:
        """``members/0,1``: every entry (of ``status``), in node order."""
        table = sort_members(self._table.values())
        return [m for m in table if status is None or m.status is status]

    def lookup(self, node: Atom) -> Member | None:
        """The entry of ``node``, if any."""
        return self._table.get(node)

    def __contains__(self, node: object) -> bool:
        return node in self._table

    # -- writing --

    def insert(self, member: Member, now: Timestamp) -> None:
        """Store ``member``, stamping ``ltime`` with ``now`` (ekka's ``insert/1``)."""
        self._table[member.node] = replace(member, ltime=now)

    def delete(self, node: Atom) -> None:
        """Remove the entry of ``node`` (if any)."""
        self._table.pop(node, None)

    def announce(self, action: str | tuple[str, Atom]) -> list[Cast]:
        """The casts of ``announce(Action)``: to every entry, any status, but one."""
        message, skip = announce_message(action, self.self_node)
        return [Cast(m.node, message) for m in self.members() if m.node != skip]

    # -- the casts of spec 5.2 --

    def ping(self, member: Member, mnesia: MnesiaStatus, now: Timestamp) -> Transition:
        """``{ping, Member}``: answer with a pong, store the member."""
        pong = Cast(member.node, (_PONG, self.local_member.to_term()))
        self.insert(replace(member, mnesia=mnesia), now)
        return Transition(casts=[pong])

    def pong(self, member: Member, mnesia: MnesiaStatus, now: Timestamp) -> Transition:
        """``{pong, Member}``: store the member."""
        self.insert(replace(member, mnesia=mnesia), now)
        return Transition()

    def joining(self, node: Atom, now: Timestamp) -> Transition:
        """``{joining, Node}``: mark it joining, creating a bare entry if needed."""
        old = self._table.get(node) or Member(node)
        self.insert(replace(old, status=MemberStatus.JOINING), now)
        return Transition([NodeEvent(MemberStatus.JOINING, node)])

    def healing(self, node: Atom, now: Timestamp) -> Transition:
        """``{healing, Node}``: mark a known entry healing."""
        if (old := self._table.get(node)) is not None:
            self.insert(replace(old, status=MemberStatus.HEALING), now)
        return Transition([NodeEvent(MemberStatus.HEALING, node)])

    def leaving(self, node: Atom, now: Timestamp) -> Transition:
        """``{leaving, Node}``: delete a ``down`` entry, else mark it leaving."""
        old = self._table.get(node)
        if old is not None and old.status is MemberStatus.DOWN:
            self.delete(node)
        elif old is not None:
            self.insert(replace(old, status=MemberStatus.LEAVING), now)
        return Transition([NodeEvent(MemberStatus.LEAVING, node)])

    def node_up(
        self, node: Atom, in_cluster: bool, mnesia: MnesiaStatus, now: Timestamp
    ) -> Transition:
        """``{node_up, Node}``: only a db node (``in_cluster``) gets an ``up`` entry."""
        if in_cluster:
            old = self._table.get(node) or Member(node)
            self.insert(replace(old, status=MemberStatus.UP, mnesia=mnesia), now)
        return Transition([NodeEvent(MemberStatus.UP, node)])

    def node_down(self, node: Atom, now: Timestamp) -> Transition:
        """``{node_down, Node}``: delete a ``leaving`` entry, else mark it down."""
        old = self._table.get(node)
        if old is not None and old.status is MemberStatus.LEAVING:
            self.delete(node)
        elif old is not None:
            self.insert(replace(old, status=MemberStatus.DOWN), now)
        return Transition([NodeEvent(MemberStatus.DOWN, node)])

    def mnesia_up(self, node: Atom, now: Timestamp) -> Transition:
        """``{mnesia_up, Node}``: upsert ``up``/``running``, then pong the node."""
        old = self._table.get(node) or Member(node)
        self.insert(replace(old, status=MemberStatus.UP, mnesia=MnesiaStatus.RUNNING), now)
        pong = Cast(node, (_PONG, self.local_member.to_term()))
        return Transition([MnesiaEvent("up", node)], [pong])

    def mnesia_down(self, node: Atom, now: Timestamp) -> Transition:
        """``{mnesia_down, Node}``: delete a ``leaving`` entry, else mark it stopped."""
        old = self._table.get(node)
        if old is not None and old.status is MemberStatus.LEAVING:
            self.delete(node)
        elif old is not None:
            self.insert(replace(old, mnesia=MnesiaStatus.STOPPED), now)
        return Transition([MnesiaEvent("down", node)])

    def handle_cast(
        self,
        message: Any,
        now: Timestamp,
        cluster_status: Callable[[Atom], MnesiaStatus],
    ) -> Transition | None:
        """Apply any cast ``ekka_membership`` receives; ``None`` for an unexpected one.

        ``cluster_status(Node)`` is ``ekka_mnesia:cluster_status/1`` of the receiver
        (``NOT_DB`` for a node outside its cluster view). Unexpected or malformed
        casts (genuine ekka logs and ignores them) change nothing.
        """
        if type(message) is not tuple or len(message) != 2 or type(message[0]) is not Atom:
            return None
        tag, arg = message[0].name, message[1]
        if tag in ("ping", "pong"):
            try:
                member = Member.from_term(arg)
            except ValueError:
                return None
            mnesia = cluster_status(member.node)
            return (self.ping if tag == "ping" else self.pong)(member, mnesia, now)
        if tag not in _NODE_CASTS or type(arg) is not Atom:
            return None
        if tag == "node_up":
            status = cluster_status(arg)
            return self.node_up(arg, status is not MnesiaStatus.NOT_DB, status, now)
        if tag == "partition_occurred":
            return Transition([PartitionEvent("occurred", arg)])
        if tag == "partition_healed":
            return Transition([PartitionEvent("healed", arg)])
        return getattr(self, tag)(arg, now)
