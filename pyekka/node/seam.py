"""Inbound entry points: what the connection layer calls when a peer signals us.

Mixed into :class:`~pyekka.node.runtime.ProcessRuntime`. Each method handles one
control message (or connection event) the way ERTS does on receipt, including the
new link protocol's rules (see the "Link Protocol" section of OTP's distribution
protocol documentation). All are synchronous and must be called on the event
loop's thread, in the order the peer sent the signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyekka.dist.control import SPAWN_REPLY_LINK, SPAWN_REPLY_MONITOR
from pyekka.node.exits import DOWN, NOCONNECTION, NOPROC, PROCESS
from pyekka.node.process import Monitor
from pyekka.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from pyekka.node.node_monitor import NodeSubscriptions
    from pyekka.node.process import Process
    from pyekka.node.registry import NameRegistry
    from pyekka.node.router import RemoteRouter

__all__ = ["CONNECTION_CLOSED", "RemoteSeam", "SpawnRequest"]

CONNECTION_CLOSED = Atom("connection_closed")
SPAWN_REPLY = Atom("spawn_reply")
OK = Atom("ok")
ERROR = Atom("error")
LINK = Atom("link")
MONITOR = Atom("monitor")
ABANDONED = Atom("abandoned")


@dataclass(slots=True)
class SpawnRequest:
    """A ``spawn_request`` of a local process waiting for its ``SPAWN_REPLY``."""

    pid: Pid
    node: Atom
    link: bool
    monitor: bool
    abandoned: bool = False


class RemoteSeam:
    """The inbound half of the seam (the outbound half is the ``RemoteRouter``)."""

    if TYPE_CHECKING:
        node: Atom
        _procs: dict[Pid, Process]
        _names: NameRegistry
        _aliases: dict[Reference, Process]
        _node_subs: NodeSubscriptions
        _remote_watched: dict[Reference, Process]
        _router: RemoteRouter

        def process(self, pid: Pid) -> Process | None: ...
        def _exit_signal(
            self, target: Process, sender: Pid, reason: Any, *, link: bool
        ) -> None: ...
        def _watch(
            self, target: Process, watcher: Pid, ref: Reference, name: Atom | None
        ) -> None: ...

    def _init_nodes(self) -> None:
        # connected node -> (hidden, connection id)
        self._nodes: dict[Atom, tuple[bool, Any]] = {}
        self._spawn_requests: dict[Reference, SpawnRequest] = {}

    # -- messages -----------------------------------------------------------------

    def deliver(self, to: Pid, msg: Any, sender: Pid | None = None) -> None:
        """``SEND`` / ``SEND_SENDER`` (and ``_TT``): ``msg`` for the local pid ``to``.
        Dropped if ``to`` does not exist."""
        proc = self.process(to)
        if proc is not None:
            proc.deliver(msg)

    def deliver_reg(self, name: Atom, msg: Any, sender: Pid | None = None) -> None:
        """``REG_SEND`` (and ``_TT``): ``msg`` for the process registered as ``name``.
        Dropped if no process has that name."""
        pid = self._names.whereis(name) if type(name) is Atom else None
        if pid is not None:
            self.deliver(pid, msg, sender)

    def deliver_alias(self, alias: Reference, msg: Any, sender: Pid | None = None) -> None:
        """``ALIAS_SEND`` (and ``_TT``): dropped unless ``alias`` is an active alias."""
        proc = self._aliases.get(alias)
        if proc is not None:
            proc.deliver(msg)

    # -- links ----------------------------------------------------------------------

    def remote_link(self, from_pid: Pid, to_pid: Pid) -> None:
        """``LINK``. A missing ``to_pid`` answers with an ``EXIT`` ``noproc``; an
        existing link entry (even one being unlinked) is left as it is."""
        proc = self.process(to_pid)
        if proc is None:
            self._router.exit(to_pid, from_pid, NOPROC)
        elif from_pid not in proc._links:
            proc._links[from_pid] = 0

    def remote_unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int | None = None) -> None:
        """``UNLINK_ID`` (``unlink_id`` given: acknowledged with ``UNLINK_ID_ACK``) or
        the old ``UNLINK`` (``None``). An active link is removed; one we are
        unlinking ourselves stays until our own ack arrives."""
        proc = self.process(to_pid)
        if proc is None:
            return
        if proc._links.get(from_pid) == 0:
            del proc._links[from_pid]
        if unlink_id is not None:
            self._router.unlink_ack(to_pid, from_pid, unlink_id)

    def remote_unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """``UNLINK_ID_ACK``: ends our unlink of ``from_pid`` if the id matches."""
        proc = self.process(to_pid)
        if proc is not None and unlink_id != 0 and proc._links.get(from_pid) == unlink_id:
            del proc._links[from_pid]

    def remote_exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """``EXIT`` (a link broke): acted on only if the link is active; the link
        entry is removed in any case."""
        proc = self.process(to_pid)
        if proc is not None and proc._links.pop(from_pid, None) == 0:
            self._exit_signal(proc, from_pid, reason, link=True)

    def remote_exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """``EXIT2``: ``exit(ToPid, Reason)`` called on another node."""
        proc = self.process(to_pid)
        if proc is not None:
            self._exit_signal(proc, from_pid, reason, link=False)

    # -- monitors -------------------------------------------------------------------

    def remote_monitor(self, watcher: Pid, target: Pid | Atom, ref: Reference) -> None:
        """``MONITOR_P``: ``watcher`` monitors the local pid or name ``target``; a
        missing target answers at once with ``MONITOR_P_EXIT`` ``noproc``."""
        if type(target) is Atom:
            name: Atom | None = target
            pid = self._names.whereis(target)
            proc = self.process(pid) if pid is not None else None
        else:
            name, proc = None, self.process(target)
        if proc is None:
            self._router.monitor_exit(target, watcher, ref, NOPROC)
            return
        self._watch(proc, watcher, ref, name)

    def remote_demonitor(self, watcher: Pid, target: Pid | Atom, ref: Reference) -> None:
        """``DEMONITOR_P``: drop the monitor ``ref`` (ignored if unknown)."""
        proc = self._remote_watched.get(ref)
        if proc is None:
            return
        w = proc._monitored_by.get(ref)
        if w is not None and w.pid == watcher:
            del proc._monitored_by[ref]
            del self._remote_watched[ref]

    def remote_monitor_exit(
        self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any
    ) -> None:
        """``MONITOR_P_EXIT``: the remote process watched by ``watcher`` ended: a
        ``DOWN`` message naming it as it was monitored (pid or ``(name, node)``)."""
        proc = self.process(watcher)
        if proc is None:
            return
        mon = proc._monitors.get(ref)
        if mon is not None and mon.remote:
            del proc._monitors[ref]
            proc.deliver((DOWN, ref, PROCESS, mon.item, reason))

    # -- spawn requests -------------------------------------------------------------------

    def remote_spawn_reply(self, req_id: Reference, to_pid: Pid, flags: int, result: Any) -> None:
        """``SPAWN_REPLY`` to a :meth:`spawn_request`: set up the link and the monitor
        the peer reports (``flags`` 1 and 2) and tell the requester. If the requester
        is gone or abandoned the request, the new process is let go (link broken
        with ``noproc``, monitor dropped) or, when abandoned, sent ``abandoned``."""
        req = self._spawn_requests.get(req_id)
        if req is None or req.pid != to_pid:
            return
        del self._spawn_requests[req_id]
        proc = self.process(to_pid)
        if type(result) is not Pid:
            if proc is not None and not req.abandoned:
                proc.deliver((SPAWN_REPLY, req_id, ERROR, result))
            return
        if proc is None or req.abandoned:
            if flags & SPAWN_REPLY_MONITOR:
                self._router.demonitor(to_pid, result, req_id)
            if proc is None:
                if flags & SPAWN_REPLY_LINK:
                    self._router.exit(to_pid, result, NOPROC)
            else:
                self._router.exit2(to_pid, result, ABANDONED)
            return
        if flags & SPAWN_REPLY_LINK:
            proc._links[result] = 0
        if flags & SPAWN_REPLY_MONITOR:
            proc._monitors[req_id] = Monitor(result, result, remote=True)
        proc.deliver((SPAWN_REPLY, req_id, OK, result))

    def _fail_spawn_requests(self, node: Atom, reason: Any) -> None:
        for req_id, req in list(self._spawn_requests.items()):
            if req.node != node:
                continue
            del self._spawn_requests[req_id]
            proc = self.process(req.pid)
            if proc is not None and not req.abandoned:
                proc.deliver((SPAWN_REPLY, req_id, ERROR, reason))

    # -- nodes --------------------------------------------------------------------------

    def nodes(self, kind: str = "visible") -> list[Atom]:
        """``nodes(visible | hidden | connected)``: connected nodes as reported by
        :meth:`node_up` / :meth:`node_down`."""
        if kind not in ("visible", "hidden", "connected"):
            raise ValueError(f"unknown node kind {kind!r}")
        return [
            n
            for n, (hidden, _) in self._nodes.items()
            if kind == "connected" or hidden == (kind == "hidden")
        ]

    def node_up(self, node: Atom, *, hidden: bool = False, connection_id: Any = None) -> None:
        """A connection to ``node`` is up: ``nodeup`` messages to subscribers.

        Call it before delivering any signal that came over the new connection.
        """
        if node in self._nodes:
            return
        conn_id = connection_id if connection_id is not None else Atom("undefined")
        self._nodes[node] = (hidden, conn_id)
        for pid, msg in self._node_subs.messages(True, node, hidden, None, conn_id):
            self.deliver(pid, msg)

    def node_down(self, node: Atom, reason: Any = CONNECTION_CLOSED) -> None:
        """The connection to ``node`` is gone (or could not be made).

        Every link to a process there breaks with ``noconnection``, every monitor
        of one fires ``DOWN`` ``noconnection``, monitors and links held by its
        processes on ours are forgotten; then, if the node was up, ``nodedown``
        messages (with ``reason`` for subscribers that asked for it). Call it after
        delivering every signal that came over the lost connection.
        """
        info = self._nodes.pop(node, None)
        self._fail_spawn_requests(node, NOCONNECTION)
        broken: list[tuple[Process, list[Pid], list[tuple[Reference, Monitor]]]] = []
        for proc in list(self._procs.values()):
            if not proc._alive:
                continue
            links = []
            for p in [p for p in proc._links if p.node == node]:
                if proc._links.pop(p) == 0:
                    links.append(p)
            mons = [(r, m) for r, m in proc._monitors.items() if m.remote and m.node == node]
            for r, _ in mons:
                del proc._monitors[r]
            for r in [r for r, w in proc._monitored_by.items() if w.pid.node == node]:
                del proc._monitored_by[r]
                self._remote_watched.pop(r, None)
            if links or mons:
                broken.append((proc, links, mons))
        # Only now signal: a process killed here no longer links to that node.
        for proc, links, mons in broken:
            for p in links:
                self._exit_signal(proc, p, NOCONNECTION, link=True)
            for r, m in mons:
                proc.deliver((DOWN, r, PROCESS, m.item, NOCONNECTION))
        if info is not None:
            hidden, conn_id = info
            for pid, msg in self._node_subs.messages(False, node, hidden, reason, conn_id):
                self.deliver(pid, msg)
