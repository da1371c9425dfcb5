"""A Python process: a pid, a mailbox and an asyncio task, with Erlang's process API.

A process function is ``async def fn(proc, *args)``; ``proc`` is its
:class:`Process`. Everything here acts on behalf of that process (the sender of
its messages, the owner of its links and monitors) and must be called from its
own task.

A process killed by an exit signal is dead at once (it no longer receives
messages and its links and monitors have fired); its task is cancelled and stops
at its next ``await``. Anything it tries to send before that is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from pyekka.node import gen_server
from pyekka.node.exits import DOWN, ProcessExit
from pyekka.node.mailbox import Mailbox
from pyekka.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from pyekka.node.runtime import ProcessRuntime

__all__ = ["Monitor", "Process", "ProcessFn", "Watcher"]

ProcessFn = Callable[..., Awaitable[Any]]
"""``async def fn(proc: Process, *args) -> Any``: the body of a process."""


@dataclass(slots=True)
class Monitor:
    """A monitor held by its watcher.

    ``target`` is the monitored pid, or ``(name, node)`` for a remote process
    monitored by name; ``item`` is the fourth element of the ``DOWN`` message (the
    pid, or ``(name, node)`` when monitored by name); ``remote`` tells whether the
    target lives on another node.
    """

    target: Pid | tuple[Atom, Atom]
    item: Any
    remote: bool

    @property
    def node(self) -> Atom:
        """The node of the monitored process."""
        return self.target.node if type(self.target) is Pid else self.target[1]


@dataclass(slots=True)
class Watcher:
    """A monitor as the monitored process keeps it: who watches, and by which name."""

    pid: Pid
    name: Atom | None = None


class Process:
    """One process of a :class:`~pyekka.node.runtime.ProcessRuntime`.

    Create processes with ``runtime.spawn`` (or :meth:`spawn_link` and friends).
    """

    __slots__ = (
        "_alive",
        "_aliases",
        "_done",
        "_exit_reason",
        "_links",
        "_monitored_by",
        "_monitors",
        "_task",
        "mailbox",
        "pid",
        "runtime",
        "spawn_ref",
        "trap_exit",
    )

    def __init__(self, runtime: ProcessRuntime, pid: Pid, *, trap_exit: bool = False) -> None:
        self.runtime = runtime
        self.pid = pid
        self.mailbox = Mailbox()
        self.trap_exit = trap_exit
        """``process_flag(trap_exit, ...)``: turn exit signals into ``EXIT`` messages."""
        self.spawn_ref: Reference | None = None
        """The monitor reference when spawned with ``monitor_by``."""
        self._alive = True
        self._exit_reason: Any = None
        self._task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # linked pid -> 0 for an active link, else the id of our pending UNLINK_ID
        self._links: dict[Pid, int] = {}
        self._monitors: dict[Reference, Monitor] = {}
        self._monitored_by: dict[Reference, Watcher] = {}
        self._aliases: set[Reference] = set()

    def __repr__(self) -> str:
        state = "alive" if self._alive else f"exited {self._exit_reason!r}"
        return f"<Process {self.pid!r} {state}>"

    # -- state ----------------------------------------------------------------

    @property
    def is_alive(self) -> bool:
        """Whether the process has not terminated yet."""
        return self._alive

    @property
    def exit_reason(self) -> Any:
        """The exit reason once terminated (``None`` while alive)."""
        return self._exit_reason

    @property
    def name(self) -> Atom | None:
        """The locally registered name, if any."""
        return self.runtime.name_of(self.pid)

    @property
    def links(self) -> list[Pid]:
        """The pids this process is linked to (active links only)."""
        return [pid for pid, state in self._links.items() if state == 0]

    @property
    def message_queue_len(self) -> int:
        """How many messages wait in the mailbox."""
        return len(self.mailbox)

    async def wait(self) -> Any:
        """Wait until the process has terminated; its exit reason."""
        return await asyncio.shield(self._done)

    def deliver(self, msg: Any) -> None:
        """Put a message in the mailbox (dropped once the process has terminated)."""
        if self._alive:
            self.mailbox.put(msg)

    # -- messages ---------------------------------------------------------------

    async def receive(
        self,
        match: Callable[[Any], Any] | None = None,
        *,
        timeout: float | None = None,
        since: int = 0,
    ) -> Any:
        """Selective receive: the oldest message for which ``match(msg)`` is truthy
        (any message when ``match`` is ``None``), leaving the others queued in order.

        ``timeout`` in seconds: ``None`` waits forever, ``0`` only polls; on
        expiry ``TimeoutError`` is raised. ``since``: see :meth:`Mailbox.mark`.
        """
        return await self.mailbox.receive(match, timeout, since)

    async def receive_select(
        self, select: Callable[[Any], Any], *, timeout: float | None = None, since: int = 0
    ) -> Any:
        """Selective receive with extraction: ``select(msg)`` returns ``None`` for no
        match, and the first other value it returns is the result."""
        return await self.mailbox.receive_select(select, timeout, since)

    def send(self, dest: Any, msg: Any) -> None:
        """``Dest ! Msg``: ``dest`` is a pid, a registered name, ``(name, node)`` or
        an alias reference. ``BadArg`` for an unregistered local name."""
        if self._alive:
            self.runtime.send(dest, msg, sender=self.pid)

    def try_send(self, dest: Any, msg: Any) -> bool:
        """Like :meth:`send` but an unregistered local name is ignored (``False``)."""
        return self._alive and self.runtime.try_send(dest, msg, sender=self.pid)

    # -- exits, links, monitors ------------------------------------------------

    def exit(self, reason: Any) -> NoReturn:
        """``exit(Reason)``: end this process now with ``reason``."""
        raise ProcessExit(reason)

    def send_exit(self, target: Pid, reason: Any) -> None:
        """``exit(Pid, Reason)``: send an exit signal to ``target``."""
        if self._alive:
            self.runtime.exit(target, reason, sender=self.pid)

    def link(self, target: Pid) -> None:
        """``link(Pid)``. A dead local target raises ``ErlangError(noproc)``, or gives
        an ``{'EXIT', Pid, noproc}`` message when trapping exits."""
        self.runtime.link(self, target)

    def unlink(self, target: Pid) -> None:
        """``unlink(Pid)``: afterwards the link can no longer affect this process."""
        self.runtime.unlink(self, target)

    def monitor(self, target: Any) -> Reference:
        """``monitor(process, Target)`` for a pid, a name or ``(name, node)``."""
        return self.runtime.monitor(self, target)

    def demonitor(self, ref: Reference, *, flush: bool = False) -> bool:
        """``demonitor(Ref, [info | flush])``: whether the monitor was still active.
        ``flush`` also removes its ``DOWN`` message from the mailbox."""
        return self.runtime.demonitor(self, ref, flush=flush)

    def is_down_of(self, ref: Reference) -> Callable[[Any], bool]:
        """A receive pattern for the ``DOWN`` message of monitor ``ref``."""

        def match(m: Any) -> bool:
            return type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref

        return match

    def alias(self) -> Reference:
        """``alias()``: a reference that messages can be sent to until unaliased."""
        return self.runtime.alias(self)

    def unalias(self, alias: Reference) -> bool:
        """``unalias(Alias)``: whether it was an active alias of this process."""
        return self.runtime.unalias(self, alias)

    def register(self, name: Atom) -> None:
        """``register(Name, self())``."""
        self.runtime.register(name, self.pid)

    def monitor_nodes(self, flag: bool = True, options: Any = ()) -> None:
        """``net_kernel:monitor_nodes(Flag, Options)`` (see :mod:`pyekka.node.node_monitor`)."""
        self.runtime.monitor_nodes(self.pid, flag, options)

    # -- spawning and gen_server helpers ---------------------------------------------

    def spawn_link(self, fn: ProcessFn, *args: Any, **opts: Any) -> Process:
        """``spawn_link``: a new process linked to this one."""
        return self.runtime.spawn(fn, *args, link_to=self.pid, **opts)

    def spawn_monitor(self, fn: ProcessFn, *args: Any, **opts: Any) -> tuple[Process, Reference]:
        """``spawn_monitor``: a new process monitored by this one, and the monitor ref."""
        proc = self.runtime.spawn(fn, *args, monitor_by=self.pid, **opts)
        assert proc.spawn_ref is not None
        return proc, proc.spawn_ref

    async def call(self, dest: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """``gen_server:call(Dest, Request, Timeout)`` (see :func:`pyekka.node.gen_server.call`)."""
        return await gen_server.call(self, dest, request, timeout)

    def cast(self, dest: Any, msg: Any) -> None:
        """``gen_server:cast(Dest, Msg)``."""
        gen_server.cast(self, dest, msg)
