"""Taking ekka locks from Python: ``acquire``, ``release`` and ``async with lock(...)``.

A :class:`Locker` takes locks of one locker name (``ekka_locker`` by default) exactly
as ``ekka_locker:acquire/4`` and ``release/3`` of ekka 0.8.1.9 do (spec 10.2), so
Python and Erlang callers contend for the same entries on the same nodes:

========  =====================================================================
type      nodes asked
========  =====================================================================
local     this node only
leader    ``leader()``: the oldest member, ``down`` ones included (one rpc)
quorum    ``find_nodes(Resource, ring(up))``: 1 to 3 nodes of the hash ring
all       ``nodelist(up)``: every member whose status is ``up``
========  =====================================================================

The request is ``{lock, Resource, Owner, 0, Now}``: ``Owner`` is the pid of the
holder, and only that pid can release the lock (the servers compare it). Multi-node
locks ``multicall`` ``acquire_lock/3`` (30 s), ignore unreachable nodes, merge the
replies and, when one node refused, release on every asked node. Unlike 0.8.1.9,
a malformed reply such as ``{badrpc, _}`` counts as a refusal instead of crashing the
caller, and a lock nobody answered is refused (:attr:`MergeMode.SAFE`;
``MergeMode.GENUINE`` restores ekka's behaviour). Release recomputes the node set
at release time, as ekka does.

The member table comes from a :class:`MemberSource`: the membership service, or a
:class:`StaticMembers` list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from pyekka.cluster.constants import EKKA_LOCKER, LOCK_MULTICALL_TIMEOUT_MS, UNDEFINED
from pyekka.cluster.lock import Lock, LockResult, LockType, Piggyback, parse_lock_result
from pyekka.cluster.locker_core import (
    MergeMode,
    acquire_outcome,
    lock_nodes,
    merge_results,
)
from pyekka.cluster.member import Member
from pyekka.cluster.service_locker import ACQUIRE_LOCK, RELEASE_LOCK, now_ms
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.node.node import Node
    from pyekka.node.process import Process

__all__ = [
    "LockHandle",
    "LockRefused",
    "Locker",
    "MemberSource",
    "StaticMembers",
]

log = logging.getLogger("pyekka.cluster.locker")

_BADRPC = Atom("badrpc")
_BAD_NODE_REASONS = (Atom("nodedown"), Atom("timeout"))
_STOP = Atom("$pyekka_lock_holder_stop")


class MemberSource(Protocol):
    """Where a :class:`Locker` reads the member table (``ekka_membership:members()``)."""

    def members(self) -> Iterable[Member]:
        """Every member entry, any status (node, guid, hash, status are used)."""
        ...


class StaticMembers:
    """A fixed member table (tests, or clusters whose membership is configured)."""

    def __init__(self, members: Iterable[Member] = ()) -> None:
        self._members = list(members)

    def members(self) -> list[Member]:
        """The members given."""
        return list(self._members)

    def set(self, members: Iterable[Member]) -> None:
        """Replace the table."""
        self._members = list(members)


class LockRefused(Exception):
    """A lock that :meth:`Locker.lock` could not take; ``result`` is ekka's ``{false, _}``."""

    def __init__(self, resource: Any, lock_type: LockType, result: Any) -> None:
        super().__init__(f"{lock_type.value} lock on {resource!r} refused: {result!r}")
        self.resource = resource
        self.lock_type = lock_type
        self.result = result


def _piggyback_term(piggyback: Piggyback | tuple | None) -> Any:
    if piggyback is None:
        return UNDEFINED
    if isinstance(piggyback, Piggyback):
        return piggyback.to_term()
    return piggyback


def _is_bad_node(reply: Any) -> bool:
    """Whether ``rpc:multicall`` would put the node in ``BadNodes`` (no reply at all)."""
    return (
        type(reply) is tuple and len(reply) == 2 and reply[0] == _BADRPC
        and reply[1] in _BAD_NODE_REASONS
    )  # fmt: skip


