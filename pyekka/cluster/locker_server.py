"""One ``ekka_locker`` server: :class:`LockerServer` (see :mod:`pyekka.cluster.service_locker`).

A locker is one process registered under its name (``ekka_locker``, or another name
such as EMQX's ``emqx_cm_locker``) owning its lock table
(:class:`~pyekka.cluster.locker_core.LockTable`): when the process dies the table is
gone. The server makes the table decisions of the RPC requests
:class:`~pyekka.cluster.service_locker.LockerService` hands it, each without awaiting
(atomic per table, as ekka's ETS operations are), and watches the owners:

* ekka's lease (spec 10.3): every ``2 x lease`` a check monitors the owners of
  entries older than the lease and, at the next check that still sees one, has the
  service ask its node for ``erlang:process_info/2`` (logged) and kill it; an owner
  that goes down loses its entries;
* pyekka's extension (``monitor_owners``): every owner is monitored from its first
  granted lock, so a lock dies with its owner at once; the monitor is dropped when
  the owner holds nothing more in that table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pyekka.cluster.lock import Lock
from pyekka.cluster.locker_core import LockTable
from pyekka.node.exits import DOWN, ProcessExit, format_pid
from pyekka.node.gen_server import GEN_CALL, GEN_CAST, reply
from pyekka.term import format_term
from pyekka.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from pyekka.cluster.service_locker import LockerService
    from pyekka.node.process import Process

__all__ = ["LockerServer", "now_ms"]

log = logging.getLogger("pyekka.cluster.locker")

_STOP = Atom("stop")
_OK = Atom("ok")
_IGNORE = Atom("ignore")
_WATCH = Atom("$pyekka_locker_watch")


def now_ms() -> int:
    """``erlang:system_time(millisecond)``: the clock of lock ``created`` fields."""
    return time.time_ns() // 1_000_000


def _is_from(term: Any) -> bool:
    return type(term) is tuple and len(term) == 2 and type(term[0]) is Pid


class LockerServer:
    """One locker: its registered process, its table and the owners it watches.

    Created by :meth:`LockerService.start_locker`. ``lease_ms`` is ekka's
    ``LeaseTime``; the check runs every ``2 x lease_ms`` from the start.
    """

    def __init__(
        self, service: LockerService, name: Atom, lease_ms: int, monitor_owners: bool
    ) -> None:
        self.service = service
        self.name = name
        self.lease_ms = lease_ms
        self.monitor_owners = monitor_owners
        self.table = LockTable(name)
        self.process: Process | None = None
        self._held: dict[Pid, int] = {}
        self._monitors: dict[Pid, Reference] = {}

    def __repr__(self) -> str:
        return f"<LockerServer {self.name.name} {len(self.table)} locks>"

    @property
    def alive(self) -> bool:
        """Whether the locker process runs (its table exists)."""
        return self.process is not None and self.process.is_alive

    def watched(self) -> list[Pid]:
        """The owners this locker monitors now."""
        return list(self._monitors)

    # -- table decisions (synchronous: atomic per table) -------------------------------

    def acquire(self, request: Lock) -> bool:
        """``acquire_lock/2`` on this table."""
        fresh = self.table.lookup(request.resource) is None
        granted = self.table.acquire(request)
        if granted and fresh:
            self._count(request.owner, 1)
        return granted

    def release(self, request: Lock) -> bool:
        """``release_lock/2`` on this table."""
        held = self.table.lookup(request.resource)
        released = self.table.release(request)
        if released and held is not None:
            self._count(request.owner, -1)
        return released

    def force_release(self, resource: Any) -> Lock | None:
        """Delete the entry of ``resource`` whoever holds it."""
        entry = self.table.force_release(resource)
        if entry is not None:
            self._count(entry.owner, -1)
        return entry

    def _count(self, owner: Pid, delta: int) -> None:
        before = self._held.get(owner, 0)
        after = before + delta
        if after > 0:
            self._held[owner] = after
        else:
            self._held.pop(owner, None)
        self.service._notify()
        if self.monitor_owners and (before == 0 or after == 0) and self.process is not None:
            # The locker process (re)considers its monitor of this owner.
            self.process.runtime.send(self.process.pid, (_WATCH, owner))

    def _forget(self, removed: Iterable[Lock]) -> None:
        for entry in removed:
            n = self._held.get(entry.owner, 0) - 1
            if n > 0:
                self._held[entry.owner] = n
            else:
                self._held.pop(entry.owner, None)
        self.service._notify()

    # -- the process -------------------------------------------------------------------

    async def run(self, proc: Process) -> None:
        """The locker process: lease checks, owner monitors, ``stop``."""
        loop = asyncio.get_running_loop()
        interval = 2 * self.lease_ms / 1000
        next_check = loop.time() + interval
        try:
            while True:
                try:
                    msg = await proc.receive(timeout=max(0.0, next_check - loop.time()))
                except TimeoutError:
                    next_check += interval
                    self._check_lease(proc)
                    continue
                self._handle(proc, msg)
        finally:
            self.service._locker_gone(self)

    def _handle(self, proc: Process, msg: Any) -> None:
        if type(msg) is not tuple:
            log.error("locker %s: unexpected info %s", self.name.name, format_term(msg))
            return
        if len(msg) == 2 and msg[0] == _WATCH and type(msg[1]) is Pid:
            self._reconcile(proc, msg[1])
        elif len(msg) == 5 and msg[0] == DOWN and type(msg[1]) is Reference:
            self._owner_down(msg[3], msg[1])
        elif len(msg) == 3 and msg[0] == GEN_CALL and _is_from(msg[1]):
            if msg[2] == _STOP:
                reply(proc, msg[1], _OK)
                raise ProcessExit(Atom("normal"))
            log.error("locker %s: unexpected call %s", self.name.name, format_term(msg[2]))
            reply(proc, msg[1], _IGNORE)
        elif len(msg) == 2 and msg[0] == GEN_CAST:
            log.error("locker %s: unexpected cast %s", self.name.name, format_term(msg[1]))
        else:
            log.error("locker %s: unexpected info %s", self.name.name, format_term(msg))

    def _reconcile(self, proc: Process, owner: Pid) -> None:
        wanted = self._held.get(owner, 0) > 0
        ref = self._monitors.get(owner)
        if wanted and ref is None:
            self._monitors[owner] = proc.monitor(owner)
        elif not wanted and ref is not None:
            del self._monitors[owner]
            proc.demonitor(ref, flush=True)
            self.table.release_owner(owner)  # holds nothing: only drops lease tracking
        self.service._notify()

    def _owner_down(self, owner: Any, ref: Reference) -> None:
        if type(owner) is not Pid or self._monitors.get(owner) != ref:
            return
        del self._monitors[owner]
        if self.monitor_owners:
            removed = self.table.release_owner(owner)
        else:
            removed = self.table.owner_down(owner)
        if removed:
            log.info(
                "locker %s: owner %s down, released %d lock(s)",
                self.name.name,
                format_pid(owner),
                len(removed),
            )
            self._forget(removed)

    def _check_lease(self, proc: Process) -> None:
        actions = self.table.check_lease(now_ms(), self.lease_ms)
        for owner in actions.monitor:
            if owner not in self._monitors:
                self._monitors[owner] = proc.monitor(owner)
        for owner, resource in actions.kill:
            proc.runtime.spawn(self.service._force_kill, self.name, owner, resource)
        self.service._notify()
