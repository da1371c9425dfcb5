"""Python functions that Erlang nodes call by module and function name.

A :class:`FunctionRegistry` maps ``(module, function)`` to a Python callable
(plain or ``async``). Erlang reaches them through ``rpc:call``, ``erpc:call``,
``rpc:cast``, ``spawn`` ... on this node; :meth:`FunctionRegistry.apply` runs one
and classifies the outcome the way ``erpc:execute_call/4`` does:

====================================================  =======================================
the function ...                                      outcome (class, value)
====================================================  =======================================
returns ``value``                                     ``return``, ``value``
raises ``ErlangThrow(value)``                         ``throw``, ``value``
raises ``ErlangExit(reason)`` (``ProcessExit``)       ``exit``, ``reason``
raises ``ErlangError(reason)`` (``BadArg`` ...)       ``error``, ``reason``
raises any other exception                            ``error``, ``{python_error, <<"T: msg">>}``
is not registered, or not for that many arguments     ``error``, ``undef``
====================================================  =======================================

An ``error`` comes with a stack trace in Erlang's shape: ``[{M, F, Args, []}]``
for ``undef`` and for an ``ErlangError`` (exactly what OTP reports for an
undefined function, or for a BIF such as ``erlang:error/1``), else
``[{M, F, Arity, [{file, File}, {line, Line}]}]`` naming where the Python
exception was raised. A value that cannot be
encoded as an Erlang term becomes an ``error`` too, so a caller always gets an
answer.
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pyekka.node.exits import ErlangError, ErlangThrow, ProcessExit, describe_exception
from pyekka.term import EncodeError, encode_term
from pyekka.term.types import Atom, Pid

__all__ = [
    "ERROR",
    "EXIT",
    "RETURN",
    "THROW",
    "FunctionRegistry",
    "Outcome",
    "as_atom",
    "current_caller",
]

RETURN = Atom("return")
THROW = Atom("throw")
EXIT = Atom("exit")
ERROR = Atom("error")
UNDEF = Atom("undef")
PYTHON_ERROR = Atom("python_error")
_FILE = Atom("file")
_LINE = Atom("line")

_CALLER: ContextVar[Pid | None] = ContextVar("pyekka_caller", default=None)


def current_caller() -> Pid | None:
    """The pid of the process whose ``rpc``/``erpc``/``spawn`` runs the current
    function, inside a registered function; ``None`` when unknown (a local call)."""
    return _CALLER.get()


def as_atom(name: str | Atom) -> Atom:
    """``name`` as an :class:`Atom` (a ``str`` is converted)."""
    if type(name) is Atom:
        return name
    if isinstance(name, str):
        return Atom(name)
    raise TypeError(f"a module or function name is a str or an Atom, not {name!r}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended: ``kind`` is ``return``, ``throw``, ``exit`` or ``error``."""

    kind: Atom
    value: Any
    stack: list = field(default_factory=list)


def _accepts(fn: Callable[..., Any], arity: int) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature: trust the caller
        return True
    try:
        sig.bind(*range(arity))
    except TypeError:
        return False
    return True


def _charlist(text: str) -> list[int]:
    return [ord(c) for c in text]


def _location(exc: BaseException) -> list[tuple[Atom, Any]]:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return []
    last = frames[-1]
    return [(_FILE, _charlist(last.filename)), (_LINE, last.lineno or 0)]


class FunctionRegistry:
    """Python callables by ``(module, function)``, as Erlang calls them."""

    def __init__(self) -> None:
        self._fns: dict[tuple[Atom, Atom], Callable[..., Any]] = {}
        self._arity_ok: dict[tuple[Atom, Atom, int], bool] = {}

    def register(self, module: str | Atom, function: str | Atom, fn: Callable[..., Any]) -> None:
        """Make ``fn`` callable as ``module:function/N`` for every ``N`` it accepts."""
        if not callable(fn):
            raise TypeError(f"not callable: {fn!r}")
        key = (as_atom(module), as_atom(function))
        self._fns[key] = fn
        self._arity_ok = {k: v for k, v in self._arity_ok.items() if k[:2] != key}

    def unregister(self, module: str | Atom, function: str | Atom) -> bool:
        """Forget ``module:function``; whether it was registered."""
        key = (as_atom(module), as_atom(function))
        self._arity_ok = {k: v for k, v in self._arity_ok.items() if k[:2] != key}
        return self._fns.pop(key, None) is not None

    def function(
        self, module: str | Atom, name: str | Atom | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of :meth:`register` (``name`` defaults to the function's)."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.register(module, name if name is not None else fn.__name__, fn)
            return fn

        return decorate

    def lookup(self, module: Any, function: Any, arity: int) -> Callable[..., Any] | None:
        """The callable for ``module:function/arity``, or ``None`` (Erlang: ``undef``)."""
        fn = self._fns.get((module, function))
        if fn is None:
            return None
        key = (module, function, arity)
        ok = self._arity_ok.get(key)
        if ok is None:
            ok = self._arity_ok[key] = _accepts(fn, arity)
        return fn if ok else None

    def exports(self) -> list[tuple[Atom, Atom]]:
        """Every registered ``(module, function)``."""
        return list(self._fns)

    async def apply(
        self, module: Any, function: Any, args: Any, *, caller: Pid | None = None
    ) -> Outcome:
        """Run ``module:function(*args)`` and classify how it ended (see the module doc).

        ``caller`` (the pid that asked for the call) is what :func:`current_caller`
        returns while the function runs.
        """
        token = _CALLER.set(caller)
        try:
            return await self._apply(module, function, args)
        finally:
            _CALLER.reset(token)

    async def _apply(self, module: Any, function: Any, args: Any) -> Outcome:
        fn = None
        if type(args) is list:
            fn = self.lookup(module, function, len(args))
        if fn is None:
            return Outcome(ERROR, UNDEF, [(module, function, args, [])])
        arity = len(args)
        try:
            value = fn(*args)
            if inspect.isawaitable(value):
                value = await value
        except ErlangThrow as exc:
            return _checked(Outcome(THROW, exc.value), module, function, arity)
        except ProcessExit as exc:
            return _checked(Outcome(EXIT, exc.exit_reason), module, function, arity)
        except ErlangError as exc:
            # Raised on purpose, like a BIF's error: the frame names the arguments.
            stack = [(module, function, args, [])]
            return _checked(Outcome(ERROR, exc.reason, stack), module, function, arity)
        except Exception as exc:
            reason = (PYTHON_ERROR, describe_exception(exc).encode("utf-8", "replace"))
            return Outcome(ERROR, reason, [(module, function, arity, _location(exc))])
        return _checked(Outcome(RETURN, value), module, function, arity)


def _checked(outcome: Outcome, module: Atom, function: Atom, arity: int) -> Outcome:
    """``outcome``, or an ``error`` if its value cannot travel as an Erlang term."""
    try:
        encode_term(outcome.value)
    except EncodeError as exc:
        reason = (PYTHON_ERROR, f"EncodeError: {exc}".encode("utf-8", "replace"))
        return Outcome(ERROR, reason, [(module, function, arity, [])])
    return outcome
