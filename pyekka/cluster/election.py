"""Oldest, leader and coordinator exactly as ekka 0.8.1.9's membership picks them (spec 5.4).

The membership table is an ETS ``ordered_set`` keyed by node, so every listing is in
node-name order; these functions put their input in that order first (except
:func:`oldest` and :func:`coordinator_of`, which keep the order given, as ekka does).

Two details of genuine ekka matter and are reproduced (spec 5.4, 16.2):

* ``oldest`` sorts by guid in Erlang term order, where the atom ``undefined`` (a
  member known only from an event, before any ping) sorts before every binary, so a
  guid-less entry is the *oldest*; ``leader()`` also counts ``down`` members.
* ekka sorts with ``lists:sort(fun(A, B) -> A#member.guid < B#member.guid end, L)``;
  with that strict ordering fun, members with equal guids (in practice several
  guid-less ones) come out in *reverse* input order, so the oldest of them is the
  *last* in node-name order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pyekka.cluster.member import Member, MemberStatus
from pyekka.term.order import term_sort_key
from pyekka.term.types import Atom

__all__ = [
    "coordinator",
    "coordinator_of",
    "guid_sort_key",
    "leader",
    "lookup",
    "nodelist",
    "oldest",
    "sort_members",
]


def sort_members(members: Iterable[Member]) -> list[Member]:
    """Members in the order of ekka's table: by node, in Erlang term order."""
    return sorted(members, key=lambda m: term_sort_key(m.node))


def guid_sort_key(member: Member, *, guidless_first: bool = True) -> tuple:
    """Sort key of a member's guid in Erlang term order.

    ``guidless_first=False`` sorts members without a guid after all others (the
    order mria adopted, spec 18.2; pyekka's own policies use it).
    """
    if member.guid is None:
        return (0,) if guidless_first else (2,)
    return (1, term_sort_key(member.guid))


def oldest(members: Iterable[Member], *, guidless_first: bool = True) -> Member | None:
    """``ekka_membership:oldest/1``: the member with the smallest guid, ``None`` if none.

    Among equal guids the last one in the given order wins, as with ekka's sort.
    """
    best: Member | None = None
    best_key: tuple | None = None
    for member in members:
        key = guid_sort_key(member, guidless_first=guidless_first)
        if best_key is None or key <= best_key:
            best, best_key = member, key
    return best


def nodelist(members: Iterable[Member], status: MemberStatus | None = None) -> list[Atom]:
    """``ekka_membership:nodelist/0,1``: nodes (in node order), optionally of one status."""
    return [m.node for m in sort_members(members) if status is None or m.status is status]


def lookup(members: Iterable[Member], node: Atom) -> Member | None:
    """The entry of ``node``, or ``None``."""
    for member in members:
        if member.node == node:
            return member
    return None


def leader(members: Iterable[Member]) -> Atom | None:
    """``ekka_membership:leader/0``: the oldest of *all* members, ``down`` ones included.

    This is the node that ``leader`` locks and autoheal reports go to; ``None`` for
    an empty table (ekka would crash).
    """
    member = oldest(sort_members(members))
    return None if member is None else member.node


def coordinator(members: Iterable[Member]) -> Atom | None:
    """``ekka_membership:coordinator/0``: the oldest member whose status is ``up``."""
    member = oldest(m for m in sort_members(members) if m.status is MemberStatus.UP)
    return None if member is None else member.node


def coordinator_of(members: Iterable[Member], nodes: Sequence[Atom]) -> Atom | None:
    """``ekka_membership:coordinator/1``: the oldest entry among ``nodes`` (in that order).

    Nodes without an entry are skipped; ``None`` when none has one (ekka crashes).
    """
    table = {m.node: m for m in members}
    member = oldest(table[n] for n in nodes if n in table)
    return None if member is None else member.node
