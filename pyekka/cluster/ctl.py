"""``pyekka ctl``: cluster commands for a running member, over the distribution protocol.

**Server side.** :class:`CtlServer` registers, on a member's node, functions that any
node (``pyekka ctl``'s temporary hidden node, an Erlang shell, ``erl_call``) calls
with ``rpc:call(Node, pyekka_ctl, F, Args)``; they return plain terms:

=============================  ========================================================
function                       result
=============================  ========================================================
``status()``                   ``#{node, running, cluster_name, running_nodes,
                               stopped_nodes, genuine_nodes, partitions, leader,
                               coordinator, members}`` (``undefined`` for no leader)
``members()``                  ``ekka:members()``: ``#member{}`` 8-tuples, node order
``join(Node)``                 ``ok | ignore | {error, Reason}`` as ``ekka:join/1``
``leave()``                    ``ok | {error, Reason}`` as ``ekka:leave/0``
``force_leave(Node)``          ``ok | ignore | {error, Reason}`` as ``ekka:force_leave/1``
``lock(Resource, Type)``       ``{true | false, Nodes}`` as ``ekka_locker:acquire/3``
``unlock(Resource, Type)``     ``{true | false, Nodes}``, ``{error, not_locked}`` or
                               ``{error, {lost, ExitReason}}``
=============================  ========================================================

``Type`` is ``local``, ``leader``, ``quorum`` or ``all``. A lock taken with ``lock/2``
is owned by a holder process on the member, one per ``(Resource, Type)``, which
lives until ``unlock/2`` with the same resource and type releases the lock on the
same member (or the member stops): the lock outlives the caller. Locking again a
resource the holder owns is ekka's re-acquire by the same owner (granted; the lease
is not renewed). The holder is *pinned*: ekka's lease check kills an owner that has
held a lock for longer than the lease (15 s) at two checks in a row, but a pyekka lock
server first asks the owner's node (``pyekka_locker:is_pinned/1``) and spares a
pinned holder, so a ctl lock lasts until ``unlock``. A genuine ekka server does not
ask: a ctl lock that involves genuine nodes (``quorum``/``all`` in a mixed cluster)
is still killed by their lease, and ``unlock`` then answers ``{error, {lost, killed}}``.

**Client side.** :func:`ctl_call` runs one of these functions from a temporary hidden
node (:mod:`pyekka.node.cli_support`); :func:`member_json` and :func:`status_json`
turn the answers into JSON-ready dicts, :class:`LockOutcome` reads a lock answer.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyekka.cluster.cluster import ClusterError, ClusterStatus
from pyekka.cluster.cluster_view import cluster_name_term, cluster_name_value
from pyekka.cluster.constants import UNDEFINED
from pyekka.cluster.lock import LockType, parse_lock_result
from pyekka.cluster.member import Member, MnesiaStatus, timestamp_to_us
from pyekka.node.cli_support import NodeSpec, call
from pyekka.node.exits import BadArg
from pyekka.term import encode_term, format_term
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.cluster.cluster import Cluster
    from pyekka.cluster.locker import Locker
    from pyekka.cluster.service_locker import LockerService
    from pyekka.node.process import Process

__all__ = [
    "CTL_MODULE",
    "CtlError",
    "CtlServer",
    "LockOutcome",
    "ctl_call",
    "member_json",
    "status_json",
    "status_term",
]

log = logging.getLogger("pyekka.cluster.ctl")

CTL_MODULE = Atom("pyekka_ctl")
"""The module name the ctl functions are registered under."""

A = Atom
_OK = A("ok")
_IGNORE = A("ignore")
_ERROR = A("error")
_BADRPC = A("badrpc")
_NOT_LOCKED = A("not_locked")
_LOST = A("lost")
_STOP = A("$pyekka_ctl_unlock")


def _node_arg(term: Any) -> Atom:
    if type(term) is not Atom:
        raise BadArg(f"not a node name: {term!r}")
    return term


def _type_arg(term: Any) -> LockType:
    try:
        return LockType.parse(term)
    except ValueError as exc:
        raise BadArg(str(exc)) from None


def _or_undefined(node: Atom | None) -> Atom:
    return UNDEFINED if node is None else node


def status_term(status: ClusterStatus) -> dict[Atom, Any]:
    """The map ``pyekka_ctl:status()`` returns for ``status``."""
    return {
        A("node"): status.node,
        A("running"): status.running,
        A("cluster_name"): cluster_name_term(status.cluster_name),
        A("running_nodes"): list(status.running_nodes),
        A("stopped_nodes"): list(status.stopped_nodes),
        A("genuine_nodes"): list(status.genuine_nodes),
        A("partitions"): list(status.partitions),
        A("leader"): _or_undefined(status.leader),
        A("coordinator"): _or_undefined(status.coordinator),
        A("members"): [m.to_term() for m in status.members],
    }


async def _hold(proc: Process) -> None:
    """A ctl lock's owner: lives until ``unlock`` (or the member stops)."""
    await proc.receive(lambda m: m == _STOP)


