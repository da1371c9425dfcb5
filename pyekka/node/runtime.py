"""The process runtime of a node: processes, names, links, monitors, exit signals.

Signals between local processes take effect synchronously when sent, so every
signal one process sends another (messages, links, exits ...) arrives in the
order it was sent. Signals to other nodes go through the :class:`RemoteRouter`;
signals from other nodes come in through the entry points of :class:`RemoteSeam`
(mixed into :class:`ProcessRuntime`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from pyekka.node.exits import (
    DOWN,
    EXIT,
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    PROCESS,
    BadArg,
    ErlangError,
    ProcessExit,
    crash_reason,
    describe_exception,
    format_pid,
    is_atom,
    is_name_at_node,
)
from pyekka.node.ids import PidAllocator, RefAllocator, UnlinkIdAllocator
from pyekka.node.node_monitor import NodeSubscriptions, parse_options
from pyekka.node.process import Monitor, Process, ProcessFn, Watcher
from pyekka.node.registry import NameRegistry
from pyekka.node.router import RemoteRouter, UnreachableRouter
from pyekka.node.seam import LINK, MONITOR, RemoteSeam, SpawnRequest
from pyekka.term.types import Atom, Pid, Reference

__all__ = ["ProcessRuntime"]

log = logging.getLogger("pyekka.node")


class ProcessRuntime(RemoteSeam):
    """All local processes of the node ``node`` (an atom such as ``Atom("py@host")``).

    ``creation`` is the node's creation (from epmd, or chosen when there is none).
    ``router`` carries signals to other nodes; without one, no node is reachable.
    Use it from one event loop; ``await close()`` when done.
    """

    def __init__(self, node: Atom, creation: int, *, router: RemoteRouter | None = None) -> None:
        self.node = node
        self.creation = creation
        self.system_pid = Pid(node, 0, 0, creation)
        """The sender of signals that come from no process (never a live process)."""
        self._pid_alloc = PidAllocator(node, creation)
        self._ref_alloc = RefAllocator(node, creation)
        self._unlink_ids = UnlinkIdAllocator()
        self._procs: dict[Pid, Process] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._names = NameRegistry()
        self._aliases: dict[Reference, Process] = {}
        self._node_subs = NodeSubscriptions()
        self._remote_watched: dict[Reference, Process] = {}
        self._dying: deque[Process] = deque()
        self._draining = False
        self._closed = False
        self._router: RemoteRouter = router or UnreachableRouter(self._unreachable)
        self.group_leader: Pid | None = None
        """The group leader given to processes spawned on other nodes (``None``: the
        requesting process itself)."""
        self._init_nodes()

    # -- basics -------------------------------------------------------------------

    @property
    def router(self) -> RemoteRouter:
        """Where signals to other nodes go."""
        return self._router

    @router.setter
    def router(self, router: RemoteRouter | None) -> None:
        self._router = router or UnreachableRouter(self._unreachable)

    def _unreachable(self, node: Atom) -> None:
        asyncio.get_running_loop().call_soon(self.node_down, node)

    def is_local(self, pid: Pid) -> bool:
        """Whether ``pid`` names a process of this node (of any incarnation)."""
        return pid.node == self.node

    def make_ref(self) -> Reference:
        """``make_ref()``: a new unique reference of this node."""
        return self._ref_alloc.next()

    def process(self, pid: Pid) -> Process | None:
        """The live local process ``pid``, or ``None``."""
        proc = self._procs.get(pid)
        return proc if proc is not None and proc._alive else None

    def is_alive(self, pid: Pid) -> bool:
        """``is_process_alive(Pid)`` for a local pid."""
        return self.process(pid) is not None

    def processes(self) -> list[Pid]:
        """``processes()``: the pids of all live local processes."""
        return [pid for pid, p in self._procs.items() if p._alive]

    # -- spawning and termination ----------------------------------------------------------

    def spawn(
        self,
        fn: ProcessFn,
        *args: Any,
        link_to: Pid | None = None,
        monitor_by: Pid | None = None,
        monitor_ref: Reference | None = None,
        name: Atom | None = None,
        trap_exit: bool = False,
    ) -> Process:
        """Start ``fn(proc, *args)`` as a new process.

        ``link_to``: link the new process to this pid (``spawn_link``). ``monitor_by``:
        let this pid monitor it (``spawn_monitor``), with reference ``monitor_ref``
        or a new one (``proc.spawn_ref``). For a pid of another node only this
        side of the link/monitor is set up: that is what a ``SPAWN_REQUEST`` needs,
        whose sender already holds its half. ``name``: register the process
        (``BadArg`` if taken). Must be called with the event loop running.
        """
        if self._closed:
            raise RuntimeError("the process runtime is closed")
        if name is not None:
            self._names.check_free(name)
        pid = self._pid_alloc.next(self._procs.__contains__)
        proc = Process(self, pid, trap_exit=trap_exit)
        self._procs[pid] = proc
        if name is not None:
            self._names.register(name, pid)
        task = asyncio.get_running_loop().create_task(
            self._run(proc, fn, args), name=f"pyekka process {format_pid(pid)}"
        )
        proc._task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if monitor_by is not None:
            ref = monitor_ref if monitor_ref is not None else self.make_ref()
            proc.spawn_ref = ref
            self._watch(proc, monitor_by, ref, None)
        if link_to is not None:
            self._link_spawned(proc, link_to)
        return proc

    def _watch(self, target: Process, watcher: Pid, ref: Reference, name: Atom | None) -> None:
        """Record that ``watcher`` monitors the live ``target`` with ``ref``."""
        if self.is_local(watcher):
            wp = self.process(watcher)
            if wp is None:
                return
            item = target.pid if name is None else (name, self.node)
            wp._monitors[ref] = Monitor(target.pid, item, remote=False)
        else:
            self._remote_watched[ref] = target
        target._monitored_by[ref] = Watcher(watcher, name)

    def _link_spawned(self, proc: Process, parent: Pid) -> None:
        if not self.is_local(parent):
            proc._links[parent] = 0
            return
        pp = self.process(parent)
        if pp is None:
            self._exit_signal(proc, parent, NOPROC, link=True)
        else:
            proc._links[parent] = 0
            pp._links[proc.pid] = 0

    async def _run(self, proc: Process, fn: ProcessFn, args: tuple) -> None:
        try:
            await fn(proc, *args)
        except asyncio.CancelledError:
            self._kill(proc, KILLED, cancel=False)
        except ProcessExit as exc:
            self._kill(proc, exc.exit_reason, cancel=False)
        except BaseException as exc:
            if proc._alive:
                name = proc.name
                log.error(
                    "process %s%s crashed: %s",
                    format_pid(proc.pid),
                    f" ({name.name})" if name is not None else "",
                    describe_exception(exc),
                    exc_info=exc,
                )
                self._kill(proc, crash_reason(exc), cancel=False)
            if not isinstance(exc, Exception):
                raise
        else:
            self._kill(proc, NORMAL, cancel=False)

    def _kill(self, proc: Process, reason: Any, *, cancel: bool = True) -> None:
        """Terminate ``proc`` with ``reason`` now: it is dead from here on, and its
        links, monitors and name are dealt with before this returns (iteratively,
        so that long chains of links do not recurse)."""
        if not proc._alive:
            return
        proc._alive = False
        proc._exit_reason = reason
        task = proc._task
        if cancel and task is not None and not task.done():
            task.cancel()
        self._dying.append(proc)
        if self._draining:
            return
        self._draining = True
        try:
            while self._dying:
                self._finish(self._dying.popleft())
        finally:
            self._draining = False

    def _finish(self, proc: Process) -> None:
        pid, reason = proc.pid, proc._exit_reason
        self._procs.pop(pid, None)
        self._names.drop_pid(pid)
        self._node_subs.drop(pid)
        for alias in proc._aliases:
            self._aliases.pop(alias, None)
        proc._aliases.clear()
        proc.mailbox.clear()
        links, proc._links = proc._links, {}
        monitors, proc._monitors = proc._monitors, {}
        watchers, proc._monitored_by = proc._monitored_by, {}
        remote = not self._closed
        for other, state in links.items():
            if self.is_local(other):
                op = self.process(other)
                if op is not None and op._links.pop(pid, None) is not None:
                    self._exit_signal(op, pid, reason, link=True)
            elif state == 0 and remote:
                # A link with an unlink in progress sends nothing (OTP-18177).
                self._router.exit(pid, other, reason)
        for ref, mon in monitors.items():
            if mon.remote:
                if remote:
                    self._router.demonitor(pid, mon.target, ref)
            else:
                tp = self._procs.get(mon.target)  # type: ignore[arg-type]
                if tp is not None:
                    tp._monitored_by.pop(ref, None)
        for ref, w in watchers.items():
            if self.is_local(w.pid):
                wp = self.process(w.pid)
                mon = wp._monitors.pop(ref, None) if wp is not None else None
                if wp is not None and mon is not None:
                    wp.deliver((DOWN, ref, PROCESS, mon.item, reason))
            else:
                self._remote_watched.pop(ref, None)
                if remote:
                    self._router.monitor_exit(w.name or pid, w.pid, ref, reason)
        if not proc._done.done():
            proc._done.set_result(reason)

    def _exit_signal(self, target: Process, sender: Pid, reason: Any, *, link: bool) -> None:
        """Deliver an exit signal: from a broken link (``link``) or from ``exit/2``."""
        if not target._alive:
            return
        if not link and is_atom(reason, KILL):
            self._kill(target, KILLED)
        elif target.trap_exit:
            target.deliver((EXIT, sender, reason))
        elif is_atom(reason, NORMAL):
            if not link and sender == target.pid:
                self._kill(target, NORMAL)
        else:
            self._kill(target, reason)

    async def close(self) -> None:
        """Kill every process (reason ``killed``; nothing is sent to other nodes)
        and wait for all their tasks to finish. The runtime cannot be used after.

        A process function that swallows ``asyncio.CancelledError`` and keeps
        running makes this wait for it.
        """
        self._closed = True
        for proc in list(self._procs.values()):
            self._kill(proc, KILLED)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- names ---------------------------------------------------------------------

    def register(self, name: Atom, pid: Pid) -> None:
        """``register(Name, Pid)``: ``BadArg`` if the name is taken or ``undefined``,
        the pid is not a live local process, or it already has a name."""
        if self.process(pid) is None:
            raise BadArg(f"not a live local process: {pid!r}")
        self._names.register(name, pid)

    def unregister(self, name: Atom) -> None:
        """``unregister(Name)``: ``BadArg`` if not registered."""
        self._names.unregister(name)

    def whereis(self, name: Atom) -> Pid | None:
        """``whereis(Name)``: the pid or ``None``."""
        return self._names.whereis(name)

    def name_of(self, pid: Pid) -> Atom | None:
        """The registered name of a local pid, or ``None``."""
        return self._names.name_of(pid)

    def registered(self) -> list[Atom]:
        """``registered()``."""
        return self._names.registered()

    # -- sending -------------------------------------------------------------------

    def send(self, dest: Any, msg: Any, *, sender: Pid | None = None) -> None:
        """``Dest ! Msg`` from ``sender`` (default: :attr:`system_pid`).

        ``dest``: a pid, a registered name (``BadArg`` when unregistered, as in
        Erlang), ``(name, node)`` (never fails: an unregistered local name drops
        the message) or an alias reference. Messages to dead processes are dropped.
        """
        if not self.try_send(dest, msg, sender=sender):
            raise BadArg(f"no process registered as {dest!r}")

    def try_send(self, dest: Any, msg: Any, *, sender: Pid | None = None) -> bool:
        """Like :meth:`send`, returning ``False`` instead of raising for an
        unregistered local name (what ``gen_server:cast`` does)."""
        sender = sender or self.system_pid
        kind = type(dest)
        if kind is Pid:
            if self.is_local(dest):
                proc = self.process(dest)
                if proc is not None:
                    proc.deliver(msg)
            else:
                self._router.send(sender, dest, msg)
        elif kind is Atom:
            pid = self._names.whereis(dest)
            if pid is None:
                return False
            self._procs[pid].deliver(msg)
        elif is_name_at_node(dest):
            name, node = dest
            if node == self.node:
                pid = self._names.whereis(name)
                if pid is not None:
                    self._procs[pid].deliver(msg)
            else:
                self._router.reg_send(sender, name, node, msg)
        elif kind is Reference:
            self._send_alias(dest, msg, sender)
        else:
            raise BadArg(f"not a destination: {dest!r}")
        return True

    def _send_alias(self, alias: Reference, msg: Any, sender: Pid) -> None:
        if alias.node == self.node:
            proc = self._aliases.get(alias)
            if proc is not None:
                proc.deliver(msg)
        else:
            self._router.alias_send(sender, alias, msg)

    def alias(self, proc: Process) -> Reference:
        """``alias()`` for ``proc``."""
        ref = self.make_ref()
        if proc._alive:
            self._aliases[ref] = proc
            proc._aliases.add(ref)
        return ref

    def unalias(self, proc: Process, alias: Reference) -> bool:
        """``unalias(Alias)`` for ``proc``."""
        if alias not in proc._aliases:
            return False
        proc._aliases.discard(alias)
        del self._aliases[alias]
        return True

    # -- exit signals, links, monitors ------------------------------------------------

    def exit(self, target: Pid, reason: Any, *, sender: Pid | None = None) -> None:
        """``exit(Pid, Reason)`` sent by ``sender`` (default: :attr:`system_pid`)."""
        sender = sender or self.system_pid
        if type(target) is not Pid:
            raise BadArg(f"not a pid: {target!r}")
        if self.is_local(target):
            proc = self.process(target)
            if proc is not None:
                self._exit_signal(proc, sender, reason, link=False)
        else:
            self._router.exit2(sender, target, reason)

    def link(self, proc: Process, target: Pid) -> None:
        """``link(Pid)`` called by ``proc`` (see :meth:`Process.link`)."""
        if type(target) is not Pid:
            raise BadArg(f"not a pid: {target!r}")
        if not proc._alive or target == proc.pid:
            return
        if self.is_local(target):
            tp = self.process(target)
            if tp is None:
                if proc.trap_exit:
                    proc.deliver((EXIT, target, NOPROC))
                    return
                raise ErlangError(NOPROC)
            proc._links[target] = 0
            tp._links[proc.pid] = 0
        elif proc._links.get(target) != 0:
            proc._links[target] = 0
            self._router.link(proc.pid, target)

    def unlink(self, proc: Process, target: Pid) -> None:
        """``unlink(Pid)`` called by ``proc``."""
        if type(target) is not Pid:
            raise BadArg(f"not a pid: {target!r}")
        if not proc._alive:
            return
        if self.is_local(target):
            proc._links.pop(target, None)
            tp = self._procs.get(target)
            if tp is not None:
                tp._links.pop(proc.pid, None)
        elif proc._links.get(target) == 0:
            unlink_id = self._unlink_ids.next()
            proc._links[target] = unlink_id
            self._router.unlink(proc.pid, target, unlink_id)

    def monitor(self, proc: Process, target: Any) -> Reference:
        """``monitor(process, Target)`` called by ``proc``: a pid, a registered
        name, or ``(name, node)``. The ``DOWN`` message names the target the way
        it was given (a name gives ``(name, node)``); a target that does not exist
        gives an immediate ``DOWN`` with ``noproc``."""
        ref = self.make_ref()
        kind = type(target)
        if kind is Pid:
            name, node = None, target.node
        elif kind is Atom:
            name, node = target, self.node
        elif is_name_at_node(target):
            name, node = target
        else:
            raise BadArg(f"not a process to monitor: {target!r}")
        if not proc._alive:
            return ref
        item = target if name is None else (name, node)
        if node != self.node:
            proc._monitors[ref] = Monitor(item, item, remote=True)
            self._router.monitor(proc.pid, item, ref)
            return ref
        tp = self.process(target if name is None else self._names.whereis(name))  # type: ignore[arg-type]
        if tp is None:
            proc.deliver((DOWN, ref, PROCESS, item, NOPROC))
        else:
            self._watch(tp, proc.pid, ref, name)
        return ref

    def demonitor(self, proc: Process, ref: Reference, *, flush: bool = False) -> bool:
        """``demonitor(Ref, [info] ++ [flush || flush])`` called by ``proc``."""
        if type(ref) is not Reference:
            raise BadArg(f"not a reference: {ref!r}")
        mon = proc._monitors.pop(ref, None)
        if mon is not None:
            if mon.remote:
                self._router.demonitor(proc.pid, mon.target, ref)
            else:
                tp = self._procs.get(mon.target)  # type: ignore[arg-type]
                if tp is not None:
                    tp._monitored_by.pop(ref, None)
        if flush:
            proc.mailbox.remove_first(proc.is_down_of(ref))
        return mon is not None

    # -- spawning on other nodes -------------------------------------------------------

    def spawn_request(
        self,
        proc: Process,
        node: Atom,
        module: Atom,
        function: Atom,
        args: list,
        *,
        link: bool = False,
        monitor: bool = False,
    ) -> Reference:
        """``spawn_request(Node, M, F, A, Opts)`` made by ``proc``: the request id.

        ``proc`` later receives ``{spawn_reply, ReqId, ok, Pid}`` (the link and the
        monitor, whose reference is ``ReqId``, are then in place) or
        ``{spawn_reply, ReqId, error, Reason}`` (``notsup``, ``noconnection`` ...).
        """
        if type(node) is not Atom or type(module) is not Atom or type(function) is not Atom:
            raise BadArg("spawn_request needs atoms for the node, module and function")
        if type(args) is not list:
            raise BadArg("spawn_request needs a list of arguments")
        if node == self.node:
            raise BadArg("spawn_request to the local node: use spawn()")
        req_id = self.make_ref()
        opts = [a for a, on in ((LINK, link), (MONITOR, monitor)) if on]
        self._spawn_requests[req_id] = SpawnRequest(proc.pid, node, link, monitor)
        self._router.spawn_request(
            req_id,
            proc.pid,
            self.group_leader or proc.pid,
            node,
            (module, function, len(args)),
            args,
            opts,
        )
        return req_id

    def spawn_request_abandon(self, req_id: Reference) -> bool:
        """``spawn_request_abandon(ReqId)``: whether the request was still pending.

        An abandoned request sends no reply; a process it creates anyway is sent an
        exit signal ``abandoned``.
        """
        req = self._spawn_requests.get(req_id)
        if req is None or req.abandoned:
            return False
        req.abandoned = True
        return True

    # -- node status subscriptions ----------------------------------------------------

    def monitor_nodes(self, proc: Process | Pid, flag: bool = True, options: Any = ()) -> None:
        """``net_kernel:monitor_nodes(Flag, Options)`` for a local process (see
        :mod:`pyekka.node.node_monitor` for the options and messages)."""
        opts = parse_options(options)
        pid = proc.pid if isinstance(proc, Process) else proc
        if self.process(pid) is None:
            raise BadArg(f"not a live local process: {pid!r}")
        if flag:
            self._node_subs.subscribe(pid, opts)
        else:
            self._node_subs.unsubscribe(pid, opts)
