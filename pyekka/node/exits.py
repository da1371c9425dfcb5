"""Exit reasons, the atoms of the process runtime, and the exceptions a process may raise.

How a Python process ends, and the exit reason its links and monitors see:

=============================================  =============================================
the process function ...                       exit reason
=============================================  =============================================
returns                                        ``normal``
raises ``ProcessExit(reason)`` (``exit/1``)    ``reason`` (not logged, as in OTP)
raises ``ErlangError(reason)`` (``error/1``)   ``{reason, []}`` (logged as a crash)
raises ``ErlangThrow(value)`` (``throw/1``)    ``{{nocatch, value}, []}`` (logged as a crash)
raises any other exception                     ``{python_error, <<"Type: message">>}``
                                               (logged as a crash, with the traceback)
is killed by an exit signal                    the signal's reason (``killed`` for ``kill``)
=============================================  =============================================
"""

from __future__ import annotations

import traceback
from typing import Any

from pyekka.term.types import Atom, Pid

__all__ = [
    "ALIAS",
    "DOWN",
    "EXIT",
    "KILL",
    "KILLED",
    "NOCONNECTION",
    "NODEDOWN",
    "NOPROC",
    "NORMAL",
    "PROCESS",
    "PYTHON_ERROR",
    "BadArg",
    "CallError",
    "CallTimeout",
    "ErlangError",
    "ErlangExit",
    "ErlangThrow",
    "ProcessExit",
    "crash_reason",
    "describe_exception",
    "format_pid",
    "is_atom",
    "is_name_at_node",
]

NORMAL = Atom("normal")
KILL = Atom("kill")
KILLED = Atom("killed")
NOPROC = Atom("noproc")
NOCONNECTION = Atom("noconnection")
NODEDOWN = Atom("nodedown")
EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
PROCESS = Atom("process")
ALIAS = Atom("alias")
BADARG = Atom("badarg")
TIMEOUT = Atom("timeout")
PYTHON_ERROR = Atom("python_error")
NOCATCH = Atom("nocatch")
_GEN_SERVER = Atom("gen_server")
_CALL = Atom("call")


def is_atom(term: Any, atom: Atom) -> bool:
    """Whether ``term`` is exactly the atom ``atom`` (never true for ``True``/``1``)."""
    return type(term) is Atom and term.name == atom.name


def is_name_at_node(term: Any) -> bool:
    """Whether ``term`` is a ``{Name, Node}`` destination (two atoms)."""
    return (
        type(term) is tuple and len(term) == 2 and type(term[0]) is Atom and type(term[1]) is Atom
    )


def format_pid(pid: Pid) -> str:
    """A pid for log lines: ``<node.id.serial>`` with the node name spelled out."""
    return f"<{pid.node.name}.{pid.id}.{pid.serial}>"


class ProcessExit(Exception):
    """Raised to end the current process with ``reason`` (Erlang's ``exit(Reason)``)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def exit_reason(self) -> Any:
        """The exit reason the process ends with when this escapes its function."""
        return self.reason


class ErlangError(Exception):
    """An Erlang ``error`` exception such as ``badarg`` or ``noproc``.

    Escaping a process function, it ends the process with ``{reason, []}`` (the
    ``{Reason, Stacktrace}`` shape of OTP, with an empty stack trace).
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def exit_reason(self) -> Any:
        """The exit reason the process ends with when this escapes its function."""
        return (self.reason, [])


class ErlangThrow(ErlangError):
    """An Erlang ``throw(Value)``.

    Raised by a function that Erlang nodes call (``rpc``/``erpc``), it is the
    ``throw`` class with ``value``; escaping a process function, it ends the
    process with ``{{nocatch, Value}, []}`` as an uncaught throw does in Erlang.
    """

    def __init__(self, value: Any) -> None:
        super().__init__((NOCATCH, value))
        self.value = value


ErlangExit = ProcessExit
"""``exit(Reason)`` under the name the rpc documentation uses (the same class)."""


class BadArg(ErlangError):
    """``badarg``: e.g. sending to an unregistered name, or registering a taken name."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(BADARG)
        self.detail = detail

    def __str__(self) -> str:
        return f"badarg: {self.detail}" if self.detail else "badarg"


class CallError(ProcessExit):
    """A ``call`` failed: ``reason`` is why (``noproc``, ``{nodedown, Node}``, the
    server's exit reason, ``timeout``).

    Like OTP's ``gen_server:call/3`` it is an exit: escaping a process function it
    ends the process with ``{Reason, {gen_server, call, [Dest, Request, Timeout]}}``.
    """

    def __init__(self, reason: Any, dest: Any, request: Any, timeout: float | None) -> None:
        super().__init__(reason)
        self.dest = dest
        self.request = request
        self.timeout = timeout

    @property
    def exit_reason(self) -> Any:
        """``{Reason, {gen_server, call, [Dest, Request, Timeout]}}``."""
        if self.timeout is None:
            timeout: Any = Atom("infinity")
        else:
            timeout = round(self.timeout * 1000)
        return (self.reason, (_GEN_SERVER, _CALL, [self.dest, self.request, timeout]))


class CallTimeout(CallError, TimeoutError):
    """A ``call`` got no reply in time (reason ``timeout``)."""

    def __init__(self, dest: Any, request: Any, timeout: float | None) -> None:
        super().__init__(TIMEOUT, dest, request, timeout)


def crash_reason(exc: BaseException) -> Any:
    """The exit reason of a process whose function raised ``exc``.

    ``ProcessExit``/``ErlangError`` give their own reason; any other exception gives
    ``{python_error, <<"Type: message">>}``.
    """
    if isinstance(exc, ProcessExit | ErlangError):
        return exc.exit_reason
    return (PYTHON_ERROR, describe_exception(exc).encode("utf-8", "replace"))


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"``, the last line of a traceback."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