class Locker:
    """Locks of the locker ``name`` taken from ``node`` over the members of ``members``.

    ``multicall_timeout`` (seconds) bounds each node's answer in multi-node locks
    (ekka: 30); ``leader_timeout`` the ``leader`` rpc (ekka: none, ``None``).
    """

    def __init__(
        self,
        node: Node,
        members: MemberSource,
        name: Atom | str = EKKA_LOCKER,
        *,
        merge_mode: MergeMode = MergeMode.SAFE,
        multicall_timeout: float = LOCK_MULTICALL_TIMEOUT_MS / 1000,
        leader_timeout: float | None = None,
    ) -> None:
        self.node = node
        self.member_source = members
        self.name = Atom(name) if isinstance(name, str) else name
        self.merge_mode = merge_mode
        self.multicall_timeout = multicall_timeout
        self.leader_timeout = leader_timeout
        self._default_owner: Process | None = None

    # -- node choice ------------------------------------------------------------------

    def nodes_for(self, resource: Any, type: LockType = LockType.QUORUM) -> list[Atom]:
        """The nodes a ``type`` lock on ``resource`` involves now."""
        return lock_nodes(
            type, resource, self_node=self.node.name, members=self.member_source.members()
        )

    # -- owners -----------------------------------------------------------------------

    def owner_pid(self, owner: Process | Pid | None = None) -> Pid:
        """The pid a lock is taken for: ``owner``'s, or this locker's default owner.

        The default owner is one long-lived process per :class:`Locker` (what a single
        Erlang process calling ``ekka_locker:acquire/4`` would be); it lives until
        :meth:`close`.
        """
        if owner is None:
            proc = self._default_owner
            if proc is None or not proc.is_alive:
                proc = self._default_owner = self.node.spawn(_hold)
            return proc.pid
        if type(owner) is Pid:
            return owner
        return owner.pid  # type: ignore[union-attr]

    async def close(self) -> None:
        """End the default owner (its locks die with it on every server)."""
        proc, self._default_owner = self._default_owner, None
        if proc is not None and proc.is_alive:
            proc.deliver(_STOP)
            await proc.wait()

    # -- acquire and release ------------------------------------------------------------

    async def acquire(
        self,
        resource: Any,
        type: LockType = LockType.QUORUM,
        piggyback: Piggyback | tuple | None = None,
        owner: Process | Pid | None = None,
    ) -> LockResult:
        """``ekka_locker:acquire(Name, Resource, Type, Piggyback)``: ``(granted, nodes)``.

        ``nodes`` lists each answering node (``(node, result)`` with a piggyback); on a
        refusal, the nodes that refused (or their malformed replies) only.
        """
        request = Lock.request(resource, self.owner_pid(owner), now_ms())
        args = [self.name, request.to_term(), _piggyback_term(piggyback)]
        if type is LockType.LOCAL:
            return self._single(self.node.name, await self._rpc(self.node.name, ACQUIRE_LOCK, args))
        nodes = self.nodes_for(resource, type)
        if type is LockType.LEADER:
            return await self._leader_call(nodes, ACQUIRE_LOCK, args)
        replies = await self._multicall(nodes, ACQUIRE_LOCK, args)
        outcome = acquire_outcome(replies, self.merge_mode)
        if outcome.release:
            await self._multicall(nodes, RELEASE_LOCK, [self.name, request.to_term()])
        return outcome.result

    async def release(
        self,
        resource: Any,
        type: LockType = LockType.QUORUM,
        owner: Process | Pid | None = None,
    ) -> LockResult:
        """``ekka_locker:release(Name, Resource, Type)``: ``(released, nodes)``."""
        request = Lock.request(resource, self.owner_pid(owner), now_ms())
        args = [self.name, request.to_term()]
        if type is LockType.LOCAL:
            return self._single(self.node.name, await self._rpc(self.node.name, RELEASE_LOCK, args))
        nodes = self.nodes_for(resource, type)
        if type is LockType.LEADER:
            return await self._leader_call(nodes, RELEASE_LOCK, args)
        return merge_results(await self._multicall(nodes, RELEASE_LOCK, args), self.merge_mode)

    def lock(
        self,
        resource: Any,
        type: LockType = LockType.QUORUM,
        piggyback: Piggyback | tuple | None = None,
    ) -> LockHandle:
        """``async with locker.lock(resource, type) as handle:`` holds the lock in the block.

        A fresh holder process owns the lock; it is released when the block ends
        (whatever way), and :class:`LockRefused` is raised when it cannot be taken.
        """
        return LockHandle(self, resource, type, piggyback)

    # -- calls ---------------------------------------------------------------------------

    async def _rpc(
        self, node: Atom, function: Atom, args: list, timeout: float | None = None
    ) -> Any:
        return await self.node.rpc(node, EKKA_LOCKER, function, args, timeout=timeout)

    async def _multicall(self, nodes: list[Atom], function: Atom, args: list) -> list[Any]:
        """``rpc:multicall``'s result list: unreachable and late nodes contribute nothing."""
        replies = await asyncio.gather(
            *(self._rpc(n, function, args, self.multicall_timeout) for n in nodes)
        )
        return [r for r in replies if not _is_bad_node(r)]

    async def _leader_call(self, nodes: list[Atom], function: Atom, args: list) -> LockResult:
        if not nodes:
            return (False, [])  # no member at all (ekka would crash)
        leader = nodes[0]
        return self._single(leader, await self._rpc(leader, function, args, self.leader_timeout))

    def _single(self, node: Atom, reply: Any) -> Any:
        """One node's reply: ``{badrpc, R}`` becomes ``{false, [{Node, {badrpc, R}}]}``."""
        parsed = parse_lock_result(reply)
        if parsed is not None:
            return parsed
        if self.merge_mode is MergeMode.GENUINE and not (
            type(reply) is tuple and len(reply) == 2 and reply[0] == _BADRPC
        ):
            return reply
        return (False, [(node, reply)])


