"""Form ekka clusters of pyekka nodes in tests: :func:`form_cluster`.

Used by the ``pyekka_cluster`` fixture of the pytest plugin, and usable on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pyekka.cluster.app import ClusterMember, MemberOptions, start_member
from pyekka.cluster.member import MemberStatus
from pyekka.node.node import Node

__all__ = ["form_cluster", "up_nodes", "wait_members"]


def up_nodes(member: ClusterMember) -> list[str]:
    """The sorted names of the members ``member`` sees as ``up``."""
    return sorted(m.node.name for m in member.cluster.members(MemberStatus.UP))


async def wait_members(
    members: Sequence[ClusterMember], expected: Sequence[str], *, timeout: float = 15.0
) -> None:
    """Wait until every member sees exactly ``expected`` as its ``up`` members and
    knows each one's guid (an entry without a guid counts as the oldest in ekka, so
    leader and coordinator agree only after that).

    Waits on membership changes (no polling); on timeout raises ``AssertionError``
    saying what each member saw last.
    """
    want = sorted(expected)

    def settled(member: ClusterMember) -> bool:
        known = all(m.guid is not None for m in member.cluster.members())
        return known and up_nodes(member) == want

    async def one(member: ClusterMember) -> None:
        await member.cluster.wait_for(lambda: settled(member), timeout)

    try:
        await asyncio.gather(*(one(m) for m in members))
    except TimeoutError:
        seen = "; ".join(f"{m.node.name}: {up_nodes(m)}" for m in members)
        raise AssertionError(
            f"members did not agree on {want} within {timeout} s (last seen: {seen})"
        ) from None


async def form_cluster(
    nodes: Sequence[Node], options: MemberOptions | None = None, *, timeout: float = 15.0
) -> list[ClusterMember]:
    """Make the started ``nodes`` members of one ekka cluster, joined to the first one.

    Returns the members (stop them with ``ClusterMember.stop``) once every node sees
    every other as ``up``.
    """
    if not nodes:
        raise ValueError("form_cluster needs at least one node")
    members = [await start_member(node, options) for node in nodes]
    try:
        seed = nodes[0].name
        for member in members[1:]:
            await member.cluster.join(seed)
        await wait_members(members, [str(n.name.name) for n in nodes], timeout=timeout)
    except BaseException:
        for member in reversed(members):
            await member.stop()
        raise
    return members
