"""The ``ekka_node_monitor`` process of a pyekka node (spec 6, 8, 9; ekka 0.8.1.9).

:class:`NodeMonitor` is a :class:`~pyekka.cluster.cluster.ClusterService`: added to a
:class:`~pyekka.cluster.cluster.Cluster`, it starts and stops with the cluster's
services (so autoheal's ``heal(shutdown)`` stops it, and ``heal(reboot)`` starts a
fresh one, as genuine ekka's application restart does). Its process is registered as
``ekka_node_monitor``, traps exits and handles what a genuine node monitor handles:

==================================  ===============================================
trigger                             action
==================================  ===============================================
``nodedown`` of ``Node``            after ``suspect_delay_ms`` (3 s): ``{suspect,
                                    Node}``
``{suspect, Node}`` (timer)         cast ``{suspect, node(), Node}`` to the node
                                    monitor of the first running db node other than
                                    this one and ``Node`` (the proxy), if any
cast ``{suspect, From, Target}``    ping ``Target`` (in a task), cast ``{confirm,
                                    Target, up | down}`` to ``ekka_node_monitor@From``
cast ``{confirm, Target, S}``       logged only
heartbeat timer                     cast ``{heartbeat, node()}`` to every other db
                                    node; re-armed after 2001-4000 ms
cast ``{heartbeat, From}``          ignored
db ``inconsistent_database`` of N   membership ``partition_occurred``; ``N`` joins the
                                    partition list; with autoheal, after
                                    ``confirm_delay_ms`` (3 s) ``confirm_partition``
db ``mnesia_up`` of ``N``           ``N`` in the partition list: membership
                                    ``partition_healed``, ``N`` leaves the list
``confirm_partition``               partition list not empty: cast ``{report_partition,
                                    node()}`` to the autoheal leader
``report_partition``,               autoheal (:mod:`pyekka.cluster.service_autoheal`)
``heal_partition``, ``heal_cluster``
casts, ``{autoheal, _}`` timers,
the heal process's ``'EXIT'``
``autoclean`` timer                 autoclean (:mod:`pyekka.cluster.service_autoclean`)
call ``partitions``                 the partition list; any other call: ``ignore``
==================================  ===============================================

Differences from genuine 0.8.1.9:

* ``nodeup``/``nodedown`` and ``mnesia_up``/``mnesia_down`` reach the
  :class:`~pyekka.cluster.service_membership.MembershipService` directly (it
  subscribes itself), so they are not forwarded again.
* The db events come from :class:`~pyekka.cluster.cluster_view.ClusterDb`, whose
  ``inconsistent_database`` has mnesia's meaning: a member that went down while
  running came back with the same db incarnation, i.e. both sides kept running while
  cut off from each other.
* Reports go to :func:`~pyekka.cluster.service_autoheal.find_autoheal_leader` (the
  oldest live pyekka member, never a genuine node), not blindly to ``leader()``,
  unless autoheal is ``genuine_only``; ``{heal_cluster, _, _}`` (0.8.1.14) is obeyed.
* Reports from genuine nodes (this node is their ``leader()``) are healed as their
  own domain (:mod:`pyekka.cluster.autoheal_genuine`).
* Every cast is parsed by :func:`~pyekka.cluster.monitor_messages.parse_monitor_cast`
  first; malformed ones are logged and ignored, never a crash.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from pyekka.cluster.cluster_view import DbEvent
from pyekka.cluster.constants import (
    EKKA_NODE_MONITOR,
    HEARTBEAT_MAX_MS,
    HEARTBEAT_MIN_MS,
    PARTITION_CONFIRM_DELAY_MS,
    SUSPECT_DELAY_MS,
)
from pyekka.cluster.monitor_messages import (
    Confirm,
    HealCluster,
    HealPartition,
    Heartbeat,
    ReportPartition,
    Suspect,
    parse_monitor_cast,
)
from pyekka.cluster.service_autoclean import AUTOCLEAN, Autoclean
from pyekka.cluster.service_autoheal import Autoheal, AutohealSettings, find_autoheal_leader
from pyekka.node.exits import EXIT
from pyekka.node.gen_server import GEN_CALL, GEN_CAST, reply
from pyekka.term import format_term
from pyekka.term.order import term_sort_key
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.cluster.cluster import Cluster
    from pyekka.node.process import Process, ProcessFn

__all__ = ["NodeMonitor"]

log = logging.getLogger("pyekka.cluster.monitor")

_NODEUP = Atom("nodeup")
_NODEDOWN = Atom("nodedown")
_SUSPECT = Atom("suspect")
_HEARTBEAT = Atom("heartbeat")
_CONFIRM_PARTITION = Atom("confirm_partition")
_AUTOHEAL = Atom("autoheal")
_PARTITIONS = Atom("partitions")
_IGNORE = Atom("ignore")
_DB_EVENT = Atom("$pyekka_db_event")


class NodeMonitor:
    """``ekka_node_monitor`` for a :class:`~pyekka.cluster.cluster.Cluster` (see the
    module doc); add it with ``cluster.add_service(NodeMonitor(...))``.

    ``autoheal``: ekka's ``cluster_autoheal`` (``True``: on with the 15 s delay, an
    ``int``: on with that delay in ms, ``False``/``None``: off) or
    :class:`~pyekka.cluster.service_autoheal.AutohealSettings`. ``autoclean_ms``:
    ekka's ``cluster_autoclean`` expiry (``None``: off). The delays and the heartbeat
    range are ekka's by default; tests shorten them. ``leader_rpc_timeout`` bounds
    each ``ekka_node:is_running`` rpc made to find the autoheal leader.
    """

    def __init__(
        self,
        *,
        autoheal: bool | int | AutohealSettings | None = True,
        autoclean_ms: int | None = None,
        confirm_delay_ms: int = PARTITION_CONFIRM_DELAY_MS,
        suspect_delay_ms: int = SUSPECT_DELAY_MS,
        heartbeat_ms: tuple[int, int] = (HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS),
        leader_rpc_timeout: float | None = 15.0,
    ) -> None:
        if isinstance(autoheal, AutohealSettings) or autoheal is None:
            self.autoheal_settings = autoheal
        else:
            self.autoheal_settings = AutohealSettings.from_setting(autoheal)
        self.autoclean_ms = autoclean_ms
        self.confirm_delay_ms = confirm_delay_ms
        self.suspect_delay_ms = suspect_delay_ms
        self.heartbeat_ms = heartbeat_ms
        self.leader_rpc_timeout = leader_rpc_timeout
        self._cluster: Cluster | None = None
        self._proc: Process | None = None
        self._partitions: list[Atom] = []
        self.autoheal: Autoheal | None = None
        self.autoclean: Autoclean | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    def __repr__(self) -> str:
        where = "stopped" if self._cluster is None else self._cluster.node.name.name
        return f"<NodeMonitor {where} partitions={self._partitions!r}>"

    # -- lifecycle (ClusterService) ------------------------------------------------------

    @property
    def cluster(self) -> Cluster:
        """The cluster while the monitor runs."""
        if self._cluster is None:
            raise RuntimeError("the node monitor is not running")
        return self._cluster

    @property
    def running(self) -> bool:
        """Whether the ``ekka_node_monitor`` process runs."""
        return self._proc is not None and self._proc.is_alive

    @property
    def pid(self) -> Pid | None:
        """The process's pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.is_alive else None

    async def start(self, cluster: Cluster) -> None:
        """Start the process (called by the cluster after the membership)."""
        if self.running:
            raise RuntimeError("ekka_node_monitor is already running")
        self._cluster = cluster
        self._partitions = []
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._proc = cluster.node.spawn(self._run, ready, name=EKKA_NODE_MONITOR, trap_exit=True)
        await ready
        cluster.partitions_provider = self.partitions

    async def stop(self) -> None:
        """Stop the process, its timers, its tasks and the heal process."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self.autoheal is not None:
            self.autoheal.close()
        proc, self._proc = self._proc, None
        if proc is not None and proc.is_alive and self._cluster is not None:
            self._cluster.node.runtime.exit(proc.pid, Atom("kill"))
            await proc.wait()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._cluster is not None:
            self._cluster.partitions_provider = list
        self._partitions = []

    # -- reading -----------------------------------------------------------------------

    def partitions(self) -> list[Atom]:
        """``ekka_node_monitor:partitions()``: nodes seen partitioned, not yet healed."""
        return list(self._partitions)

    # -- helpers the autoheal and autoclean states use -------------------------------

    def run_after(self, delay_ms: int, msg: Any) -> asyncio.TimerHandle:
        """``erlang:send_after(Delay, ekka_node_monitor, Msg)``."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            if self._proc is not None:
                self._proc.deliver(msg)

        handle = loop.call_later(delay_ms / 1000, fire)
        self._timers.add(handle)
        return handle

    def cast(self, node: Atom, msg: Any) -> None:
        """``gen_server:cast({ekka_node_monitor, Node}, Msg)``."""
        if self._proc is not None:
            self._proc.cast((EKKA_NODE_MONITOR, node), msg)

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task that :meth:`stop` cancels."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("node monitor task failed", exc_info=task.exception())

    def proc_spawn_link(self, fn: ProcessFn, *args: Any) -> Process:
        """``spawn_link`` from the node monitor process."""
        assert self._proc is not None
        return self._proc.spawn_link(fn, *args)

    # -- the process ---------------------------------------------------------------------

    async def _run(self, proc: Process, ready: asyncio.Future[None]) -> None:
        cluster = self.cluster
        proc.monitor_nodes(True)
        self._unsubscribe = cluster.db.on_event(lambda ev: proc.deliver((_DB_EVENT, ev)))
        if self.autoheal_settings is not None:
            self.autoheal = Autoheal(self, self.autoheal_settings)
        if self.autoclean_ms is not None:
            self.autoclean = Autoclean(self, self.autoclean_ms)
            self.autoclean.arm()
        self._arm_heartbeat()
        ready.set_result(None)
        log.info(
            "ekka_node_monitor started on %s (autoheal %s, autoclean %s)",
            cluster.node.name.name,
            "off" if self.autoheal is None else f"{self.autoheal.settings.delay_ms} ms",
            "off" if self.autoclean_ms is None else f"{self.autoclean_ms} ms",
        )
        while True:
            msg = await proc.receive()
            try:
                self._handle(proc, msg)
            except Exception:
                log.exception("ekka_node_monitor failed on %s", format_term(msg))

    def _handle(self, proc: Process, msg: Any) -> None:
        if msg == _HEARTBEAT:
            self._heartbeat()
        elif msg == _CONFIRM_PARTITION:
            if self._partitions:
                self.background(self._report_partition())
        elif msg == AUTOCLEAN:
            if self.autoclean is not None:
                self.autoclean.check()
        elif type(msg) is not tuple or not msg:
            log.error("Unexpected info: %s", format_term(msg))
        elif msg[0] == GEN_CAST and len(msg) == 2:
            self._handle_cast(msg[1])
        elif msg[0] == GEN_CALL and len(msg) == 3:
            if type(msg[1]) is tuple and len(msg[1]) == 2 and type(msg[1][0]) is Pid:
                if msg[2] == _PARTITIONS:
                    reply(proc, msg[1], self.partitions())
                else:
                    log.error("Unexpected call: %s", format_term(msg[2]))
                    reply(proc, msg[1], _IGNORE)
        elif msg[0] == _DB_EVENT and len(msg) == 2:
            self._db_event(msg[1])
        elif msg[0] == _NODEDOWN and len(msg) == 2:
            self.run_after(self.suspect_delay_ms, (_SUSPECT, msg[1]))
        elif msg[0] == _NODEUP and len(msg) == 2:
            pass  # the membership service hears it itself
        elif msg[0] == _SUSPECT and len(msg) == 2 and type(msg[1]) is Atom:
            self._suspect(msg[1])
        elif msg[0] == _AUTOHEAL and len(msg) == 2:
            self._to_autoheal(lambda a: a.handle_timer(msg[1]), msg)
        elif msg[0] == EXIT and len(msg) == 3 and type(msg[1]) is Pid:
            if self.autoheal is None or not self.autoheal.handle_exit(msg[1], msg[2]):
                log.debug("EXIT of %s: %s", msg[1], format_term(msg[2]))
        else:
            log.error("Unexpected info: %s", format_term(msg))

    def _handle_cast(self, body: Any) -> None:
        cast = parse_monitor_cast(body)
        if isinstance(cast, Heartbeat):
            return
        if isinstance(cast, Suspect):
            log.info("Suspect from %s: %s", cast.node.name, cast.target.name)
            self.background(self._confirm(cast))
        elif isinstance(cast, Confirm):
            log.info("Confirm %s %s", cast.target.name, cast.status)
        elif isinstance(cast, ReportPartition):
            self._to_autoheal(lambda a: a.handle_report(cast.node), body)
        elif isinstance(cast, HealPartition):
            self._to_autoheal(lambda a: a.heal_partition(cast.split_view), body)
        elif isinstance(cast, HealCluster):
            self._to_autoheal(lambda a: a.heal_cluster(cast.minority, cast.split_view), body)
        else:
            log.error("Unexpected cast: %s", format_term(body))

    def _to_autoheal(self, action: Callable[[Autoheal], None], msg: Any) -> None:
        if self.autoheal is None:
            log.error("Autoheal not enabled! Unexpected msg: %s", format_term(msg))
        else:
            action(self.autoheal)

    # -- heartbeat and suspect/confirm ---------------------------------------------------

    def _arm_heartbeat(self) -> None:
        low, high = self.heartbeat_ms
        self.run_after(random.randint(low, high), _HEARTBEAT)

    def _heartbeat(self) -> None:
        me = self.cluster.node.name
        for node in self.cluster.db.db_nodes():
            if node != me:
                self.cast(node, Heartbeat(me).to_term())
        self._arm_heartbeat()

    def _suspect(self, node: Atom) -> None:
        me = self.cluster.node.name
        proxies = [n for n in self.cluster.db.running_nodes() if n not in (me, node)]
        if proxies:
            self.cast(proxies[0], Suspect(me, node).to_term())

    async def _confirm(self, suspect: Suspect) -> None:
        up = await self.cluster.node.ping(suspect.target)
        self.cast(suspect.node, Confirm(suspect.target, "up" if up else "down").to_term())

    # -- partitions ------------------------------------------------------------------------

    def _db_event(self, event: Any) -> None:
        if not isinstance(event, DbEvent):
            return
        node = event.node
        if event.kind == "inconsistent_database":
            log.critical("Network partition detected from node %s", node.name)
            self.cluster.membership.partition_occurred(node)
            if self.autoheal is not None:
                self.run_after(self.confirm_delay_ms, _CONFIRM_PARTITION)
            if node not in self._partitions:
                self._partitions = sorted([*self._partitions, node], key=term_sort_key)
        elif event.kind == "mnesia_up" and node in self._partitions:
            self.cluster.membership.partition_healed(node)
            self._partitions.remove(node)

    async def _report_partition(self) -> None:
        """``confirm_partition``: report to the autoheal leader, if one answers."""
        genuine_only = self.autoheal is not None and self.autoheal.settings.genuine_only
        leader = await find_autoheal_leader(
            self.cluster, genuine_only=genuine_only, timeout=self.leader_rpc_timeout
        )
        if leader is None:
            log.critical(
                "Leader is down, cannot autoheal the partitions: %s",
                ", ".join(n.name for n in self._partitions),
            )
            return
        log.info("reporting the partition to the leader %s", leader.name)
        self.cast(leader, ReportPartition(self.cluster.node.name).to_term())