async def _hold(proc: Process) -> None:
    """A lock holder: lives until told to stop (or killed by a lease check)."""
    await proc.receive(lambda m: m == _STOP)


class LockHandle:
    """A lock held for an ``async with`` block (see :meth:`Locker.lock`)."""

    def __init__(
        self,
        locker: Locker,
        resource: Any,
        lock_type: LockType,
        piggyback: Piggyback | tuple | None,
    ) -> None:
        self.locker = locker
        self.resource = resource
        self.lock_type = lock_type
        self.piggyback = piggyback
        self.result: LockResult | None = None
        """The acquire result."""
        self.released: LockResult | None = None
        """The release result, once the block has ended."""
        self._holder: Process | None = None

    @property
    def owner(self) -> Pid:
        """The pid that owns the lock."""
        if self._holder is None:
            raise RuntimeError("the lock is not held")
        return self._holder.pid

    @property
    def lost(self) -> bool:
        """Whether the holder died while the block ran (e.g. killed by a lease check):
        the servers have then dropped the lock."""
        return self._holder is not None and not self._holder.is_alive

    @property
    def nodes(self) -> list[Any]:
        """The nodes (or ``(node, piggyback result)`` pairs) that granted the lock."""
        return [] if self.result is None else list(self.result[1])

    async def __aenter__(self) -> LockHandle:
        holder = self.locker.node.spawn(_hold)
        try:
            result = await self.locker.acquire(
                self.resource, self.lock_type, self.piggyback, owner=holder.pid
            )
        except BaseException:
            await _stop(holder)
            raise
        self.result = result
        if type(result) is not tuple or result[0] is not True:
            await _stop(holder)
            raise LockRefused(self.resource, self.lock_type, result)
        self._holder = holder
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        holder = self._holder
        assert holder is not None
        try:
            self.released = await self.locker.release(
                self.resource, self.lock_type, owner=holder.pid
            )
            if self.released[0] is not True:
                log.warning("release of %r reported %r", self.resource, self.released)
        finally:
            await _stop(holder)
            self._holder = None


async def _stop(holder: Process) -> None:
    if holder.is_alive:
        holder.deliver(_STOP)
    await holder.wait()
