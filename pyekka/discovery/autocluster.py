"""The autocluster loop: discover the cluster's nodes and join it (``ekka_autocluster``).

>>> autocluster = Autocluster(cluster, make_strategy(settings.cluster, node=..., cookie=...))
>>> await autocluster.start()                # rounds run in the background
>>> autocluster.status().to_json()           # what ``pyekka ctl status`` shows
>>> await autocluster.leave()                # leave the cluster, then unregister

One round follows ekka 0.8.1.9 (spec 11.2):

1. wait until the cluster's services run (at most ``ready_timeout``, then go on);
2. ``lock()`` the strategy: ``OK`` -> discover and join, then ``unlock()``;
   ``IGNORE`` -> wait a random 1..``ignore_delay_ms`` ms, then discover and join;
   an error -> this round ends;
3. ``discover()``; keep the nodes that are alive (this node, connected nodes, and
   nodes that answer a ping); if some are left and this node is alone, pick the
   target: the only node, or else the node of the oldest ``#member{}`` that
   ``ekka_membership:local_member()`` returns on every alive node (no target if a
   node does not answer the call at all); join it unless it is this node;
4. ``register()`` after every successful ``discover()``, joined or not.

Rounds repeat every ``interval`` seconds (ekka: 5 s) until the node is in a cluster
(it has company in the cluster view, or is attached to genuine ekka nodes). Every
error is logged and recorded in the round's :class:`RoundResult`; none ends the
loop. :meth:`Autocluster.leave` leaves the cluster and unregisters from the
strategy (an etcd node key is deleted). The status is also callable from other
nodes as ``pyekka_ctl:discovery()`` (a map, see :meth:`AutoclusterStatus.to_term`;
:func:`discovery_json` and :func:`discovery_rows` read it on the calling side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyekka.cluster.cluster import ClusterError
from pyekka.discovery.autocluster_round import RoundRecord, choose_oldest
from pyekka.discovery.autocluster_status import (
    AutoclusterState,
    AutoclusterStatus,
    RoundResult,
    discovery_json,
    discovery_rows,
)
from pyekka.discovery.mcast import McastStrategy
from pyekka.discovery.strategy import DiscoveryError, Outcome, Strategy
from pyekka.term import format_term
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.cluster.cluster import Cluster

__all__ = [
    "IGNORE_DELAY_MS",
    "MEMBER_CALL_TIMEOUT",
    "PING_TIMEOUT",
    "READY_TIMEOUT",
    "RETRY_INTERVAL",
    "STATUS_FUNCTION",
    "Autocluster",
    "AutoclusterState",
    "AutoclusterStatus",
    "RoundResult",
    "discovery_json",
    "discovery_rows",
]

log = logging.getLogger("pyekka.discovery.autocluster")

RETRY_INTERVAL = 5.0
"""Seconds between two rounds while the node is not in a cluster (ekka: 5000 ms)."""
IGNORE_DELAY_MS = 3000
"""A strategy without a lock waits ``1..IGNORE_DELAY_MS`` ms before discovering."""
READY_TIMEOUT = 10.0
"""How long a round waits for the cluster's services (ekka: 10 tries, 1 s apart)."""
MEMBER_CALL_TIMEOUT = 30.0
"""Seconds for the ``ekka_membership:local_member()`` calls (ekka's multicall)."""
PING_TIMEOUT = 10.0
"""Seconds for the ping that tells whether a discovered node is alive."""
STATUS_FUNCTION = ("pyekka_ctl", "discovery")
"""The node function (``module``, ``function``/0) that returns the status map."""

A = Atom


