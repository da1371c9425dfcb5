"""gen_server's wire protocol for Python processes: ``call``, ``cast``, ``reply``
and a small :class:`GenServer` base class.

The messages are OTP's own, so Python and Erlang processes can call each other:
a call is ``{'$gen_call', {From, Tag}, Request}`` answered by ``{Tag, Reply}``,
a cast is ``{'$gen_cast', Msg}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyekka.node.exits import (
    ALIAS,
    DOWN,
    EXIT,
    NOCONNECTION,
    NODEDOWN,
    NOPROC,
    CallError,
    CallTimeout,
    ProcessExit,
    crash_reason,
    is_atom,
    is_name_at_node,
)
from pyekka.term.types import Atom, ImproperList, Pid, Reference

if TYPE_CHECKING:
    from pyekka.node.process import Process
    from pyekka.node.runtime import ProcessRuntime

__all__ = ["GEN_CALL", "GEN_CAST", "NOREPLY", "GenServer", "call", "cast", "reply"]

GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
NOREPLY: Any = object()
"""Returned by :meth:`GenServer.handle_call` to reply later with :func:`reply`."""


def _dest_node(dest: Any, local: Atom) -> Atom:
    if type(dest) is Pid:
        return dest.node
    if type(dest) is tuple:
        return dest[1]
    return local


async def call(proc: Process, dest: Any, request: Any, timeout: float | None = 5.0) -> Any:
    """``gen_server:call(Dest, Request, Timeout)`` made by ``proc``; the reply.

    ``dest`` is a pid, a local name or ``(name, node)``; ``timeout`` in seconds
    (``None``: forever). The server is monitored during the call; the tag is a
    plain reference. Raises :class:`CallError` with ``noproc`` (no such server),
    ``{nodedown, Node}`` (connection lost) or the server's exit reason, and
    :class:`CallTimeout` on timeout. No ``DOWN`` message is left behind.
    """
    runtime = proc.runtime
    target = dest
    if type(dest) is Atom or (is_name_at_node(dest) and dest[1] == runtime.node):
        target = runtime.whereis(dest if type(dest) is Atom else dest[0])
        if target is None:
            raise CallError(NOPROC, dest, request, timeout)
    if target == proc.pid:
        raise CallError(Atom("calling_self"), dest, request, timeout)
    mark = proc.mailbox.mark()  # the reply and DOWN name a fresh ref: skip older mail
    mref = proc.monitor(target)
    proc.send(target, (GEN_CALL, (proc.pid, mref), request))

    def answer(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        if len(m) == 2:
            return m[0] == mref
        return len(m) == 5 and m[1] == mref and m[0] == DOWN

    try:
        msg = await proc.receive(answer, timeout=timeout, since=mark)
    except TimeoutError:
        proc.demonitor(mref, flush=True)
        raise CallTimeout(dest, request, timeout) from None
    if len(msg) == 2:
        proc.demonitor(mref, flush=True)
        return msg[1]
    reason = msg[4]
    if is_atom(reason, NOCONNECTION):
        reason = (NODEDOWN, _dest_node(target, runtime.node))
    raise CallError(reason, dest, request, timeout)


def cast(sender: Process | ProcessRuntime, dest: Any, msg: Any) -> None:
    """``gen_server:cast(Dest, Msg)``: send ``{'$gen_cast', Msg}``; never fails
    (an unregistered name is ignored). ``sender`` is a process or the runtime."""
    sender.try_send(dest, (GEN_CAST, msg))


def reply(sender: Process | ProcessRuntime, from_: Any, value: Any) -> None:
    """``gen_server:reply(From, Reply)``: send ``{Tag, Reply}`` to ``From = {Pid, Tag}``.

    A tag of the OTP 24+ form ``[alias | Ref]`` is answered through the alias
    (an ``ALIAS_SEND`` for a remote caller), exactly as OTP does, so that a
    caller that gave up waiting never receives the late reply.
    """
    pid, tag = from_
    msg = (tag, value)
    if type(tag) is ImproperList and type(tag.tail) is Reference and _is_alias_head(tag):
        dest: Any = tag.tail
    else:
        dest = pid
    sender.send(dest, msg)


def _is_alias_head(tag: ImproperList) -> bool:
    return len(tag.items) == 1 and is_atom(tag.items[0], ALIAS)


def _is_from(f: Any) -> bool:
    return type(f) is tuple and len(f) == 2 and type(f[0]) is Pid


class GenServer:
    """Base class of a Python gen_server; override the ``handle_*`` coroutines.

    ``start`` spawns the process. ``handle_call`` returns the reply (or
    :data:`NOREPLY` to answer later with :func:`reply`); raising
    :class:`~pyekka.node.exits.ProcessExit` stops the server with that reason,
    any other exception crashes it; ``terminate`` runs in both cases (not when it
    is killed). Like OTP's gen_server, a server started with ``link_to`` and
    ``trap_exit`` stops when that parent's ``EXIT`` arrives.
    """

    process: Process
    parent: Pid | None = None

    def start(
        self,
        runtime: ProcessRuntime,
        *,
        name: Atom | None = None,
        link_to: Pid | None = None,
        trap_exit: bool = False,
    ) -> Process:
        """Spawn the server process (registered as ``name`` if given)."""
        self.parent = link_to
        return runtime.spawn(_server_loop, self, name=name, link_to=link_to, trap_exit=trap_exit)

    async def init(self) -> None:
        """Runs first in the server process."""

    async def handle_call(self, request: Any, from_: tuple[Pid, Any]) -> Any:
        """A call; return the reply or :data:`NOREPLY`. Default: stop with
        ``{bad_call, Request}``."""
        raise ProcessExit((Atom("bad_call"), request))

    async def handle_cast(self, msg: Any) -> None:
        """A cast. Default: stop with ``{bad_cast, Msg}``."""
        raise ProcessExit((Atom("bad_cast"), msg))

    async def handle_info(self, msg: Any) -> None:
        """Any other message. Default: ignore it."""

    async def terminate(self, reason: Any) -> None:
        """The server stops with ``reason``."""

    async def dispatch(self, msg: Any) -> None:
        """Route one message to its handler (and reply to calls)."""
        if type(msg) is tuple:
            if len(msg) == 3 and msg[0] == GEN_CALL and _is_from(msg[1]):
                result = await self.handle_call(msg[2], msg[1])
                if result is not NOREPLY:
                    reply(self.process, msg[1], result)
                return
            if len(msg) == 2 and msg[0] == GEN_CAST:
                await self.handle_cast(msg[1])
                return
            if (
                len(msg) == 3
                and msg[0] == EXIT
                and self.parent is not None
                and msg[1] == self.parent
            ):
                raise ProcessExit(msg[2])
        await self.handle_info(msg)


async def _server_loop(proc: Process, server: GenServer) -> None:
    server.process = proc
    try:
        await server.init()
        while True:
            await server.dispatch(await proc.receive())
    except ProcessExit as exc:
        await server.terminate(exc.exit_reason)
        raise
    except Exception as exc:
        await server.terminate(crash_reason(exc))
        raise
