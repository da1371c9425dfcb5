"""Autoheal as ``ekka_node_monitor`` runs it (``ekka_autoheal`` 0.8.1.9, spec 8), plus
pyekka's extension where genuine ekka gives up (spec 16.6, issue 4).

:class:`Autoheal` lives inside the :class:`~pyekka.cluster.service_node_monitor.NodeMonitor`
process, as genuine's state lives inside the node monitor's, and speaks genuine's
messages and RPCs:

1. **Report** (every node, done by the node monitor): ``{report_partition, Node}`` cast
   to ``ekka_node_monitor`` on the leader.
2. **Leader** (:meth:`Autoheal.handle_report`): a heal process already runs here ->
   ignored; this node is not the leader -> logged, ignored; otherwise
   ``{create_splitview, node()}`` is scheduled after ``delay_ms`` (15 s by default;
   each report restarts the timer).
3. **Split view** (:meth:`Autoheal.create_splitview`): ``ekka_mnesia:cluster_view()``
   of every db node (``rpc:multicall``, 30 s); genuine's ``SplitView`` and
   coordinator where genuine ekka can heal, sent as ``{heal_partition, SplitView}``
   to ``ekka_node_monitor@Coordinator``.
4. **Coordinator** (:meth:`Autoheal.heal_partition`): a linked heal process reboots
   what :func:`~pyekka.cluster.split_view.heal_partition` says: rpc
   ``ekka_cluster:heal(shutdown)`` on each node, a pause of 101-1100 ms, rpc
   ``ekka_cluster:heal(reboot)`` on each. Reports and orders are ignored while it runs.

pyekka's extension (off with ``genuine_only``):

* The leader is :func:`~pyekka.cluster.policy.autoheal_leader` as well as genuine
  ``leader()``: the oldest pyekka member that is not ``down``, so a dead oldest member
  does not block healing (genuine: "leader is down").
* Db nodes that are not connected or do not answer do not stop the leader (genuine
  retries, or gives up): :func:`~pyekka.cluster.heal_plan.plan_heal` heals around
  them, and also heals the split views genuine 0.8.1.9 cannot (three sides or more,
  overlapping views) by keeping the largest fully connected group, sending
  ``{heal_cluster, Minority, SplitView}`` (ekka 0.8.1.14's message) to a pyekka
  coordinator, which reboots ``Minority -- [node()]``.
* A heal process never asks its own node to shut down.
* Reports from **genuine** nodes (a pyekka node that is their ``leader()``) are a
  separate domain: :mod:`pyekka.cluster.autoheal_genuine` builds their split view
  from the genuine nodes' views only, after the same delay (timer
  ``{autoheal, {create_splitview, node(), genuine}}``). Heal orders received from
  other nodes never reboot a genuine node.

Coordinators of pyekka's own plans are always pyekka db nodes, so ``heal_cluster``
never reaches a genuine node (spec 15.G, 16.7); received casts are parsed by
:func:`~pyekka.cluster.monitor_messages.parse_monitor_cast` first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyekka.cluster.autoheal_genuine import GenuineAutoheal
from pyekka.cluster.cluster_view import NodeKind
from pyekka.cluster.constants import (
    AUTOHEAL_DEFAULT_DELAY_MS,
    CLUSTER_VIEW_TIMEOUT_MS,
    EKKA,
    REBOOT_PAUSE_MAX_MS,
    REBOOT_PAUSE_MIN_MS,
)
from pyekka.cluster.heal_plan import plan_heal
from pyekka.cluster.policy import autoheal_leader
from pyekka.cluster.split_view import (
    ClusterView,
    autoheal_delay,
    heal_partition,
    split_view,
    split_view_coordinator,
    split_view_term,
)
from pyekka.term import format_term
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.cluster.cluster import Cluster
    from pyekka.cluster.service_node_monitor import NodeMonitor
    from pyekka.node.process import Process

__all__ = ["CREATE_SPLITVIEW", "Autoheal", "AutohealSettings", "find_autoheal_leader"]

log = logging.getLogger("pyekka.cluster.autoheal")

CREATE_SPLITVIEW = Atom("create_splitview")
"""The leader's timer message ``{autoheal, {create_splitview, node()}}`` (inner tag)."""

