"""ekka_locker 0.8.1.9's decisions as pure state: server tables, lease, client merging.

Server side (spec 10.1, 10.3): :class:`Lockers` holds the lock table of every
locker name this node serves; :class:`LockTable` decides ``acquire_lock`` and
``release_lock`` atomically per resource (the caller runs each decision without
awaiting in between) and the lease check that monitors, then kills, owners holding a
lock too long.

Client side (spec 10.2): :func:`lock_nodes` says which nodes a lock type involves,
:func:`merge_results` and :func:`acquire_outcome` aggregate a multicall (with
release on partial failure), :func:`leader_result` shapes a ``leader`` lock's reply.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pyekka.cluster.constants import LEASE_TIME_MS
from pyekka.cluster.election import leader, nodelist
from pyekka.cluster.lock import Lock, LockResult, LockType, parse_lock_result
from pyekka.cluster.member import Member, MemberStatus
from pyekka.cluster.ring import find_nodes, ring
from pyekka.term.order import map_key_sort_key
from pyekka.term.types import Atom, Pid

__all__ = [
    "AcquireOutcome",
    "LeaseActions",
    "LockTable",
    "Lockers",
    "MalformedReply",
    "MergeMode",
    "acquire_outcome",
    "leader_result",
    "lock_nodes",
    "merge_results",
    "resource_key",
]


def resource_key(resource: Any) -> Hashable:
    """A dict key equal for two resources exactly when they are ``=:=`` (an ETS set key)."""
    return map_key_sort_key(resource)


@dataclass
class LeaseActions:
    """What one lease check asks for (spec 10.3)."""

    monitor: list[Pid] = field(default_factory=list)
    """Owners to monitor now (first sighting of an old entry)."""
    kill: list[tuple[Pid, Any]] = field(default_factory=list)
    """``(Owner, Resource)``: rpc ``process_info`` on the owner's node, then kill the owner."""