class CtlServer:
    """The ``pyekka_ctl`` functions of one member (see the module doc)."""

    def __init__(self, cluster: Cluster, locker: Locker, pins: LockerService | None = None) -> None:
        self.cluster = cluster
        self.locker = locker
        self.pins = pins
        self._holders: dict[tuple[bytes, LockType], tuple[Any, Process]] = {}

    def _functions(self) -> list[tuple[str, Callable[..., Any]]]:
        return [
            ("status", self.status),
            ("members", self.members),
            ("join", self.join),
            ("leave", self.leave),
            ("force_leave", self.force_leave),
            ("lock", self.lock),
            ("unlock", self.unlock),
        ]

    def register(self) -> None:
        """Register the functions on the cluster's node."""
        for name, fn in self._functions():
            self.cluster.node.register_function(CTL_MODULE, name, fn)

    async def close(self, release_timeout: float = 5.0) -> None:
        """Unregister the functions and end the holders of the locks taken through them,
        after releasing those locks (for at most ``release_timeout`` seconds: servers
        that did not hear the release drop the locks when the holders' ends reach them,
        or at their lease)."""
        for name, _fn in self._functions():
            self.cluster.node.functions.unregister(CTL_MODULE, name)
        holders, self._holders = self._holders, {}
        try:
            async with asyncio.timeout(release_timeout):
                for (_key, lock_type), (resource, holder) in holders.items():
                    await self.locker.release(resource, lock_type, owner=holder.pid)
        except TimeoutError:
            log.warning("pyekka_ctl: lock release timed out at shutdown")
        finally:
            for _resource, holder in holders.values():
                await _stop(holder)

    # -- reading ----------------------------------------------------------------------

    def status(self) -> dict[Atom, Any]:
        """``pyekka_ctl:status()``."""
        return status_term(self.cluster.status())

    def members(self) -> list[tuple]:
        """``pyekka_ctl:members()``."""
        return [m.to_term() for m in self.cluster.members()]

    # -- membership ---------------------------------------------------------------------

    async def join(self, node: Any) -> Any:
        """``pyekka_ctl:join(Node)``."""
        target = _node_arg(node)
        try:
            return _OK if await self.cluster.join(target) else _IGNORE
        except ClusterError as exc:
            return (_ERROR, exc.reason)

    async def leave(self) -> Any:
        """``pyekka_ctl:leave()``."""
        try:
            await self.cluster.leave()
        except ClusterError as exc:
            return (_ERROR, exc.reason)
        return _OK

    async def force_leave(self, node: Any) -> Any:
        """``pyekka_ctl:force_leave(Node)``."""
        target = _node_arg(node)
        try:
            return _OK if await self.cluster.force_leave(target) else _IGNORE
        except ClusterError as exc:
            return (_ERROR, exc.reason)

    # -- locks ------------------------------------------------------------------------

    async def lock(self, resource: Any, lock_type: Any) -> Any:
        """``pyekka_ctl:lock(Resource, Type)``: taken for a holder that stays."""
        kind = _type_arg(lock_type)
        key = (encode_term(resource), kind)
        held = self._holders.get(key)
        holder = held[1] if held is not None and held[1].is_alive else None
        fresh = holder is None
        if holder is None:
            holder = self.cluster.node.spawn(_hold)
        try:
            result = await self.locker.acquire(resource, kind, owner=holder.pid)
        except BaseException:
            if fresh:
                await _stop(holder)
            raise
        if result[0] is True:
            self._holders[key] = (resource, holder)
            if self.pins is not None:
                self.pins.pin(holder.pid)
        elif fresh:
            await _stop(holder)
        return result

    async def unlock(self, resource: Any, lock_type: Any) -> Any:
        """``pyekka_ctl:unlock(Resource, Type)``: ``{error, not_locked}`` unless a
        ``lock/2`` on this member holds it."""
        kind = _type_arg(lock_type)
        held = self._holders.pop((encode_term(resource), kind), None)
        if held is None:
            return (_ERROR, _NOT_LOCKED)
        holder = held[1]
        if not holder.is_alive:
            return (_ERROR, (_LOST, holder.exit_reason))
        return await self._release(resource, kind, holder)

    async def _release(self, resource: Any, kind: LockType, holder: Process) -> Any:
        try:
            return await self.locker.release(resource, kind, owner=holder.pid)
        finally:
            if self.pins is not None:
                self.pins.unpin(holder.pid)
            await _stop(holder)


async def _stop(holder: Process) -> None:
    if holder.is_alive:
        holder.deliver(_STOP)
    await holder.wait()


# -- the client side ---------------------------------------------------------------------


class CtlError(Exception):
    """A ctl call answered ``{badrpc, Reason}``; ``reason`` is that term."""

    def __init__(self, target: str, function: str, reason: Any) -> None:
        self.target = target
        self.function = function
        self.reason = reason
        super().__init__(self._describe())

    @property
    def not_served(self) -> bool:
        """Whether the node has no ``pyekka_ctl`` (not a ``pyekka start`` member)."""
        reason = self.reason
        return (
            type(reason) is tuple
            and len(reason) == 2
            and reason[0] == A("EXIT")
            and type(reason[1]) is tuple
            and len(reason[1]) >= 1
            and reason[1][0] == A("undef")
        )

    def _describe(self) -> str:
        if self.not_served:
            return (
                f"{self.target} has no pyekka_ctl:{self.function}: "
                "is it a cluster member run by `pyekka start`?"
            )
        return f"pyekka_ctl:{self.function} on {self.target} failed: {format_term(self.reason)}"


