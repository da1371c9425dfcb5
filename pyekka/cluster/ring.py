"""The consistent-hash ring of ekka_ring 0.8.1.9 (spec 5.5), used by ``quorum`` locks.

A ring is a list of members in ring order: ``ekka_membership:ring(Status)`` keysorts
the members (node order) by ``hash``, stably, in Erlang term order, so equal hashes
keep node order and an ``undefined`` hash sorts after every integer. A key's position
is ``phash2(Key, 4294967295)``; its nodes are found by walking clockwise from there.
The results agree with the genuine module on every ``ring`` record of the golden
vectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pyekka.cluster.constants import HASH_RANGE
from pyekka.cluster.election import sort_members
from pyekka.cluster.member import Member, MemberStatus
from pyekka.term.phash2 import phash2
from pyekka.term.types import Atom

__all__ = ["find_node", "find_nodes", "key_hash", "quorum_count", "ring"]


def key_hash(key: Any) -> int:
    """``erlang:phash2(Key, 4294967295)``: where a resource sits on the ring."""
    return phash2(key, HASH_RANGE)


def _hash_key(member: Member) -> tuple[int, int]:
    # Integers before the atom undefined (term order: number < atom).
    return (1, 0) if member.hash is None else (0, member.hash)


def ring(members: Iterable[Member], status: MemberStatus | None = None) -> list[Member]:
    """``ekka_membership:ring/0,1``: the members (of ``status``) in ring order."""
    chosen = [m for m in sort_members(members) if status is None or m.status is status]
    return sorted(chosen, key=_hash_key)


def quorum_count(size: int) -> int:
    """How many nodes a ``quorum`` lock takes on a ring of ``size``: ``min(N div 2 + 1, 3, N)``."""
    return min(size // 2 + 1, 3, size)


def _at_or_after(member: Member, h: int) -> bool:
    # ``Hash =< MHash``; an undefined MHash (an atom) is greater than any integer.
    return member.hash is None or member.hash >= h


def find_node(key: Any, ring: Sequence[Member]) -> Atom | None:
    """``ekka_ring:find_node/2``: the first member at or after the key, else the first.

    ``None`` for an empty ring (ekka crashes).
    """
    if not ring:
        return None
    h = key_hash(key)
    for member in ring:
        if _at_or_after(member, h):
            return member.node
    return ring[0].node


def find_nodes(key: Any, ring: Sequence[Member], count: int | None = None) -> list[Atom]:
    """``ekka_ring:find_nodes/2,3``: ``count`` nodes clockwise from the key, wrapping.

    Without ``count``, :func:`quorum_count` of the ring size. When ``count`` is at
    least the ring size the whole ring is returned, in ring order.
    """
    if count is None:
        count = quorum_count(len(ring))
    elif count < 0:
        raise ValueError(f"negative node count: {count}")
    if count >= len(ring):
        return [m.node for m in ring]
    h = key_hash(key)
    right = [m for m in ring if _at_or_after(m, h)]
    left = [m for m in ring if not _at_or_after(m, h)]
    return [m.node for m in (right + left)[:count]]
