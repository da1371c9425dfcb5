"""Autoclean as ``ekka_node_monitor`` runs it (``ekka_autoclean`` 0.8.1.9, spec 9).

Every ``Expiry div 4`` ms (:func:`~pyekka.cluster.autoclean.check_interval_ms`) the
node monitor force-leaves each ``down`` member whose entry was last updated more than
``Expiry`` ms ago (:func:`~pyekka.cluster.autoclean.nodes_to_clean`), with
:meth:`Cluster.force_leave <pyekka.cluster.cluster.Cluster.force_leave>`: a dead
pyekka member is removed from the cluster view on every member (and learns it when
it comes back); a genuine ekka node the cluster is attached to is detached (pyekka
nodes stop announcing themselves to it; its own mnesia cluster is not touched).
A ``down`` entry of a node that is not in the cluster view fails with
``node_not_in_cluster`` and stays, exactly as on a genuine node (spec 9); the check
simply repeats.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from pyekka.cluster.autoclean import check_interval_ms, nodes_to_clean
from pyekka.cluster.member import timestamp_from_us
from pyekka.term import format_term
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.cluster.service_node_monitor import NodeMonitor

__all__ = ["AUTOCLEAN", "Autoclean"]

log = logging.getLogger("pyekka.cluster.autoclean")

AUTOCLEAN = Atom("autoclean")
"""The node monitor's timer message."""


class Autoclean:
    """The autoclean state of one node monitor: ``expiry_ms`` and its timer."""

    def __init__(self, monitor: NodeMonitor, expiry_ms: int) -> None:
        self.monitor = monitor
        self.expiry_ms = expiry_ms
        self.interval_ms = check_interval_ms(expiry_ms)
        self.cleaned: list[Atom] = []
        """Nodes force-left so far (oldest first)."""
        self._in_flight: set[Atom] = set()

    def arm(self) -> None:
        """Schedule the next check (``timer_backoff``)."""
        self.monitor.run_after(self.interval_ms, AUTOCLEAN)

    def check(self) -> None:
        """Force-leave the expired ``down`` members, then re-arm (``check/1``)."""
        now = timestamp_from_us(time.time_ns() // 1000)
        members = self.monitor.cluster.members()
        for node in nodes_to_clean(members, now, self.expiry_ms):
            if node not in self._in_flight:
                self._in_flight.add(node)
                self.monitor.background(self._force_leave(node))
        self.arm()

    async def _force_leave(self, node: Atom) -> None:
        from pyekka.cluster.cluster import ClusterError

        try:
            await self.monitor.cluster.force_leave(node)
        except ClusterError as exc:
            log.info("autoclean of %s: %s", node.name, format_term(exc.reason))
        else:
            log.warning("autoclean: %s was down for more than %d ms", node.name, self.expiry_ms)
            self.cleaned.append(node)
        finally:
            self._in_flight.discard(node)
