"""The lock servers of a pyekka node: ``ekka_locker`` and its RPC surface (spec 10.1, 10.3).

A :class:`LockerService` makes a :class:`~pyekka.node.node.Node` serve locks the way a
genuine ekka 0.8.1.9 node does:

* one process per locker name (``ekka_locker`` by default; more on demand, such as
  EMQX's ``emqx_cm_locker``), registered under that name and owning its lock table
  (:class:`~pyekka.cluster.locker_core.LockTable`): when the process dies the table
  is gone, and requests for it are granted without storing anything, as for a
  genuine node whose locker is not running;
* the RPC entry points other nodes call, for *any* locker name:
  ``ekka_locker:acquire_lock(Name, LockObj, Piggyback)`` -> ``{Bool, [Elem]}``,
  ``ekka_locker:acquire_lock(Name, LockObj)`` -> ``Bool`` and
  ``ekka_locker:release_lock(Name, LockObj)`` -> ``{Bool, [node()]}``;
* ekka's lease (spec 10.3): every ``2 x lease`` a check monitors the owners of
  entries older than the lease and, at the next check that still sees one, asks its
  node for ``erlang:process_info/2`` (logged) and kills it with an exit signal
  ``kill``; an owner that goes down loses its entries;
* pyekka's extension (issue 4, on by default, ``monitor_owners``): every owner is
  monitored from its first granted lock, local or remote, so a lock dies with its
  owner at once rather than only after the lease; the monitor is dropped when the
  owner holds nothing more in that table;
* :meth:`LockerService.force_release`, an operator's way to free a resource.

Every table decision is made without awaiting in between, so it is atomic per table
as ekka's ETS operations are. A piggyback ``{M, F, Args}`` is applied through the
node's function registry (``erlang:node/0`` and whatever Python code registered).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pyekka.cluster.constants import EKKA_LOCKER, LEASE_TIME_MS, UNDEFINED
from pyekka.cluster.lock import Lock, lock_reply, parse_piggyback
from pyekka.cluster.locker_core import LockTable
from pyekka.node.exits import (
    DOWN,
    KILL,
    BadArg,
    ErlangError,
    ErlangThrow,
    ProcessExit,
    format_pid,
)
from pyekka.node.functions import ERROR, EXIT, RETURN, THROW
from pyekka.node.gen_server import GEN_CALL, GEN_CAST, reply
from pyekka.term import format_term
from pyekka.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from pyekka.node.node import Node
    from pyekka.node.process import Process

__all__ = [
    "ACQUIRE_LOCK",
    "PROCESS_INFO_ITEMS",
    "RELEASE_LOCK",
    "LockerServer",
    "LockerService",
    "now_ms",
]

log = logging.getLogger("pyekka.cluster.locker")

ACQUIRE_LOCK = Atom("acquire_lock")
RELEASE_LOCK = Atom("release_lock")
PROCESS_INFO_ITEMS = [Atom("status"), Atom("message_queue_len"), Atom("current_stacktrace")]
"""What the lease check asks of an owner's node before killing it (spec 10.3)."""

_ERLANG = Atom("erlang")
_PROCESS_INFO = Atom("process_info")
PYEKKA_LOCKER = Atom("pyekka_locker")
IS_PINNED = Atom("is_pinned")
"""``pyekka_locker:is_pinned(Owner)``: a pyekka lease check asks the owner's node
before killing it; ``true`` spares an owner that holds its locks on purpose until it
releases them (the locks of ``pyekka ctl lock``). Genuine ekka nodes do not ask, and an
owner on a genuine node never answers ``true``."""
_FUNCTION_CLAUSE = Atom("function_clause")
_STOP = Atom("stop")
_OK = Atom("ok")
_IGNORE = Atom("ignore")
_WATCH = Atom("$pyekka_locker_watch")
_PROCESS_INFO_TIMEOUT = 5.0
_MISSING: Any = object()


def now_ms() -> int:
    """``erlang:system_time(millisecond)``: the clock of lock ``created`` fields."""
    return time.time_ns() // 1_000_000


def _parse_request(term: Any) -> Lock:
    try:
        return Lock.from_term(term)
    except ValueError:
        raise ErlangError(_FUNCTION_CLAUSE) from None


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


