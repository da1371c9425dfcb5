"""The pure part of an autocluster round: the round's record and the choice of the
node to join from the ``ekka_membership:local_member()`` replies (spec 11.2).

The asyncio loop that runs the rounds is :mod:`pyekka.discovery.autocluster`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pyekka.cluster.election import oldest
from pyekka.cluster.member import Member
from pyekka.discovery.autocluster_status import RoundResult
from pyekka.term import format_term
from pyekka.term.types import Atom

__all__ = ["RoundRecord", "choose_oldest"]

log = logging.getLogger("pyekka.discovery.autocluster")

A = Atom
_BADRPC = A("badrpc")
_BAD_NODE_REASONS = (A("nodedown"), A("timeout"))
_MEMBER = A("member")


@dataclass
class RoundRecord:
    """A round being recorded."""

    started: float = field(default_factory=time.time)
    lock: str | None = None
    discovered: list[str] | None = None
    alive: list[str] = field(default_factory=list)
    target: str | None = None
    joined: bool = False
    registered: str | None = None
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        """Log ``text`` as an error and record it."""
        log.error("autocluster: %s", text)
        self.errors.append(text)

    def result(self, in_cluster: bool) -> RoundResult:
        """The finished round's :class:`RoundResult` (finished now)."""
        return RoundResult(
            started=self.started,
            finished=time.time(),
            lock=self.lock,
            discovered=None if self.discovered is None else tuple(self.discovered),
            alive=tuple(self.alive),
            target=self.target,
            joined=self.joined,
            registered=self.registered,
            in_cluster=in_cluster,
            errors=tuple(self.errors),
        )


def _is_bad_node(reply: Any) -> bool:
    """``{badrpc, nodedown | timeout}``: the node is one of multicall's ``BadNodes``."""
    return (
        type(reply) is tuple
        and len(reply) == 2
        and reply[0] == _BADRPC
        and (reply[1] in _BAD_NODE_REASONS)
    )


def _member(reply: Any) -> Member | None:
    if type(reply) is not tuple or len(reply) != 8 or reply[0] != _MEMBER:
        return None
    try:
        return Member.from_term(reply)
    except ValueError:
        return None


def choose_oldest(record: RoundRecord, nodes: list[Atom], replies: list[Any]) -> Atom | None:
    """The node of the oldest member among the alive ``nodes``' ``local_member()``
    ``replies`` (in order); ``None``, with an error recorded, if a node is bad (did
    not answer at all) or no reply is a member."""
    bad = [n.name for n, r in zip(nodes, replies, strict=True) if _is_bad_node(r)]
    if bad:
        record.error(f"bad nodes found: {', '.join(bad)}")
        return None
    members = [m for m in map(_member, replies) if m is not None]
    if not members:
        shown = ", ".join(format_term(r) for r in replies)
        record.error(f"bad members found on nodes {', '.join(record.alive)}: {shown}")
        return None
    found = oldest(members)
    return None if found is None else found.node