class LockTable:
    """One locker's table (``set`` keyed by resource) and its owner tracking."""

    def __init__(self, name: Atom) -> None:
        self.name = name
        self._locks: dict[Hashable, Lock] = {}
        self._tracked: dict[Pid, dict[Hashable, Any]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def lookup(self, resource: Any) -> Lock | None:
        """The stored entry of ``resource``, if any."""
        return self._locks.get(resource_key(resource))

    def locks(self) -> list[Lock]:
        """Every stored entry."""
        return list(self._locks.values())

    def acquire(self, request: Lock) -> bool:
        """``acquire_lock/2``: store if free (``True``); ``True`` again for the same owner.

        A re-acquire by the owner leaves the entry (and its ``created``) unchanged, so
        the lease keeps running; another owner gets ``False``.
        """
        key = resource_key(request.resource)
        held = self._locks.get(key)
        if held is None:
            self._locks[key] = request.stored()
            return True
        return held.owner == request.owner

    def release(self, request: Lock) -> bool:
        """``release_lock/2``: delete if held by the request's owner; ``True`` if free."""
        key = resource_key(request.resource)
        held = self._locks.get(key)
        if held is None:
            return True
        if held.owner == request.owner:
            del self._locks[key]
            return True
        return False

    def force_release(self, resource: Any) -> Lock | None:
        """Delete the entry of ``resource`` whoever holds it; the entry removed."""
        return self._locks.pop(resource_key(resource), None)

    def check_lease(self, now_ms: int, lease_ms: int = LEASE_TIME_MS) -> LeaseActions:
        """The periodic lease check over entries with ``now_ms - created > lease_ms``.

        First sighting of an owner: monitor it and track the resource; an owner
        tracked without this resource: track it too; an owner already tracked with
        it: kill. Tracking ends only when the owner goes down (:meth:`owner_down`),
        as in ekka (spec 10.3, including its early-kill quirk).
        """
        actions = LeaseActions()
        for key, lock in list(self._locks.items()):
            if now_ms - lock.created <= lease_ms:
                continue
            resources = self._tracked.get(lock.owner)
            if resources is None:
                actions.monitor.append(lock.owner)
                self._tracked[lock.owner] = {key: lock.resource}
            elif key in resources:
                actions.kill.append((lock.owner, lock.resource))
            else:
                resources[key] = lock.resource
        return actions

    def owner_down(self, owner: Pid) -> list[Lock]:
        """A monitored owner is gone: delete its tracked entries it still holds."""
        deleted = []
        for key in self._tracked.pop(owner, {}):
            held = self._locks.get(key)
            if held is not None and held.owner == owner:
                deleted.append(self._locks.pop(key))
        return deleted

    def release_owner(self, owner: Pid) -> list[Lock]:
        """Delete every entry ``owner`` holds and stop tracking it.

        pyekka's extension (issue 4: a lock dies with its owner): its locker monitors
        each owner from its first granted acquire, not only after the lease, and
        calls this on ``DOWN``. Genuine ekka only deletes tracked entries
        (:meth:`owner_down`).
        """
        self._tracked.pop(owner, None)
        gone = [key for key, lock in self._locks.items() if lock.owner == owner]
        return [self._locks.pop(key) for key in gone]

    def owners(self) -> set[Pid]:
        """Every pid holding at least one entry."""
        return {lock.owner for lock in self._locks.values()}

    def tracked(self) -> dict[Pid, list[Any]]:
        """Owners under lease watch and their resources."""
        return {pid: list(res.values()) for pid, res in self._tracked.items()}


class Lockers:
    """Every locker table of a node, by name: the server side of both lock RPCs."""

    def __init__(self, names: Iterable[Atom] = ()) -> None:
        self.tables: dict[Atom, LockTable] = {n: LockTable(n) for n in names}

    def start(self, name: Atom) -> LockTable:
        """Create (or return) the table ``name``."""
        return self.tables.setdefault(name, LockTable(name))

    def stop(self, name: Atom) -> None:
        """Drop the table ``name`` and its locks."""
        self.tables.pop(name, None)

    def acquire_lock(self, name: Atom, request: Lock) -> bool:
        """``acquire_lock/2`` on table ``name``; ``True`` without storing if it does not exist."""
        table = self.tables.get(name)
        return True if table is None else table.acquire(request)

    def release_lock(self, name: Atom, request: Lock) -> bool:
        """``release_lock/2`` on table ``name``; ``True`` if it does not exist."""
        table = self.tables.get(name)
        return True if table is None else table.release(request)


def lock_nodes(
    lock_type: LockType, resource: Any, *, self_node: Atom, members: Iterable[Member]
) -> list[Atom]:
    """The nodes a lock of ``lock_type`` on ``resource`` involves, from a member table.

    ``local``: the caller; ``leader``: ``leader()`` (all members, down ones too);
    ``quorum``: ``find_nodes(Resource, ring(up))``; ``all``: ``nodelist(up)``. Release
    recomputes the set the same way at release time, as ekka does.
    """
    if lock_type is LockType.LOCAL:
        return [self_node]
    members = list(members)
    if lock_type is LockType.LEADER:
        node = leader(members)
        return [] if node is None else [node]
    if lock_type is LockType.QUORUM:
        return find_nodes(resource, ring(members, MemberStatus.UP))
    return nodelist(members, MemberStatus.UP)


class MergeMode(Enum):
    """How a multicall's replies are merged (spec 10.2, 16.5, 18.5)."""

    GENUINE = "genuine"
    """0.8.1.9: a reply that is not ``{Bool, List}`` is an error (the caller crashes);
    no reply at all gives ``{true, []}``."""
    SAFE = "safe"
    """pyekka's default, as newer ekka: any other reply (``{badrpc, _}``) counts as a
    failure and is listed as is; no reply at all gives ``{false, []}``."""


class MalformedReply(ValueError):
    """A reply :attr:`MergeMode.GENUINE` cannot merge (where 0.8.1.9 crashes)."""


def _flatten(items: Iterable[Any], out: list[Any]) -> list[Any]:
    for item in items:
        if type(item) is list:
            _flatten(item, out)
        else:
            out.append(item)
    return out


def merge_results(replies: Sequence[Any], mode: MergeMode = MergeMode.SAFE) -> LockResult:
    """ekka's ``merge_results``: ``{true, All}`` if every reply is ``{true, _}``, else
    ``{false, Failed}``; lists are concatenated in reverse reply order, flattened.
    """
    if not replies and mode is MergeMode.SAFE:
        return (False, [])
    succeeded: list[Any] = []
    failed: list[Any] = []
    for reply in replies:
        parsed = parse_lock_result(reply)
        if parsed is None and type(reply) is tuple and len(reply) == 2 and type(reply[0]) is bool:
            parsed = (reply[0], [reply[1]])  # a non-list body is kept as one element
        if parsed is None:
            if mode is MergeMode.GENUINE:
                raise MalformedReply(f"cannot merge lock reply {reply!r}")
            failed.insert(0, [reply])
        elif parsed[0]:
            succeeded.insert(0, parsed[1])
        else:
            failed.insert(0, parsed[1])
    if failed:
        return (False, _flatten(failed, []))
    return (True, _flatten(succeeded, []))


@dataclass(frozen=True)
class AcquireOutcome:
    """The result of a multi-node acquire, and whether to release on every node."""

    result: LockResult
    release: bool


def acquire_outcome(replies: Sequence[Any], mode: MergeMode = MergeMode.SAFE) -> AcquireOutcome:
    """Merge an acquire multicall (unreachable nodes simply absent from ``replies``).

    On ``{false, _}`` the caller must multicall ``release_lock`` on *all* the nodes
    it asked (spec 10.2), then return the ``false`` result.
    """
    result = merge_results(replies, mode)
    return AcquireOutcome(result, not result[0])


def leader_result(leader_node: Atom, reply: Any) -> LockResult | Any:
    """A ``leader`` lock's result: ``{badrpc, R}`` becomes ``{false, [{Leader, {badrpc, R}}]}``,
    any other reply is returned as is.
    """
    if type(reply) is tuple and len(reply) == 2 and reply[0] == Atom("badrpc"):
        return (False, [(leader_node, reply)])
    return reply
