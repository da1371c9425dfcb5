"""Processes other nodes spawn here (``SPAWN_REQUEST``), and what they run.

OTP 23+ implements ``erpc:call``, ``rpc:call`` and ``rpc:multicall`` by asking the
target node to spawn ``erpc:execute_call(Ref, M, F, A)`` with a monitor, and reads
the result from the exit reason in the ``DOWN`` message; ``erpc:cast`` and
``rpc:cast`` spawn ``erpc:execute_cast(M, F, A)``. Here both run the registered
Python function ``M:F`` (see :mod:`pyekka.node.functions`) and end exactly as
OTP's do:

=========================  ======================================================
``execute_call`` outcome   exit reason of the spawned process
=========================  ======================================================
return ``V``               ``{Ref, return, V}``
throw ``T``                ``{Ref, throw, T}``
exit ``R``                 ``{Ref, exit, R}``
error ``R``                ``{Ref, error, R, Stack}``
unknown function           ``{Ref, error, undef, [{M, F, A, []}]}``
=========================  ======================================================

Any other ``{M, F, Arity}`` runs ``M:F`` itself as the process, as ``spawn/4``
would; an unknown one is refused as OTP refuses an undefined function: the spawn
succeeds and the process dies at once with ``{undef, [{M, F, Args, []}]}``, logged
as an error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pyekka.dist import control as c
from pyekka.node.exits import NORMAL, ProcessExit, format_pid
from pyekka.node.functions import ERROR, EXIT, RETURN, THROW, FunctionRegistry, Outcome
from pyekka.term import format_term
from pyekka.term.types import Atom

if TYPE_CHECKING:
    from pyekka.node.process import Process
    from pyekka.node.runtime import ProcessRuntime

__all__ = ["SpawnService", "erpc_exit_reason", "rpc_result"]

log = logging.getLogger("pyekka.node.spawn")

ERPC = Atom("erpc")
EXECUTE_CALL = Atom("execute_call")
EXECUTE_CAST = Atom("execute_cast")
LINK = Atom("link")
MONITOR = Atom("monitor")
NOCATCH = Atom("nocatch")
EXCEPTION = Atom("exception")
BADRPC = Atom("badrpc")
EXIT_TAG = Atom("EXIT")
SYSTEM_LIMIT = Atom("system_limit")
BADARG = Atom("badarg")


def erpc_exit_reason(ref: Any, outcome: Outcome) -> tuple:
    """The exit reason of ``erpc:execute_call(Ref, M, F, A)`` for ``outcome``."""
    if outcome.kind == ERROR:
        return (ref, ERROR, outcome.value, outcome.stack)
    return (ref, outcome.kind, outcome.value)


def rpc_result(outcome: Outcome) -> Any:
    """What ``rpc:call`` returns for ``outcome`` (the classic ``rex`` server's answer)."""
    if outcome.kind == RETURN or outcome.kind == THROW:
        return outcome.value
    if outcome.kind == EXIT:
        return (BADRPC, (EXIT_TAG, outcome.value))
    return (BADRPC, (EXIT_TAG, (outcome.value, outcome.stack)))


def process_exit_reason(outcome: Outcome, module: Atom, function: Atom, arity: int) -> Any:
    """How a process running ``M:F`` as its body ends for ``outcome``."""
    if outcome.kind == RETURN:
        return NORMAL
    if outcome.kind == EXIT:
        return outcome.value
    if outcome.kind == THROW:
        return ((NOCATCH, outcome.value), [(module, function, arity, [])])
    return (outcome.value, outcome.stack)


def _is_option(opt: Any, name: Atom) -> bool:
    return opt == name or (type(opt) is tuple and len(opt) == 2 and opt[0] == name)


class SpawnService:
    """Runs the ``SPAWN_REQUEST``\\s of other nodes against a :class:`FunctionRegistry`."""

    def __init__(self, runtime: ProcessRuntime, functions: FunctionRegistry) -> None:
        self.runtime = runtime
        self.functions = functions

    def handle(self, req: c.SpawnRequest | c.SpawnRequestTT) -> tuple[int, Any]:
        """Start the requested process; the ``SPAWN_REPLY`` flags and result."""
        module, function, arity = req.mfa
        if arity != len(req.args):
            return 0, BADARG
        link = any(_is_option(o, LINK) for o in req.opts)
        monitor = any(_is_option(o, MONITOR) for o in req.opts)
        try:
            proc = self.runtime.spawn(
                self._body,
                module,
                function,
                req.args,
                req.from_pid,
                link_to=req.from_pid if link else None,
                monitor_by=req.from_pid if monitor else None,
                monitor_ref=req.req_id if monitor else None,
            )
        except RuntimeError:
            return 0, SYSTEM_LIMIT
        flags = (c.SPAWN_REPLY_LINK if link else 0) | (c.SPAWN_REPLY_MONITOR if monitor else 0)
        return flags, proc.pid

    async def _body(
        self, proc: Process, module: Atom, function: Atom, args: list, caller: Any = None
    ) -> None:
        if module == ERPC and function == EXECUTE_CALL and len(args) == 4:
            ref, mod, fun, fargs = args
            outcome = await self.functions.apply(mod, fun, fargs, caller=caller)
            raise ProcessExit(erpc_exit_reason(ref, outcome))
        if module == ERPC and function == EXECUTE_CAST and len(args) == 3:
            mod, fun, fargs = args
            outcome = await self.functions.apply(mod, fun, fargs, caller=caller)
            if outcome.kind == ERROR:
                reason = (
                    (EXCEPTION, (outcome.value, outcome.stack)),
                    [(ERPC, EXECUTE_CAST, 3, [])],
                )
                self._report(proc, reason)
                raise ProcessExit(reason)
            self._end(proc, process_exit_reason(outcome, mod, fun, len(fargs)), outcome)
            return
        outcome = await self.functions.apply(module, function, args, caller=caller)
        self._end(proc, process_exit_reason(outcome, module, function, len(args)), outcome)

    def _end(self, proc: Process, reason: Any, outcome: Outcome) -> None:
        if outcome.kind == RETURN:
            return
        if outcome.kind in (ERROR, THROW):
            self._report(proc, reason)
        raise ProcessExit(reason)

    def _report(self, proc: Process, reason: Any) -> None:
        log.error(
            "Error in process %s on node %s with exit value:\n%s",
            format_pid(proc.pid),
            self.runtime.node.name,
            format_term(reason),
        )
