"""The lock servers of a pyekka node: ``ekka_locker`` and its RPC surface (spec 10.1, 10.3).

A :class:`LockerService` makes a :class:`~pyekka.node.node.Node` serve locks the way a
genuine ekka 0.8.1.9 node does:

* one process per locker name (``ekka_locker`` by default; more on demand, such as
  EMQX's ``emqx_cm_locker``), a :class:`~pyekka.cluster.locker_server.LockerServer`
  registered under that name and owning its lock table
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
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pyekka.cluster.constants import EKKA_LOCKER, LEASE_TIME_MS, UNDEFINED
from pyekka.cluster.lock import Lock, lock_reply, parse_piggyback
from pyekka.cluster.locker_server import LockerServer, now_ms
from pyekka.node.exits import KILL, BadArg, ErlangError, ErlangThrow, ProcessExit, format_pid
from pyekka.node.functions import ERROR, EXIT, RETURN, THROW
from pyekka.term import format_term
from pyekka.term.types import Atom, Pid

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
_PROCESS_INFO_TIMEOUT = 5.0
_MISSING: Any = object()


def _parse_request(term: Any) -> Lock:
    try:
        return Lock.from_term(term)
    except ValueError:
        raise ErlangError(_FUNCTION_CLAUSE) from None


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