class LockerService:
    """The lock servers of one node and the ``ekka_locker`` RPC functions.

    ``lease_ms`` is the lease of new lockers (ekka: 15000); ``monitor_owners``
    turns on pyekka's owner monitoring from the first lock (``False``: only ekka's
    lease-time monitoring). ``names`` are the lockers :meth:`start` starts (more with
    :meth:`start_locker`). Use ``await service.start()`` after the node started.
    """

    def __init__(
        self,
        node: Node,
        names: Iterable[Atom | str] = (EKKA_LOCKER,),
        *,
        lease_ms: int = LEASE_TIME_MS,
        monitor_owners: bool = True,
    ) -> None:
        if lease_ms <= 0:
            raise ValueError(f"the lease must be positive, not {lease_ms}")
        self.node = node
        self.initial_names = [Atom(n) if isinstance(n, str) else n for n in names]
        self.lease_ms = lease_ms
        self.monitor_owners = monitor_owners
        self._servers: dict[Atom, LockerServer] = {}
        self._changed = asyncio.Event()
        self._registered_process_info = False
        self._pinned: set[Pid] = set()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, cluster: object = None) -> None:
        """Register the RPC functions and start the lockers named at construction.

        ``cluster`` is ignored: the signature is that of a
        :class:`~pyekka.cluster.cluster.ClusterService`, so that
        ``cluster.add_service(service)`` starts and stops the lockers with the
        cluster's services, as ``ekka_locker`` lives and dies with ekka.
        """
        functions = self.node.functions
        functions.register(EKKA_LOCKER, ACQUIRE_LOCK, self.acquire_lock)
        functions.register(EKKA_LOCKER, RELEASE_LOCK, self.release_lock)
        functions.register(PYEKKA_LOCKER, IS_PINNED, self.is_pinned)
        if functions.lookup(_ERLANG, _PROCESS_INFO, 2) is None:
            functions.register(_ERLANG, _PROCESS_INFO, self._process_info)
            self._registered_process_info = True
        for name in self.initial_names:
            self.start_locker(name)

    async def stop(self, *, withdraw: bool = False) -> None:
        """Stop every locker: their locks are gone.

        The RPC functions stay, answering as a genuine node whose locker does not
        run (granted, nothing stored): a caller must never get ``{badrpc, _}``, which
        crashes genuine 0.8.1.9 clients (spec 16.5). ``withdraw`` removes them too.
        """
        for name in list(self._servers):
            await self.stop_locker(name)
        if withdraw:
            self.node.functions.unregister(EKKA_LOCKER, ACQUIRE_LOCK)
            self.node.functions.unregister(EKKA_LOCKER, RELEASE_LOCK)
            self.node.functions.unregister(PYEKKA_LOCKER, IS_PINNED)
            if self._registered_process_info:
                self.node.functions.unregister(_ERLANG, _PROCESS_INFO)
                self._registered_process_info = False

    async def __aenter__(self) -> LockerService:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start_locker(self, name: Atom | str, *, lease_ms: int | None = None) -> LockerServer:
        """Start the locker ``name`` (registered under it); the running one if any."""
        atom = Atom(name) if isinstance(name, str) else name
        server = self._servers.get(atom)
        if server is not None and server.alive:
            return server
        lease = self.lease_ms if lease_ms is None else lease_ms
        if lease <= 0:
            raise ValueError(f"the lease must be positive, not {lease}")
        server = LockerServer(self, atom, lease, self.monitor_owners)
        server.process = self.node.runtime.spawn(server.run, name=atom)
        self._servers[atom] = server
        return server

    async def stop_locker(self, name: Atom | str) -> None:
        """Stop the locker ``name``: its locks are gone."""
        atom = Atom(name) if isinstance(name, str) else name
        server = self._servers.get(atom)
        if server is None or server.process is None:
            return
        if server.process.is_alive:
            self.node.runtime.exit(server.process.pid, KILL)
        await server.process.wait()
        self._locker_gone(server)

    def _locker_gone(self, server: LockerServer) -> None:
        if self._servers.get(server.name) is server:
            del self._servers[server.name]
        self._notify()

    def locker(self, name: Atom | str = EKKA_LOCKER) -> LockerServer | None:
        """The running locker ``name``, if any."""
        atom = Atom(name) if isinstance(name, str) else name
        server = self._servers.get(atom)
        return server if server is not None and server.alive else None

    def names(self) -> list[Atom]:
        """The names of the running lockers."""
        return [name for name, server in self._servers.items() if server.alive]

    # -- the RPC surface (spec 10.1) ----------------------------------------------------

    async def acquire_lock(self, name: Any, lock: Any, piggyback: Any = _MISSING) -> Any:
        """``ekka_locker:acquire_lock/2,3``: ``Bool``, or ``{Bool, [Node | {Node, Result}]}``.

        The piggyback is applied whether the lock was granted or not; if it fails,
        the call fails (the entry stored by this request stays, as in ekka).
        """
        request = _parse_request(lock)
        server = self.locker(name) if type(name) is Atom else None
        granted = True if server is None else server.acquire(request)
        if piggyback is _MISSING:
            return granted
        try:
            mfa = parse_piggyback(piggyback)
        except ValueError:
            raise ErlangError(_FUNCTION_CLAUSE) from None
        if mfa is None:
            return lock_reply(granted, self.node.name)
        result = await self._apply(mfa.module, mfa.function, list(mfa.args))
        return lock_reply(granted, self.node.name, result)

    def release_lock(self, name: Any, lock: Any) -> tuple:
        """``ekka_locker:release_lock/2``: ``{Bool, [node()]}``."""
        request = _parse_request(lock)
        server = self.locker(name) if type(name) is Atom else None
        released = True if server is None else server.release(request)
        return lock_reply(released, self.node.name)

    async def _apply(self, module: Atom, function: Atom, args: list) -> Any:
        outcome = await self.node.functions.apply(module, function, args)
        if outcome.kind == RETURN:
            return outcome.value
        if outcome.kind == THROW:
            raise ErlangThrow(outcome.value)
        if outcome.kind == EXIT:
            raise ProcessExit(outcome.value)
        assert outcome.kind == ERROR
        raise ErlangError(outcome.value)

    # -- local API ------------------------------------------------------------------------

    def lookup(self, resource: Any, name: Atom | str = EKKA_LOCKER) -> Lock | None:
        """The entry of ``resource`` in the locker ``name``, if any."""
        server = self.locker(name)
        return None if server is None else server.table.lookup(resource)

    def locks(self, name: Atom | str = EKKA_LOCKER) -> list[Lock]:
        """Every entry of the locker ``name``."""
        server = self.locker(name)
        return [] if server is None else server.table.locks()

    def force_release(self, resource: Any, name: Atom | str = EKKA_LOCKER) -> Lock | None:
        """Free ``resource`` in the locker ``name`` whoever holds it; the entry removed.

        The owner is not told (it is not killed); ekka has no such call, so other
        nodes' entries for the same lock are untouched.
        """
        server = self.locker(name)
        return None if server is None else server.force_release(resource)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` holds, re-checking after every table change.

        ``TimeoutError`` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # -- lease enforcement ------------------------------------------------------------

    # -- pinned owners (a pyekka extension of the lease) ---------------------------------

    def pin(self, owner: Pid) -> None:
        """Spare the local process ``owner`` from pyekka lease checks until :meth:`unpin`
        or its end: it holds its locks until it releases them (see :data:`IS_PINNED`)."""
        self._pinned.add(owner)

    def unpin(self, owner: Pid) -> None:
        """Undo :meth:`pin`."""
        self._pinned.discard(owner)

    def is_pinned(self, owner: Any) -> bool:
        """``pyekka_locker:is_pinned/1``: whether ``owner`` is a live pinned process here."""
        if type(owner) is not Pid or owner not in self._pinned:
            return False
        if self.node.runtime.is_alive(owner):
            return True
        self._pinned.discard(owner)
        return False

    async def _force_kill(self, proc: Process, name: Atom, owner: Pid, resource: Any) -> None:
        pinned = await self.node.rpc(
            owner.node, PYEKKA_LOCKER, IS_PINNED, [owner], timeout=_PROCESS_INFO_TIMEOUT
        )
        if pinned is True:
            log.debug(
                "locker %s: %s holds %s past the lease on purpose (pinned)",
                name.name,
                format_pid(owner),
                format_term(resource),
            )
            return
        log.error(
            "locker %s: killing %s, which has held %s for too long",
            name.name,
            format_pid(owner),
            format_term(resource),
        )
        status = await self.node.rpc(
            owner.node,
            _ERLANG,
            _PROCESS_INFO,
            [owner, PROCESS_INFO_ITEMS],
            timeout=_PROCESS_INFO_TIMEOUT,
        )
        log.error("locker %s: status of %s: %s", name.name, format_pid(owner), format_term(status))
        proc.send_exit(owner, KILL)

    def _process_info(self, pid: Any, items: Any) -> Any:
        """``erlang:process_info/2`` for this node's pids, as the lease check asks it."""
        if type(pid) is not Pid or pid.node != self.node.name:
            raise BadArg(f"not a local pid: {pid!r}")
        proc = self.node.runtime.process(pid)
        if proc is None:
            return UNDEFINED
        values = {
            "status": Atom("waiting"),
            "message_queue_len": proc.message_queue_len,
            "current_stacktrace": [],
            "registered_name": proc.name if proc.name is not None else [],
        }

        def item(key: Any) -> tuple[Atom, Any]:
            if type(key) is not Atom or key.name not in values:
                raise BadArg(f"unsupported process_info item: {key!r}")
            return (key, values[key.name])

        if type(items) is list:
            return [item(key) for key in items]
        return item(items)