async def ctl_call(
    spec: NodeSpec,
    target: str,
    function: str,
    args: list[Any],
    *,
    timeout: float | None = 30.0,
) -> Any:
    """``rpc:call(Target, pyekka_ctl, Function, Args)`` from a node started with ``spec``
    for the call (a temporary hidden node, see :func:`~pyekka.node.cli_support.
    temporary_spec`); :class:`CtlError` for ``{badrpc, _}``, and
    :class:`~pyekka.node.connect_error.ConnectError` when no connection can be made."""
    result = await call(spec, target, CTL_MODULE.name, function, args, timeout=timeout)
    if type(result) is tuple and len(result) == 2 and result[0] == _BADRPC:
        raise CtlError(target, function, result[1])
    return result


def _name(node: Any) -> str | None:
    return node.name if type(node) is Atom and node != UNDEFINED else None


def _names(nodes: Any) -> list[str]:
    if type(nodes) is not list:
        raise ValueError(f"not a node list: {nodes!r}")
    return [n.name for n in nodes if type(n) is Atom]


def _iso(us: int) -> str:
    moment = datetime.datetime.fromtimestamp(us / 1_000_000, datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def member_json(member: Member | Any) -> dict[str, Any]:
    """A member (or its 8-tuple) as JSON: ``node``, ``status``, ``mnesia`` (``running``,
    ``stopped``, ``false`` for a node without a db, ``null`` unknown), ``guid`` (hex),
    ``hash``, ``ltime`` (ISO 8601, UTC)."""
    m = member if isinstance(member, Member) else Member.from_term(member)
    mnesia: Any = None
    if m.mnesia is MnesiaStatus.NOT_DB:
        mnesia = False
    elif m.mnesia is not None:
        mnesia = m.mnesia.value
    return {
        "node": m.node.name,
        "status": m.status.value,
        "mnesia": mnesia,
        "guid": None if m.guid is None else m.guid.hex(),
        "hash": m.hash,
        "ltime": None if m.ltime is None else _iso(timestamp_to_us(m.ltime)),
    }


def status_json(term: Any) -> dict[str, Any]:
    """``pyekka_ctl:status()``'s map as JSON (node names as strings, ``null`` for no
    leader, members as :func:`member_json`); ``ValueError`` for another term."""
    if type(term) is not dict:
        raise ValueError(f"not a status map: {format_term(term)}")

    def get(key: str) -> Any:
        try:
            return term[A(key)]
        except KeyError:
            raise ValueError(f"no {key} in the status map: {format_term(term)}") from None

    try:
        cluster_name = cluster_name_value(get("cluster_name"))
    except ValueError:
        cluster_name = format_term(get("cluster_name"))
    return {
        "node": _name(get("node")),
        "running": get("running") is True,
        "cluster_name": cluster_name,
        "running_nodes": _names(get("running_nodes")),
        "stopped_nodes": _names(get("stopped_nodes")),
        "genuine_nodes": _names(get("genuine_nodes")),
        "partitions": _names(get("partitions")),
        "leader": _name(get("leader")),
        "coordinator": _name(get("coordinator")),
        "members": [member_json(m) for m in get("members")],
    }


@dataclass(frozen=True)
class LockOutcome:
    """A ``lock``/``unlock`` answer: ``ok`` (granted or released) and the nodes named
    (on a refusal, those that refused); ``not_locked`` for ``{error, not_locked}``,
    ``lost`` (the holder's exit reason, in Erlang syntax) for ``{error, {lost, R}}``."""

    ok: bool
    nodes: list[str]
    not_locked: bool = False
    lost: str | None = None

    @classmethod
    def from_term(cls, term: Any) -> LockOutcome:
        """Read ``{Bool, [Node | {Node, Result}]}``, ``{error, not_locked}`` or
        ``{error, {lost, Reason}}`` (``ValueError`` for anything else)."""
        if term == (_ERROR, _NOT_LOCKED):
            return cls(False, [], not_locked=True)
        if (
            type(term) is tuple
            and len(term) == 2
            and term[0] == _ERROR
            and type(term[1]) is tuple
            and len(term[1]) == 2
            and term[1][0] == _LOST
        ):
            return cls(False, [], lost=format_term(term[1][1]))
        parsed = parse_lock_result(term)
        if parsed is None:
            raise ValueError(f"not a lock result: {format_term(term)}")
        return cls(parsed[0], list(_elements(parsed[1])))


def _elements(items: Iterable[Any]) -> Iterable[str]:
    for item in items:
        node = item[0] if type(item) is tuple and len(item) == 2 else item
        yield node.name if type(node) is Atom else format_term(node)