class Autocluster:
    """ekka's autocluster for ``cluster`` with ``strategy`` (``None``: manual).

    ``enabled=False`` is ekka's ``cluster_enable = false``. The timings default to
    ekka's (:data:`RETRY_INTERVAL`, :data:`IGNORE_DELAY_MS`, :data:`READY_TIMEOUT`,
    :data:`MEMBER_CALL_TIMEOUT`, :data:`PING_TIMEOUT`; a configured node takes them
    from the ``cluster.autocluster.*`` keys, see
    :func:`pyekka.discovery.run.autocluster_options`); ``rng`` draws the random
    wait; ``on_round`` is called with every :class:`RoundResult`. The autocluster
    owns the strategy: :meth:`stop` closes it.
    """

    def __init__(
        self,
        cluster: Cluster,
        strategy: Strategy | None,
        *,
        enabled: bool = True,
        interval: float = RETRY_INTERVAL,
        ignore_delay_ms: int = IGNORE_DELAY_MS,
        ready_timeout: float = READY_TIMEOUT,
        member_timeout: float = MEMBER_CALL_TIMEOUT,
        ping_timeout: float = PING_TIMEOUT,
        rng: random.Random | None = None,
        on_round: Callable[[RoundResult], None] | None = None,
    ) -> None:
        if ignore_delay_ms < 1:
            raise ValueError("ignore_delay_ms must be at least 1")
        self.cluster = cluster
        self.strategy = strategy
        self.enabled = enabled and strategy is not None
        self.interval = interval
        self.ignore_delay_ms = ignore_delay_ms
        self.ready_timeout = ready_timeout
        self.member_timeout = member_timeout
        self.ping_timeout = ping_timeout
        self._rng = rng or random.Random()
        self.on_round = on_round
        self.state = AutoclusterState.IDLE if self.enabled else AutoclusterState.DISABLED
        self.rounds = 0
        self.last_result: RoundResult | None = None
        self._round_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._functions_registered = False

    def __repr__(self) -> str:
        return f"<Autocluster {self.strategy_name} {self.state.value}>"

    @property
    def strategy_name(self) -> str:
        """The strategy's name (``manual`` without one)."""
        return "manual" if self.strategy is None else self.strategy.name

    @property
    def node(self) -> Any:
        """The cluster's node."""
        return self.cluster.node

    # -- state -------------------------------------------------------------------------

    def in_cluster(self) -> bool:
        """``ekka_mnesia:is_node_in_cluster()``: company in the view, or attached to
        genuine ekka nodes."""
        cluster = self.cluster
        return cluster.db_nodes() != [self.node.name] or bool(cluster.genuine_nodes())

    def status(self) -> AutoclusterStatus:
        """The strategy, the loop's state and the last round's result."""
        detail = "" if self.strategy is None else repr(self.strategy)
        return AutoclusterStatus(
            self.strategy_name, detail, self.state, self.rounds, self.last_result
        )

    def _set_state(self, state: AutoclusterState) -> None:
        self.state = state
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[Autocluster], bool], timeout: float | None = 30.0
    ) -> None:
        """Wait until ``predicate(self)`` holds, re-checked after every state change and
        round (``TimeoutError`` after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Register ``pyekka_ctl:discovery/0`` and, if enabled, start the rounds.

        An mcast strategy's responder is opened now, as ekka opens it at boot
        (``cluster_enable`` or not), so that the node answers pings before its first
        round (an error is logged; the rounds try again).
        """
        if not self._functions_registered:
            self.node.register_function(*STATUS_FUNCTION, lambda: self.status().to_term())
            self._functions_registered = True
        if isinstance(self.strategy, McastStrategy):  # even with cluster_enable off
            try:
                await self.strategy.start()
            except DiscoveryError as exc:
                log.error("autocluster: %s", exc)
        if not self.enabled or (self._task is not None and not self._task.done()):
            return
        log.info("autocluster: %s discovery with %r", self.strategy_name, self.strategy)
        self._task = asyncio.create_task(self._loop(), name="pyekka-autocluster")

    async def _stop_loop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._set_state(AutoclusterState.STOPPED)

    async def stop(self, *, unregister: bool = False) -> None:
        """Stop the rounds, unregister if asked, close the strategy (idempotent).

        Without ``unregister`` an etcd v2 key expires after its TTL, as with ekka
        (a v3 key goes with the revoked lease).
        """
        await self._stop_loop()
        if unregister:
            await self.unregister()
        if self._functions_registered:
            self.node.functions.unregister(*STATUS_FUNCTION)
            self._functions_registered = False
        if self.strategy is not None:
            try:
                await self.strategy.close()
            except Exception:
                log.exception("autocluster: closing the %s strategy failed", self.strategy_name)
        if self.enabled:
            self._set_state(AutoclusterState.STOPPED)

    async def __aenter__(self) -> Autocluster:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def unregister(self) -> Outcome | None:
        """``ekka_autocluster:unregister_node()``: withdraw from the strategy.

        Errors are logged (``None`` is returned then, and without a strategy).
        """
        if self.strategy is None:
            return None
        try:
            outcome = await self.strategy.unregister()
        except DiscoveryError as exc:
            log.error("autocluster: unregister error: %s", exc)
            return None
        log.info("autocluster: unregistered from %s discovery: %s", self.strategy_name, outcome)
        return outcome

    async def leave(self) -> None:
        """``ekka:leave()`` then unregister: stop the rounds, leave the cluster
        (:class:`~pyekka.cluster.cluster.ClusterError` as ``Cluster.leave``), and
        withdraw from the strategy so that no node discovers this one again. If the
        leave fails, rounds that were running go on."""
        running = self._task is not None and not self._task.done()
        await self._stop_loop()
        try:
            await self.cluster.leave()
        except BaseException:
            if running:
                self._task = asyncio.create_task(self._loop(), name="pyekka-autocluster")
            raise
        await self.unregister()
        if self.enabled:
            self._set_state(AutoclusterState.STOPPED)

    # -- the loop ----------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self.run_round()
            if self.in_cluster():
                log.info("autocluster: %s is in a cluster", self.node.name.name)
                self._set_state(AutoclusterState.DONE)
                return
            self._set_state(AutoclusterState.SLEEPING)
            await asyncio.sleep(self.interval)

    async def _wait_ready(self) -> None:
        self._set_state(AutoclusterState.WAITING)
        try:
            await self.cluster.wait_for(lambda: self.cluster.running, self.ready_timeout)
        except TimeoutError:
            log.warning(
                "autocluster: the cluster services are not running after %gs; going on",
                self.ready_timeout,
            )

    async def run_round(self) -> RoundResult:
        """One round (see the module doc); never raises but for cancellation."""
        async with self._round_lock:  # ekka's autocluster_lock: one round at a time
            await self._wait_ready()
            self._set_state(AutoclusterState.RUNNING)
            record = RoundRecord()
            try:
                await self._lock_and_join(record)
            except Exception as exc:
                log.exception("autocluster: round failed")
                record.errors.append(f"unexpected {type(exc).__name__}: {exc}")
            result = record.result(self.in_cluster())
            self.rounds += 1
            self.last_result = result
            log.debug("autocluster round %d: %s", self.rounds, result.summary())
            self._changed.set()
            if self.on_round is not None:
                try:
                    self.on_round(result)
                except Exception:
                    log.exception("autocluster: the round callback failed")
            return result

    async def _lock_and_join(self, record: RoundRecord) -> None:
        assert self.strategy is not None
        try:
            outcome = await self.strategy.lock()
        except DiscoveryError as exc:
            record.lock = "error"
            record.error(f"stopped for lock error: {exc}")
            return
        record.lock = outcome.value
        if outcome is Outcome.OK:
            try:
                await self._discover_and_join(record)
            finally:
                try:
                    await self.strategy.unlock()
                except DiscoveryError as exc:
                    record.error(f"unlock error: {exc}")
        else:
            await asyncio.sleep(self._rng.randint(1, self.ignore_delay_ms) / 1000)
            await self._discover_and_join(record)

    async def _discover_and_join(self, record: RoundRecord) -> None:
        assert self.strategy is not None
        try:
            nodes = await self.strategy.discover()
        except DiscoveryError as exc:
            record.error(f"discovery error: {exc}")
            return
        record.discovered = list(nodes)
        alive = await asyncio.gather(*(self._is_aliving(n) for n in nodes))
        record.alive = [n for n, up in zip(nodes, alive, strict=True) if up]
        await self._maybe_join(record)
        try:
            record.registered = (await self.strategy.register()).value
        except DiscoveryError as exc:
            record.registered = "error"
            record.error(f"register error: {exc}")

    async def _is_aliving(self, name: str) -> bool:
        """``ekka_node:is_aliving/1``: this node, a connected node, or a ``pong``."""
        node = A(name)
        if node == self.node.name or node in self.node.nodes():
            return True
        try:
            return bool(await self.node.ping(node, self.ping_timeout))
        except Exception as exc:  # a name that cannot even be looked up is not alive
            log.info("autocluster: %s is not alive: %s", name, exc)
            return False

    async def _maybe_join(self, record: RoundRecord) -> None:
        if not record.alive or self.in_cluster():
            return
        target = await self._find_oldest(record)
        if target is None or target == self.node.name:
            return
        record.target = target.name
        try:
            record.joined = await self.cluster.join(target)
        except ClusterError as exc:
            record.error(f"cannot join {target.name}: {format_term(exc.reason)}")

    async def _find_oldest(self, record: RoundRecord) -> Atom | None:
        nodes = [A(n) for n in record.alive]
        if len(nodes) == 1:
            return nodes[0]
        replies = await asyncio.gather(
            *(
                self.node.rpc(n, "ekka_membership", "local_member", [], self.member_timeout)
                for n in nodes
            )
        )
        return choose_oldest(record, nodes, replies)