_EKKA_CLUSTER = Atom("ekka_cluster")
_EKKA_MNESIA = Atom("ekka_mnesia")
_EKKA_NODE = Atom("ekka_node")
_HEAL = Atom("heal")
_SHUTDOWN = Atom("shutdown")
_REBOOT = Atom("reboot")
_CLUSTER_VIEW = Atom("cluster_view")
_IS_RUNNING = Atom("is_running")


@dataclass(frozen=True)
class AutohealSettings:
    """Autoheal's knobs; the defaults are ekka 0.8.1.9's (spec 8.1).

    ``delay_ms``: the leader's debounce before building the split view.
    ``cluster_view_timeout``: seconds for the ``cluster_view()`` multicall.
    ``reboot_pause_ms``: the range of the pause between shutdown and reboot.
    ``heal_rpc_timeout``: seconds for each heal rpc (ekka: none, ``None``).
    ``genuine_only``: behave exactly as ekka 0.8.1.9, without pyekka's extension.
    """

    delay_ms: int = AUTOHEAL_DEFAULT_DELAY_MS
    cluster_view_timeout: float = CLUSTER_VIEW_TIMEOUT_MS / 1000
    reboot_pause_ms: tuple[int, int] = (REBOOT_PAUSE_MIN_MS, REBOOT_PAUSE_MAX_MS)
    heal_rpc_timeout: float | None = None
    genuine_only: bool = False

    @classmethod
    def from_setting(cls, setting: Any, **options: Any) -> AutohealSettings | None:
        """From ekka's ``cluster_autoheal`` (``true``, ``false`` or a delay in ms);
        ``None`` when disabled."""
        delay = autoheal_delay(setting)
        return None if delay is None else cls(delay_ms=delay, **options)


def _is_pyekka_node(cluster: Cluster, node: Atom) -> bool:
    return cluster.db.view.kind(node) is NodeKind.PYEKKA


async def find_autoheal_leader(
    cluster: Cluster, *, genuine_only: bool = False, timeout: float | None = None
) -> Atom | None:
    """The node a pyekka node reports partitions to (pyekka's policy, spec 16.2):
    the oldest pyekka member, not ``down``, that answers ``true`` to rpc
    ``ekka_node:is_running(ekka)``; ``None`` when there is none.

    ``genuine_only``: ekka 0.8.1.9's rule, ``leader()`` if it answers ``true``.
    """
    me = cluster.node.name
    if genuine_only:
        leader = cluster.leader()
        if leader is None or leader == me:
            return leader
        running = await cluster.node.rpc(leader, _EKKA_NODE, _IS_RUNNING, [EKKA], timeout)
        return leader if running is True else None
    dead: set[Atom] = set()
    while True:
        leader = autoheal_leader(
            cluster.members(),
            alive=lambda n: n == me or n not in dead,
            eligible=lambda m: _is_pyekka_node(cluster, m.node),
        )
        if leader is None or leader == me:
            return leader
        if await cluster.node.rpc(leader, _EKKA_NODE, _IS_RUNNING, [EKKA], timeout) is True:
            return leader
        dead.add(leader)


