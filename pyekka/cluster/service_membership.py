"""The ``ekka_membership`` process of a pyekka node (spec 5, 14, 15.B).

:class:`MembershipService` runs a process registered as ``ekka_membership`` that
holds the node's :class:`~pyekka.cluster.membership.MembershipTable` and handles
exactly what a genuine 0.8.1.9 ``ekka_membership`` handles:

* the casts of spec 5.2 from any node (``{ping, Member}`` answered with
  ``{pong, LocalMember}``, ``pong``, ``joining``, ``healing``, ``leaving``, and the
  local ``node_up``/``node_down``/``mnesia_up``/``mnesia_down``/``partition_*``);
  a malformed or unknown cast is logged and ignored, never a crash;
* the calls ``{monitor, {Type, Pid, true | false}}`` and ``{announce, Action}``
  (``ok``), anything else answered ``ignore``.

Where genuine ekka's node monitor feeds it ``nodeup``/``nodedown`` and mnesia's
events, this process subscribes to ``net_kernel:monitor_nodes`` itself and to the
:class:`~pyekka.cluster.cluster_view.ClusterDb`'s ``mnesia_up``/``mnesia_down``
events (so a pyekka node monitor must not forward them again). The ``mnesia`` field
of every entry is ``ekka_mnesia:cluster_status/1`` of pyekka's cluster view: pyekka
members are ``running`` or ``stopped`` db nodes, genuine ones ``false``.

Announcing itself. Among pyekka members, as among genuine db nodes, the db does it:
when a member's db comes up (``mnesia_up``: it answered a view sync and counts this
node as a member) the table casts it ``{pong, LocalMember}`` (spec 5.2), and at start
the process pings the running members. A genuine node lists a foreign node only after
a ``ping`` from it, and after a reconnection keeps it ``down`` until the next one
(spec 16.1). So this process casts ``{ping, LocalMember}`` to ``ekka_membership`` on:

* every genuine member of the view, at start (connecting to it) and when a change of
  the view adds it;
* a node that connects, if it is a genuine member or, not being a pyekka member, has
  an entry that is not ``leaving`` (every reconnection);
* every genuine member every ``genuine_refresh`` seconds, which also reconnects to
  them and notices an ekka restart there (a restart empties their table), and
  refreshes the set of genuine members from one of them
  (``ekka_mnesia:cluster_nodes(all)``, so that genuine nodes that join later are
  pinged too).

Hooks for the other services (node monitor, autoheal, autoclean, locker):
:meth:`~MembershipService.members`, :meth:`~MembershipService.leader`,
:meth:`~MembershipService.coordinator`, :meth:`~MembershipService.on_event`,
:meth:`~MembershipService.partition_occurred`, :meth:`~MembershipService.announce`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pyekka.cluster import election
from pyekka.cluster.cluster_view import ClusterDb, DbEvent, NodeKind
from pyekka.cluster.constants import EKKA_MEMBERSHIP
from pyekka.cluster.events import EventType
from pyekka.cluster.guid import GuidGenerator, GuidPolicy
from pyekka.cluster.member import Member, MemberStatus, MnesiaStatus, timestamp_from_us
from pyekka.cluster.membership import MembershipTable, Transition
from pyekka.cluster.membership_requests import (
    Action,
    MonitorRequest,
    genuine_cluster,
    parse_call,
    should_ping,
)
from pyekka.cluster.membership_subscribers import EventCallback, Subscribers
from pyekka.cluster.ring import ring
from pyekka.node.exits import DOWN
from pyekka.node.gen_server import GEN_CALL, GEN_CAST, reply
from pyekka.term import format_term
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.node.node import Node
    from pyekka.node.process import Process

__all__ = ["EventCallback", "MembershipService"]

log = logging.getLogger("pyekka.cluster.membership")

_PING = Atom("ping")
_OK = Atom("ok")
_IGNORE = Atom("ignore")
_NODEUP = Atom("nodeup")
_NODEDOWN = Atom("nodedown")
_EKKA_MNESIA = Atom("ekka_mnesia")
_CLUSTER_NODES = Atom("cluster_nodes")
_ALL = Atom("all")
_DB_EVENT = Atom("$pyekka_db_event")
_VIEW_CHANGE = Atom("$pyekka_view_change")
_REFRESH = Atom("$pyekka_refresh")


def _now_us() -> int:
    return time.time_ns() // 1000


class MembershipService:
    """``ekka_membership`` on a :class:`~pyekka.node.node.Node` (see the module doc).

    ``guid_policy`` chooses the time field of the guid (spec 16.2,
    :class:`~pyekka.cluster.guid.GuidPolicy`); each :meth:`start` takes a new guid,
    as every start of genuine ekka does. ``genuine_refresh`` (seconds, ``None``: off)
    paces the re-announcement to genuine members; ``on_genuine_change`` is awaited
    after the set of genuine members changed (the cluster publishes its view).
    """

    def __init__(
        self,
        node: Node,
        db: ClusterDb,
        *,
        guid_policy: GuidPolicy = GuidPolicy.DEFER,
        genuine_refresh: float | None = 5.0,
        rpc_timeout: float = 15.0,
        on_genuine_change: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.node = node
        self.db = db
        self.guid_policy = guid_policy
        self.genuine_refresh = genuine_refresh
        self.rpc_timeout = rpc_timeout
        self.on_genuine_change = on_genuine_change
        self.table: MembershipTable | None = None
        """The table while the service runs (read it, never write it)."""
        self._proc: Process | None = None
        self._subscribers = Subscribers()
        self._unsubscribe: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<MembershipService {self.node.name.name} {'up' if self.running else 'down'}>"

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the ``ekka_membership`` process runs."""
        return self._proc is not None and self._proc.is_alive

    @property
    def pid(self) -> Pid | None:
        """The pid of the ``ekka_membership`` process while it runs."""
        return self._proc.pid if self.running and self._proc is not None else None

    async def start(self) -> None:
        """Start the process (a new guid) and announce the node to the view's members."""
        if self.running:
            raise RuntimeError("ekka_membership is already running")
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._proc = self.node.spawn(self._run, ready, name=EKKA_MEMBERSHIP)
        await ready

    async def stop(self) -> None:
        """Stop the process (the table goes with it, as genuine ekka's ETS table)."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.is_alive:
            self.node.runtime.exit(proc.pid, Atom("kill"))
            await proc.wait()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.table = None
        self._subscribers.clear_pid_monitors()

    # -- reading the table ------------------------------------------------------------

    def _table(self) -> MembershipTable:
        if self.table is None:
            raise RuntimeError("ekka_membership is not running")
        return self.table

    def local_member(self) -> Member:
        """``ekka_membership:local_member/0`` (``RuntimeError`` when stopped)."""
        return self._table().local_member

    def members(self, status: MemberStatus | None = None) -> list[Member]:
        """``members/0,1`` in node order (empty while stopped)."""
        return [] if self.table is None else self.table.members(status)

    def lookup(self, node: Atom) -> Member | None:
        """``lookup_member/1``: the entry of ``node``, or ``None``."""
        return None if self.table is None else self.table.lookup(node)

    def is_member(self, node: Atom) -> bool:
        """``is_member/1``."""
        return self.lookup(node) is not None

    def nodelist(self, status: MemberStatus | None = None) -> list[Atom]:
        """``nodelist/0,1``."""
        return election.nodelist(self.members(), status)

    def leader(self) -> Atom | None:
        """``leader/0``: the oldest guid among all entries, ``down`` ones included."""
        return election.leader(self.members())

    def coordinator(self) -> Atom | None:
        """``coordinator/0``: the oldest ``up`` entry."""
        return election.coordinator(self.members())

    def coordinator_of(self, nodes: Sequence[Atom]) -> Atom | None:
        """``coordinator/1``: the oldest entry among ``nodes``."""
        return election.coordinator_of(self.members(), nodes)

    def ring(self, status: MemberStatus | None = None) -> list[Member]:
        """``ring/0,1``: the entries (of ``status``) in hash order."""
        return ring(self.members(), status)

    # -- events ---------------------------------------------------------------------

    def on_event(
        self, callback: EventCallback, types: Iterable[EventType] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for each membership and/or partition event (as
        ``ekka:monitor/2``); kept across restarts. Returns the unsubscriber."""
        return self._subscribers.on_event(callback, types)

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` after the process handled a message (the table may
        have changed, with or without an event); returns the unsubscriber."""
        return self._subscribers.on_change(callback)

    # -- asking the process ---------------------------------------------------------

    def _cast(self, message: Any) -> None:
        if self._proc is not None:
            self._proc.deliver((GEN_CAST, message))

    def partition_occurred(self, node: Atom) -> None:
        """``partition_occurred/1``: tell the partition subscribers (node monitor)."""
        self._cast((Atom("partition_occurred"), node))

    def partition_healed(self, node: Atom) -> None:
        """``partition_healed/1``: tell the partition subscribers (node monitor)."""
        self._cast((Atom("partition_healed"), node))

    def announce(self, action: Action) -> None:
        """``announce/1``: cast ``{joining | healing | leaving, Node}`` to every entry
        (``join``, ``heal``, ``leave`` or ``("force_leave", Node)``)."""
        if self.table is not None and self._proc is not None:
            for cast in self.table.announce(action):
                self._proc.cast((cast.name, cast.node), cast.message)

    def ping(self, node: Atom) -> None:
        """Cast ``{ping, LocalMember}`` to ``ekka_membership`` on ``node``."""
        if self.table is not None and self._proc is not None and node != self.node.name:
            member = self.table.local_member.to_term()
            self._proc.cast((EKKA_MEMBERSHIP, node), (_PING, member))

    # -- the process ------------------------------------------------------------------

    async def _run(self, proc: Process, ready: asyncio.Future[None]) -> None:
        now_us = _now_us()
        guid = GuidGenerator(self.node.name, proc.pid, self.guid_policy).next(now_us)
        mnesia = (
            MnesiaStatus.RUNNING
            if self.node.name in self.db.running_nodes()
            else MnesiaStatus.STOPPED
        )
        local = Member.new(self.node.name, guid, mnesia=mnesia, ltime=timestamp_from_us(now_us))
        self.table = MembershipTable(local)
        proc.monitor_nodes(True)
        self._unsubscribe = [
            self.db.on_event(lambda ev: proc.deliver((_DB_EVENT, ev))),
            self.db.on_view_change(lambda nodes: proc.deliver((_VIEW_CHANGE, nodes))),
        ]
        ready.set_result(None)
        log.info("ekka_membership started on %s, guid %s", self.node.name.name, guid.hex())
        for node in self.db.running_nodes():
            self.ping(node)
        connected = set(self.node.nodes())
        for node in self.db.view.genuine_nodes():
            self._reach(node, connected)
        self._arm_refresh()
        while True:
            msg = await proc.receive()
            try:
                self._handle(proc, msg)
            except Exception:
                log.exception("ekka_membership failed on %s", format_term(msg))
            self._subscribers.changed()

    def _reach(self, node: Atom, connected: set[Atom]) -> None:
        """Ping ``node`` now if connected, else connect (its ``nodeup`` pings it)."""
        if node in connected:
            self.ping(node)
        else:
            self._background(self.node.connect(node))

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("membership background task failed: %r", task.exception())

    def _apply(self, transition: Transition | None) -> None:
        if transition is None or self._proc is None:
            return
        for cast in transition.casts:
            self._proc.cast((cast.name, cast.node), cast.message)
        self._subscribers.notify(transition.events, self._proc)

    def _handle(self, proc: Process, msg: Any) -> None:
        table = self._table()
        now = timestamp_from_us(_now_us())
        if type(msg) is not tuple:
            if msg == _REFRESH:
                self._refresh()
            else:
                log.warning("ekka_membership: unexpected info %s", format_term(msg))
            return
        tag = msg[0] if msg else None
        if len(msg) == 2 and tag == GEN_CAST:
            transition = table.handle_cast(msg[1], now, self.db.cluster_status)
            if transition is None:
                log.error("ekka_membership: unexpected cast %s", format_term(msg[1]))
            self._apply(transition)
        elif len(msg) == 3 and tag == GEN_CALL:
            if type(msg[1]) is tuple and len(msg[1]) == 2 and type(msg[1][0]) is Pid:
                reply(proc, msg[1], self._handle_call(proc, msg[2]))
        elif len(msg) == 2 and tag == _NODEUP and type(msg[1]) is Atom:
            node = msg[1]
            status = self.db.cluster_status(node)
            in_cluster = status is not MnesiaStatus.NOT_DB
            self._apply(table.node_up(node, in_cluster, status, now))
            if should_ping(self.db.view, node, self.lookup(node)):
                self.ping(node)
        elif len(msg) == 2 and tag == _NODEDOWN and type(msg[1]) is Atom:
            self._apply(table.node_down(msg[1], now))
        elif len(msg) == 2 and tag == _DB_EVENT:
            self._db_event(msg[1], now)
        elif len(msg) == 2 and tag == _VIEW_CHANGE:
            connected = set(self.node.nodes())
            for node in msg[1]:
                if self.db.view.kind(node) is NodeKind.GENUINE:
                    self._reach(node, connected)
        elif len(msg) == 5 and tag == DOWN:
            self._subscribers.pid_down(msg[1])
        else:
            log.warning("ekka_membership: unexpected info %s", format_term(msg))

    def _db_event(self, event: DbEvent, now: tuple[int, int, int]) -> None:
        table = self._table()
        if event.kind == "mnesia_up":
            self._apply(table.mnesia_up(event.node, now))
        elif event.kind == "mnesia_down":
            self._apply(table.mnesia_down(event.node, now))

    def _handle_call(self, proc: Process, request: Any) -> Any:
        call = parse_call(request)
        if isinstance(call, MonitorRequest):
            self._subscribers.set_pid_monitor(proc, call.kind, call.pid, call.on)
            return _OK
        if call is not None:
            self.announce(call.action)
            return _OK
        log.error("ekka_membership: unexpected call %s", format_term(request))
        return _IGNORE

    # -- genuine members ------------------------------------------------------------

    def _arm_refresh(self) -> None:
        if self.genuine_refresh is None or self._proc is None:
            return
        proc = self._proc
        self._timer = asyncio.get_running_loop().call_later(
            self.genuine_refresh, proc.deliver, _REFRESH
        )

    def _refresh(self) -> None:
        genuine = self.db.view.genuine_nodes()
        if genuine:
            connected = set(self.node.nodes())
            for node in genuine:
                self._reach(node, connected)
            live = [n for n in genuine if n in connected]
            if live:
                self._background(self._discover_genuine(live[0]))
        self._arm_refresh()

    async def _discover_genuine(self, node: Atom) -> None:
        """Make the view's genuine members those of ``node``'s mnesia cluster."""
        nodes = await self.node.rpc(node, _EKKA_MNESIA, _CLUSTER_NODES, [_ALL], self.rpc_timeout)
        nodes = genuine_cluster(self.db.view, node, nodes)
        if nodes is not None and self.db.set_genuine(nodes) and self.on_genuine_change is not None:
            await self.on_genuine_change()
