"""The ``#member{}`` record of ekka 0.8 (spec 3.1) and ekka's ``erlang:timestamp()``.

On the wire a member is the 8-tuple
``{member, Node, Addr, Guid, Hash, Status, Mnesia, LTime}``; :meth:`Member.to_term`
and :meth:`Member.from_term` convert exactly that. Unset fields are ``None`` here and
the atom ``undefined`` on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from pyekka.cluster.constants import HASH_RANGE, UNDEFINED
from pyekka.term.phash2 import phash2
from pyekka.term.types import Atom

__all__ = [
    "MEMBER",
    "Member",
    "MemberStatus",
    "MnesiaStatus",
    "Timestamp",
    "member_hash",
    "now_diff_us",
    "timestamp_from_us",
    "timestamp_to_us",
]

MEMBER = Atom("member")

Timestamp = tuple[int, int, int]
"""``{MegaSecs, Secs, MicroSecs}`` as ``erlang:timestamp()`` returns it."""


class MemberStatus(Enum):
    """``#member.status`` (spec 3.1)."""

    JOINING = "joining"
    UP = "up"
    HEALING = "healing"
    LEAVING = "leaving"
    DOWN = "down"

    @property
    def atom(self) -> Atom:
        """The status as an Erlang atom."""
        return Atom(self.value)


class MnesiaStatus(Enum):
    """``#member.mnesia``: ``ekka_mnesia:cluster_status/1`` of the member (spec 5.2).

    ``NOT_DB`` is the atom ``false``: the node is not a (mnesia) db node, which is
    what genuine nodes record for a Python member.
    """

    RUNNING = "running"
    STOPPED = "stopped"
    NOT_DB = "false"

    def to_term(self) -> Any:
        """``running``, ``stopped`` or ``false`` (Python ``False``)."""
        return False if self is MnesiaStatus.NOT_DB else Atom(self.value)


def member_hash(node: Atom, guid: bytes | None) -> int:
    """``erlang:phash2({Node, Guid}, 4294967295)``: the member's ring position."""
    return phash2((node, UNDEFINED if guid is None else guid), HASH_RANGE)


def timestamp_from_us(us: int) -> Timestamp:
    """``erlang:timestamp()`` form of a time in microseconds since the epoch."""
    secs, micro = divmod(us, 1_000_000)
    mega, secs = divmod(secs, 1_000_000)
    return (mega, secs, micro)


def timestamp_to_us(ts: Timestamp) -> int:
    """Microseconds since the epoch of an ``erlang:timestamp()`` tuple."""
    mega, secs, micro = ts
    return (mega * 1_000_000 + secs) * 1_000_000 + micro


def now_diff_us(t2: Timestamp, t1: Timestamp) -> int:
    """``timer:now_diff(T2, T1)``: microseconds from ``t1`` to ``t2``."""
    return timestamp_to_us(t2) - timestamp_to_us(t1)


def _status(term: Any) -> MemberStatus:
    if type(term) is Atom:
        try:
            return MemberStatus(term.name)
        except ValueError:
            pass
    raise ValueError(f"not a member status: {term!r}")


def _mnesia(term: Any) -> MnesiaStatus | None:
    # Receivers overwrite this field (spec 3.1): an odd value is dropped, not refused.
    if term is False:
        return MnesiaStatus.NOT_DB
    if type(term) is Atom and term.name in ("running", "stopped"):
        return MnesiaStatus(term.name)
    return None


def _ltime(term: Any) -> Timestamp | None:
    if type(term) is tuple and len(term) == 3 and all(type(x) is int for x in term):
        return term
    return None


@dataclass(frozen=True)
class Member:
    """One entry of the membership table: a node and what is known of it."""

    node: Atom
    guid: bytes | None = None
    hash: int | None = None
    status: MemberStatus = MemberStatus.UP
    mnesia: MnesiaStatus | None = None
    ltime: Timestamp | None = None
    addr: Any = None
    """Declared by ekka as ``{Ip, Port}`` but never set by 0.8.1.9 (kept as a raw term)."""

    @classmethod
    def new(
        cls,
        node: Atom,
        guid: bytes,
        *,
        status: MemberStatus = MemberStatus.UP,
        mnesia: MnesiaStatus | None = None,
        ltime: Timestamp | None = None,
    ) -> Member:
        """A member with its hash computed from ``node`` and ``guid`` (spec 5.1)."""
        return cls(node, guid, member_hash(node, guid), status, mnesia, ltime)

    def with_hash(self) -> Member:
        """This member with ``hash = phash2({Node, Guid}, 4294967295)``."""
        return replace(self, hash=member_hash(self.node, self.guid))

    def to_term(self) -> tuple:
        """The 8-tuple genuine ekka 0.8 sends and stores."""

        def opt(value: Any) -> Any:
            return UNDEFINED if value is None else value

        return (
            MEMBER,
            self.node,
            opt(self.addr),
            opt(self.guid),
            opt(self.hash),
            self.status.atom,
            UNDEFINED if self.mnesia is None else self.mnesia.to_term(),
            opt(self.ltime),
        )

    @classmethod
    def from_term(cls, term: Any) -> Member:
        """Parse an 8-tuple member record; ``ValueError`` if it is not one.

        Like a genuine receiver, only the node, guid, hash and status must be well
        formed; an unusual ``mnesia`` or ``ltime`` (which receivers overwrite) reads
        as ``None``.
        """
        if type(term) is not tuple or len(term) != 8 or term[0] != MEMBER:
            raise ValueError(f"not a #member{{}} 8-tuple: {term!r}")
        _, node, addr, guid, hash_, status, mnesia, ltime = term
        if type(node) is not Atom:
            raise ValueError(f"member node is not an atom: {node!r}")
        if guid == UNDEFINED:
            guid = None
        elif type(guid) is not bytes:
            raise ValueError(f"member guid is not a binary: {guid!r}")
        if hash_ == UNDEFINED:
            hash_ = None
        elif type(hash_) is not int:
            raise ValueError(f"member hash is not an integer: {hash_!r}")
        return cls(
            node=node,
            guid=guid,
            hash=hash_,
            status=_status(status),
            mnesia=_mnesia(mnesia),
            ltime=_ltime(ltime),
            addr=None if addr == UNDEFINED else addr,
        )
