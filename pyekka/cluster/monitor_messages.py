"""The casts ``ekka_node_monitor`` exchanges, parsed safely (spec 6.2, 8.2, 17).

A genuine node monitor that receives an unexpected cast only logs it, but some shapes
(a ``heal_partition`` with an odd split view) crash its heal process, and a crash of
the node monitor stops ekka (spec 16.7). :func:`parse_monitor_cast` turns a cast into
one of the classes below or ``None``, so that a pyekka node monitor never acts on a
malformed one; ``to_term`` builds the exact messages to send.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pyekka.cluster.split_view import ClusterView, parse_split_view, split_view_term
from pyekka.term.types import Atom

__all__ = [
    "Confirm",
    "HealCluster",
    "HealPartition",
    "Heartbeat",
    "MonitorCast",
    "ReportPartition",
    "Suspect",
    "parse_monitor_cast",
]


@dataclass(frozen=True)
class Heartbeat:
    """``{heartbeat, FromNode}``: keeps traffic flowing; no effect on state."""

    node: Atom

    def to_term(self) -> tuple:
        """The cast's message."""
        return (Atom("heartbeat"), self.node)


@dataclass(frozen=True)
class Suspect:
    """``{suspect, FromNode, Target}``: please ping ``target`` and confirm to ``node``."""

    node: Atom
    target: Atom

    def to_term(self) -> tuple:
        """The cast's message."""
        return (Atom("suspect"), self.node, self.target)


@dataclass(frozen=True)
class Confirm:
    """``{confirm, Target, up | down}``: the answer to a suspect (logged only)."""

    target: Atom
    status: Literal["up", "down"]

    def to_term(self) -> tuple:
        """The cast's message."""
        return (Atom("confirm"), self.target, Atom(self.status))


@dataclass(frozen=True)
class ReportPartition:
    """``{report_partition, Node}``: ``node`` saw a partition (sent to the leader)."""

    node: Atom

    def to_term(self) -> tuple:
        """The cast's message."""
        return (Atom("report_partition"), self.node)


@dataclass(frozen=True)
class HealPartition:
    """``{heal_partition, SplitView}``: the leader's order to the coordinator."""

    split_view: tuple[ClusterView, ...]

    def to_term(self) -> tuple:
        """The cast's message."""
        return (Atom("heal_partition"), split_view_term(self.split_view))


@dataclass(frozen=True)
class HealCluster:
    """``{heal_cluster, Minority, SplitView}`` (ekka 0.8.1.14+): reboot ``minority``.

    ``split_view`` is kept as the raw term (it is informational only).
    """

    minority: tuple[Atom, ...]
    split_view: Any

    def to_term(self) -> tuple:
        """The cast's message."""
        return (Atom("heal_cluster"), list(self.minority), self.split_view)


MonitorCast = Heartbeat | Suspect | Confirm | ReportPartition | HealPartition | HealCluster


def _atom_list(term: Any) -> bool:
    return type(term) is list and all(type(x) is Atom for x in term)


def parse_monitor_cast(message: Any) -> MonitorCast | None:
    """The cast as a typed message, or ``None`` if it is not a well-formed one."""
    if type(message) is not tuple or not message or type(message[0]) is not Atom:
        return None
    tag, args = message[0].name, message[1:]
    if tag in ("heartbeat", "report_partition") and len(args) == 1 and type(args[0]) is Atom:
        return Heartbeat(args[0]) if tag == "heartbeat" else ReportPartition(args[0])
    if tag == "suspect" and len(args) == 2 and all(type(a) is Atom for a in args):
        return Suspect(args[0], args[1])
    if tag == "confirm" and len(args) == 2 and type(args[0]) is Atom:
        status = args[1].name if type(args[1]) is Atom else None
        if status in ("up", "down"):
            return Confirm(args[0], status)  # type: ignore[arg-type]
    if tag == "heal_partition" and len(args) == 1:
        try:
            return HealPartition(tuple(parse_split_view(args[0])))
        except ValueError:
            return None
    if tag == "heal_cluster" and len(args) == 2 and _atom_list(args[0]):
        return HealCluster(tuple(args[0]), args[1])
    return None
