"""Autoheal of GENUINE ekka nodes by a pyekka node that is their leader (spec 8, 16.6;
issue 4).

A genuine ekka 0.8.1.9 node reports a partition to its ``leader()`` (the member with
the oldest guid) once rpc ``ekka_node:is_running(Leader, ekka)`` says ``true`` (see
:mod:`pyekka.cluster.policy`). A pyekka node with ``GENUINE`` guids, older than the
genuine nodes, is that leader; under ``DEFER`` it never is, and genuine nodes heal
themselves. The pyekka leader heals the genuine nodes as a **separate domain**: the
split view holds the views of the genuine nodes the cluster is attached to
(``ekka_mnesia:cluster_view()`` there, which lists genuine mnesia nodes only), never
the pyekka db nodes' views, and the reverse (a healthy mixed cluster would look split
if the two were mixed).

:func:`plan_genuine_heal` (sans-I/O) decides:

* the split view genuine 0.8.1.9 heals (a clean two-way split, or a first view that
  sees everyone running) -> ``{heal_partition, SplitView}`` cast to
  ``ekka_node_monitor`` on the genuine coordinator (the oldest member of the first
  view's running nodes), exactly as a genuine leader; the split view is ordered as
  a genuine leader whose node is this pyekka node orders it (it is in no view);
* anything else (three sides or more, overlapping views, genuine nodes that do not
  answer) -> pyekka's plan (:func:`~pyekka.cluster.heal_plan.plan_heal`: keep the
  largest fully connected group), run by THIS pyekka node: its heal process rpcs
  ``ekka_cluster:heal(shutdown)`` on each genuine minority node, pauses, then
  ``ekka_cluster:heal(reboot)`` on each. With ``genuine_only`` such plans are only
  logged.

These are the only situations in which a pyekka node asks a genuine node to shut
down: heal orders received from other nodes never reboot genuine nodes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pyekka.cluster.heal_plan import HealPlan, plan_heal
from pyekka.cluster.member import Member
from pyekka.cluster.split_view import ClusterView
from pyekka.term import format_term
from pyekka.term.order import term_sort_key
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.cluster.service_autoheal import Autoheal

__all__ = ["GENUINE_DOMAIN", "GenuineAutoheal", "plan_genuine_heal"]

log = logging.getLogger("pyekka.cluster.autoheal")

GENUINE_DOMAIN = Atom("genuine")
"""The third element of the genuine domain's timer message
``{autoheal, {create_splitview, node(), genuine}}``."""
_AUTOHEAL = Atom("autoheal")
_CREATE_SPLITVIEW = Atom("create_splitview")


def plan_genuine_heal(
    views: Mapping[Atom, ClusterView | None],
    *,
    leader: Atom,
    members: Iterable[Member] = (),
    genuine_only: bool = False,
) -> HealPlan | None:
    """The pyekka leader's decision for the genuine nodes' ``views`` (``None``: no
    answer); ``None`` when there is nothing to heal.

    A plan with ``genuine`` set is cast to its genuine coordinator; any other plan has
    ``leader`` as coordinator (this node reboots the minority itself), or ``None``
    with ``genuine_only`` (ekka 0.8.1.9 gives up).
    """
    plan = plan_heal(views, leader=leader, members=members, can_coordinate=lambda _: False)
    if plan is None or plan.genuine:
        return plan
    return replace(plan, coordinator=None if genuine_only else leader)


class GenuineAutoheal:
    """The genuine domain of one :class:`~pyekka.cluster.service_autoheal.Autoheal`:
    its reports, its timer and the plans acted on (runs in the node monitor)."""

    def __init__(self, autoheal: Autoheal) -> None:
        self.autoheal = autoheal
        self.plans: list[HealPlan] = []
        """The plans this node acted on as the genuine nodes' leader, oldest first."""
        self._timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        """Cancel the pending timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def handle_report(self, reporter: Atom) -> None:
        """A genuine node's ``{report_partition, Node}``: taken only by genuine
        ``leader()`` (spec 8.2 step 3); each report restarts the delay."""
        monitor = self.autoheal.monitor
        me = monitor.cluster.node.name
        if monitor.cluster.membership.leader() != me:
            log.critical("I am not leader, but received partition report from %s", reporter.name)
            return
        log.warning("partition of the genuine nodes reported by %s", reporter.name)
        self.close()
        msg = (_AUTOHEAL, (_CREATE_SPLITVIEW, me, GENUINE_DOMAIN))
        self._timer = monitor.run_after(self.autoheal.settings.delay_ms, msg)
        self.autoheal.role = "leader"

    def handle_timer(self, msg: Any) -> bool:
        """Whether ``msg`` (of ``{autoheal, Msg}``) was this domain's timer; if so,
        the split view is built in the background."""
        monitor = self.autoheal.monitor
        if msg != (_CREATE_SPLITVIEW, monitor.cluster.node.name, GENUINE_DOMAIN):
            return False
        self._timer = None
        monitor.background(self.create_splitview(monitor.cluster.db.view.genuine_nodes()))
        return True

    async def create_splitview(self, nodes: Iterable[Atom]) -> HealPlan | None:
        """Build the genuine nodes' split view and act on :func:`plan_genuine_heal`'s
        plan; the plan acted on, if any."""
        autoheal = self.autoheal
        monitor = autoheal.monitor
        me = monitor.cluster.node.name
        targets = sorted(set(nodes) - {me}, key=term_sort_key)
        views = await autoheal.cluster_views(targets)
        plan = plan_genuine_heal(
            views,
            leader=me,
            members=monitor.cluster.members(),
            genuine_only=autoheal.settings.genuine_only,
        )
        bad = [n.name for n, v in views.items() if v is None]
        if plan is None:
            log.info("autoheal (genuine nodes): nothing to heal (unreachable: %s)", bad or "none")
            return None
        if plan.coordinator is None:
            shown = {n: None if v is None else v.to_term() for n, v in views.items()}
            log.critical("Cannot heal the genuine nodes' partitions: %s", format_term(shown))
            return None
        log.warning(
            "autoheal (genuine nodes): keep %s, reboot %s (%s plan), coordinator %s",
            ", ".join(n.name for n in plan.keep),
            ", ".join(n.name for n in plan.reboot),
            "genuine" if plan.genuine else "pyekka's",
            plan.coordinator.name,
        )
        if plan.genuine:
            monitor.cast(plan.coordinator, plan.message)
        elif not autoheal.start_heal(plan.reboot, genuine=True):
            return None
        self.plans.append(plan)
        return plan