class Autoheal:
    """The autoheal state of one node monitor (see the module doc).

    Every method runs in the node monitor's process; the split view is built in a
    background task and the heal runs in a process linked to the node monitor.
    """

    def __init__(self, monitor: NodeMonitor, settings: AutohealSettings) -> None:
        self.monitor = monitor
        self.settings = settings
        self.proc: Process | None = None
        """The heal process while it runs (ekka's ``#autoheal.proc``)."""
        self.role: str | None = None
        """``"leader"`` or ``"coordinator"`` once this node acted as one."""
        self.genuine = GenuineAutoheal(self)
        """The genuine nodes' domain (:mod:`pyekka.cluster.autoheal_genuine`)."""
        self._timer: asyncio.TimerHandle | None = None

    @property
    def _cluster(self) -> Cluster:
        return self.monitor.cluster

    @property
    def _me(self) -> Atom:
        return self.monitor.cluster.node.name

    def close(self) -> None:
        """Cancel the pending timer (the heal process dies with its linked monitor)."""
        self._cancel_timer()
        self.genuine.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def is_genuine(self, node: Atom) -> bool:
        """Whether ``node`` is a genuine ekka node this cluster is attached to."""
        return self._cluster.db.view.kind(node) is NodeKind.GENUINE

    # -- the leader ------------------------------------------------------------------

    def is_leader(self) -> bool:
        """Whether this node takes reports: genuine ``leader()`` or, with the
        extension, pyekka's autoheal leader by this node's own view."""
        members = self._cluster.members()
        if self._cluster.membership.leader() == self._me:
            return True
        if self.settings.genuine_only:
            return False
        connected = set(self._cluster.node.nodes())
        leader = autoheal_leader(
            members,
            alive=lambda n: n == self._me or n in connected,
            eligible=lambda m: _is_pyekka_node(self._cluster, m.node),
        )
        return leader == self._me

    def handle_report(self, reporter: Atom) -> None:
        """``{report_partition, Node}`` (spec 8.2 step 3)."""
        if self.proc is not None:
            log.debug("a heal process runs: report of %s ignored", reporter.name)
            return
        if self.is_genuine(reporter):
            self.genuine.handle_report(reporter)
            return
        if not self.is_leader():
            log.critical("I am not leader, but received partition report from %s", reporter.name)
            return
        log.warning("partition reported by %s", reporter.name)
        self._cancel_timer()
        self._timer = self.monitor.run_after(
            self.settings.delay_ms, (Atom("autoheal"), (CREATE_SPLITVIEW, self._me))
        )
        self.role = "leader"

    def handle_timer(self, msg: Any) -> None:
        """The ``{autoheal, Msg}`` timer message."""
        if self.genuine.handle_timer(msg):
            return
        if type(msg) is tuple and len(msg) == 2 and msg[0] == CREATE_SPLITVIEW:
            if msg[1] == self._me:
                self._timer = None
                self.monitor.background(self.create_splitview())
                return
            log.critical("I am not leader, but received: %s", format_term(msg))
            return
        log.critical("Unexpected msg: %s", format_term(msg))

    async def create_splitview(self) -> None:
        """Build the split view and send the heal order (spec 8.2 step 4)."""
        cluster = self._cluster
        db_nodes = cluster.db.db_nodes()
        connected = {self._me, *cluster.node.nodes()}
        missing = [n for n in db_nodes if n not in connected]
        if missing and self.settings.genuine_only:
            log.info("not all db nodes are connected (%s): retry later", _names(missing))
            self._timer = self.monitor.run_after(
                self.settings.delay_ms, (Atom("autoheal"), (CREATE_SPLITVIEW, self._me))
            )
            return
        views = await self.cluster_views(db_nodes)
        bad = [n for n, v in views.items() if v is None]
        members = cluster.members()
        if self.settings.genuine_only:
            if bad:
                log.critical("Bad nodes found when autoheal: %s", _names(bad))
                return
            answered = [v for v in views.values() if v is not None]
            sv = split_view(answered, self._me)
            coordinator = split_view_coordinator(sv, members)
            if coordinator is None:
                log.critical("no coordinator for the split view %s", _views_text(sv))
                return
            self.monitor.cast(coordinator, (Atom("heal_partition"), split_view_term(sv)))
            return
        plan = plan_heal(
            views,
            leader=self._me,
            members=members,
            can_coordinate=lambda n: _is_pyekka_node(cluster, n) and n in connected,
        )
        if plan is None:
            log.info("autoheal: nothing to heal (unreachable: %s)", _names(bad) or "none")
            return
        if plan.coordinator is None:
            log.critical("autoheal: no node can coordinate the heal of %s", _names(plan.reboot))
            return
        log.warning(
            "autoheal: keep %s, reboot %s (%s plan), coordinator %s",
            _names(plan.keep),
            _names(plan.reboot),
            "genuine" if plan.genuine else "pyekka's",
            plan.coordinator.name,
        )
        self.monitor.cast(plan.coordinator, plan.message)

    async def cluster_views(self, nodes: Sequence[Atom]) -> dict[Atom, ClusterView | None]:
        """``rpc:multicall(Nodes, ekka_mnesia, cluster_view, [], 30000)``; ``None`` for
        a node that did not answer with a view."""
        cluster = self._cluster
        timeout = self.settings.cluster_view_timeout

        async def one(node: Atom) -> ClusterView | None:
            if node == self._me:
                return cluster.db.cluster_view()
            reply = await cluster.node.rpc(node, _EKKA_MNESIA, _CLUSTER_VIEW, [], timeout)
            try:
                return ClusterView.from_term(reply)
            except ValueError:
                log.warning("no cluster view from %s: %s", node.name, format_term(reply))
                return None

        replies = await asyncio.gather(*(one(n) for n in nodes))
        return dict(zip(nodes, replies, strict=True))

    # -- the coordinator ----------------------------------------------------------

    def heal_partition(self, views: Sequence[ClusterView]) -> None:
        """``{heal_partition, SplitView}`` (spec 8.2 step 5)."""
        if self.proc is not None:
            log.critical("Unexpected heal_partition msg: %s", _views_text(views))
            return
        action = heal_partition(views, self._me)
        if not action.healable:
            log.critical("Cannot heal the partitions: %s", _views_text(views))
            return
        if action.reboot:
            log.info("Healing partition: %s", _views_text(views))
            self.start_heal(action.reboot)

    def heal_cluster(self, minority: Sequence[Atom], split_view_term: Any) -> None:
        """``{heal_cluster, Minority, SplitView}`` (ekka 0.8.1.14+, pyekka's plans)."""
        if self.proc is not None:
            log.critical("Unexpected heal_cluster msg: %s", format_term(list(minority)))
            return
        reboot = tuple(n for n in minority if n != self._me)
        log.info(
            "Healing cluster partition: reboot %s; split view %s",
            _names(reboot),
            format_term(split_view_term),
        )
        if reboot:
            self.start_heal(reboot)

    def start_heal(self, nodes: tuple[Atom, ...], *, genuine: bool = False) -> bool:
        """Start the heal process that reboots ``nodes``; whether it started.

        Genuine nodes are rebooted only with ``genuine`` (this node's own plan for
        the genuine domain); an order received from elsewhere never reboots them.
        """
        if self.proc is not None:
            log.critical("a heal process runs: not rebooting %s", _names(nodes))
            return False
        if not genuine:
            spared = [n for n in nodes if self.is_genuine(n)]
            if spared:
                log.critical("autoheal: not asking genuine nodes to shut down: %s", _names(spared))
                nodes = tuple(n for n in nodes if n not in spared)
        if not nodes:
            return False
        self.proc = self.monitor.proc_spawn_link(self._heal, nodes)
        self.role = "coordinator"
        return True

    def handle_exit(self, pid: Pid, reason: Any) -> bool:
        """An ``'EXIT'`` from a linked process: whether it was the heal process."""
        if self.proc is None or self.proc.pid != pid:
            return False
        self.proc = None
        if reason != Atom("normal"):
            log.critical("Autoheal process crashed: %s", format_term(reason))
        return True

    async def _heal(self, proc: Process, nodes: tuple[Atom, ...]) -> None:
        """``reboot_minority``: shut every node down, pause, reboot every node."""
        node = self._cluster.node
        timeout = self.settings.heal_rpc_timeout
        targets = []
        for target in nodes:
            if target == node.name:
                log.warning("autoheal: not asking this node (%s) to shut down", target.name)
            else:
                targets.append(target)
        for target in targets:
            ret = await node.rpc(target, _EKKA_CLUSTER, _HEAL, [_SHUTDOWN], timeout)
            log.critical("Shutdown %s for autoheal: %s", target.name, format_term(ret))
        low, high = self.settings.reboot_pause_ms
        await asyncio.sleep(random.randint(low, high) / 1000)
        for target in targets:
            ret = await node.rpc(target, _EKKA_CLUSTER, _HEAL, [_REBOOT], timeout)
            log.critical("Reboot %s for autoheal: %s", target.name, format_term(ret))


def _names(nodes: Sequence[Atom]) -> str:
    return ", ".join(n.name for n in nodes)


def _views_text(views: Sequence[ClusterView]) -> str:
    return format_term(split_view_term(views))
