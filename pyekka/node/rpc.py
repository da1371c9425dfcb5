"""Python calling functions on other nodes: ``rpc:call`` and ``erpc:call`` semantics.

:func:`rpc_call` behaves as OTP 23+'s ``rpc:call/5`` seen from the caller: it asks
the node to spawn ``erpc:execute_call(Ref, M, F, A)`` with a monitor and reads the
result from the ``DOWN`` reason; a node without spawn support is asked through
its ``rex`` server instead. Results are returned the way ``rpc:call`` returns
them (``{badrpc, Reason}`` on failure); :func:`erpc_call` raises
:class:`RemoteError` instead, with the class and reason ``erpc:call`` would raise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyekka.dist.flags import DFlag
from pyekka.node.exits import DOWN, NOCONNECTION, NODEDOWN, CallError, CallTimeout
from pyekka.node.functions import ERROR, EXIT, RETURN, THROW, FunctionRegistry
from pyekka.node.gen_server import call as gen_call
from pyekka.node.spawn import ERPC, EXECUTE_CALL
from pyekka.term.types import Atom, Pid

if TYPE_CHECKING:
    from pyekka.node.distribution import Distribution
    from pyekka.node.process import Process

__all__ = ["RemoteError", "erpc_call", "rpc_call"]

BADRPC = Atom("badrpc")
EXIT_TAG = Atom("EXIT")
TIMEOUT = Atom("timeout")
NOTSUP = Atom("notsup")
SPAWN_REPLY = Atom("spawn_reply")
OK = Atom("ok")
REX = Atom("rex")
CALL = Atom("call")


class RemoteError(Exception):
    """An ``erpc:call`` that did not return: ``kind`` is ``throw``, ``exit``,
    ``error`` (with the remote ``stack``) or ``erpc`` (``noconnection``,
    ``timeout``, ``notsup`` ...: the call itself failed)."""

    def __init__(self, kind: Atom, reason: Any, stack: Any = None) -> None:
        super().__init__(kind, reason)
        self.kind = kind
        self.reason = reason
        self.stack = stack


ERPC_FAILURE = Atom("erpc")


async def erpc_call(
    proc: Process,
    dist: Distribution,
    functions: FunctionRegistry,
    node: Atom,
    module: Atom,
    function: Atom,
    args: list,
    timeout: float | None = None,
) -> Any:
    """``erpc:call(Node, M, F, A, Timeout)`` made by ``proc``: the value, or
    :class:`RemoteError`. ``timeout`` in seconds (``None``: forever)."""
    runtime = proc.runtime
    if node == runtime.node:
        outcome = await functions.apply(module, function, args)
        if outcome.kind == RETURN:
            return outcome.value
        raise RemoteError(outcome.kind, outcome.value, outcome.stack or None)
    if not await dist.connect(node):
        raise RemoteError(ERPC_FAILURE, NOCONNECTION)
    conn = dist.connection(node)
    if conn is None:
        raise RemoteError(ERPC_FAILURE, NOCONNECTION)
    if not conn.has(DFlag.SPAWN):
        raise RemoteError(ERPC_FAILURE, NOTSUP)
    ref = runtime.make_ref()
    mark = proc.mailbox.mark()
    req_id = runtime.spawn_request(
        proc, node, ERPC, EXECUTE_CALL, [ref, module, function, args], monitor=True
    )
    left = _deadline_clock(timeout)

    def spawn_reply(m: Any) -> bool:
        return type(m) is tuple and len(m) == 4 and m[0] == SPAWN_REPLY and m[1] == req_id

    def down(m: Any) -> bool:
        return type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == req_id

    try:
        reply = await proc.receive(spawn_reply, timeout=left(), since=mark)
        if reply[2] != OK:
            reason = reply[3]
            raise RemoteError(ERPC_FAILURE, reason)
        msg = await proc.receive(down, timeout=left(), since=mark)
    except TimeoutError:
        if not runtime.spawn_request_abandon(req_id):
            proc.demonitor(req_id, flush=True)
        raise RemoteError(ERPC_FAILURE, TIMEOUT) from None
    reason = msg[4]
    if type(reason) is tuple and len(reason) in (3, 4) and reason[0] == ref:
        kind = reason[1]
        if kind == RETURN and len(reason) == 3:
            return reason[2]
        if kind in (THROW, EXIT) and len(reason) == 3:
            raise RemoteError(kind, reason[2])
        if kind == ERROR and len(reason) == 4:
            raise RemoteError(ERROR, reason[2], reason[3])
        if kind == ERROR and len(reason) == 3:  # {erpc, Reason}: bad arguments
            raise RemoteError(ERPC_FAILURE, reason[2])
    if reason == NOCONNECTION:
        raise RemoteError(ERPC_FAILURE, NOCONNECTION)
    raise RemoteError(EXIT, reason)


def _deadline_clock(timeout: float | None) -> Callable[[], float | None]:
    """A function giving the time left until ``timeout`` from now (``None``: forever)."""
    if timeout is None:
        return lambda: None
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    return lambda: max(0.0, end - loop.time())


async def rpc_call(
    proc: Process,
    dist: Distribution,
    functions: FunctionRegistry,
    node: Atom,
    module: Atom,
    function: Atom,
    args: list,
    timeout: float | None = None,
) -> Any:
    """``rpc:call(Node, M, F, A, Timeout)`` made by ``proc`` (erpc first, then the
    ``rex`` server of nodes without spawn support)."""
    try:
        return await erpc_call(proc, dist, functions, node, module, function, args, timeout)
    except RemoteError as exc:
        if exc.kind == ERPC_FAILURE and exc.reason == NOTSUP:
            return await _rex_call(proc, node, module, function, args, timeout)
        return _as_badrpc(exc)


def _as_badrpc(exc: RemoteError) -> Any:
    if exc.kind == THROW:
        return exc.reason
    if exc.kind == ERPC_FAILURE:
        if exc.reason == NOCONNECTION:
            return (BADRPC, NODEDOWN)
        if exc.reason in (TIMEOUT, NOTSUP):
            return (BADRPC, exc.reason)
        return (BADRPC, (EXIT_TAG, exc.reason))
    if exc.kind == ERROR:
        return (BADRPC, (EXIT_TAG, (exc.reason, exc.stack)))
    return (BADRPC, (EXIT_TAG, exc.reason))


async def _rex_call(
    proc: Process, node: Atom, module: Atom, function: Atom, args: list, timeout: float | None
) -> Any:
    gl: Pid = proc.runtime.group_leader or proc.pid
    try:
        return await gen_call(proc, (REX, node), (CALL, module, function, args, gl), timeout)
    except CallTimeout:
        return (BADRPC, TIMEOUT)
    except CallError as exc:
        reason = exc.reason
        if type(reason) is tuple and len(reason) == 2 and reason[0] == NODEDOWN:
            return (BADRPC, NODEDOWN)
        return (BADRPC, (EXIT_TAG, reason))
