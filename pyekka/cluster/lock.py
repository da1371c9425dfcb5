"""Terms of ekka_locker 0.8.1.9: the ``#lock{}`` record, lock types, piggyback, results.

* ``#lock{}`` is the 5-tuple ``{lock, Resource, Owner, Counter, Created}`` (spec 3.3):
  ``counter`` is 0 in requests and 1 in stored entries, ``created`` is
  ``erlang:system_time(millisecond)`` on the *caller's* node.
* A piggyback is ``undefined`` or ``{Module, Function, Args}``, applied by every
  serving node whether the lock is granted or not (spec 10.1).
* A lock result is ``{Bool, [Elem]}`` with ``Elem = Node | {Node, PiggybackResult}``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from pyekka.cluster.constants import UNDEFINED
from pyekka.term.types import Atom, Pid

__all__ = [
    "LOCK",
    "Lock",
    "LockResult",
    "LockType",
    "Piggyback",
    "lock_reply",
    "parse_lock_result",
    "parse_piggyback",
]

LOCK = Atom("lock")

LockResult = tuple[bool, list[Any]]
"""``{Bool, [Node | {Node, PiggybackResult}]}`` as a Python pair."""


class LockType(Enum):
    """Where a lock is taken (spec 10.2)."""

    LOCAL = "local"
    """On the caller's own table only."""
    LEADER = "leader"
    """On ``leader()`` only (the oldest member, down ones included)."""
    QUORUM = "quorum"
    """On ``find_nodes(Resource, ring(up))``: 1-3 nodes of the hash ring."""
    ALL = "all"
    """On every member whose status is ``up`` (``nodelist(up)``), the caller included."""

    @classmethod
    def parse(cls, value: Any) -> LockType:
        """A lock type from its name or atom (``ValueError`` otherwise)."""
        name = value.name if type(value) is Atom else value
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"not a lock type: {value!r}") from None

    @property
    def atom(self) -> Atom:
        """The type as an Erlang atom."""
        return Atom(self.value)


@dataclass(frozen=True)
class Lock:
    """A ``#lock{}`` record: a request (``counter = 0``) or a stored entry (``1``)."""

    resource: Any
    owner: Pid
    counter: int = 0
    created: int = 0

    @classmethod
    def request(cls, resource: Any, owner: Pid, now_ms: int) -> Lock:
        """``lock_obj(Resource)``: the request a caller builds (spec 10.2)."""
        return cls(resource, owner, 0, now_ms)

    def stored(self) -> Lock:
        """The entry a server stores for this request: the same with ``counter = 1``."""
        return replace(self, counter=1)

    def to_term(self) -> tuple:
        """The 5-tuple on the wire."""
        return (LOCK, self.resource, self.owner, self.counter, self.created)

    @classmethod
    def from_term(cls, term: Any) -> Lock:
        """Parse a lock record; ``ValueError`` unless it is a well-formed one."""
        if type(term) is not tuple or len(term) != 5 or term[0] != LOCK:
            raise ValueError(f"not a #lock{{}} 5-tuple: {term!r}")
        _, resource, owner, counter, created = term
        if type(owner) is not Pid:
            raise ValueError(f"lock owner is not a pid: {owner!r}")
        if type(counter) is not int or type(created) is not int:
            raise ValueError(f"lock counter and created must be integers: {term!r}")
        return cls(resource, owner, counter, created)


@dataclass(frozen=True)
class Piggyback:
    """``{Module, Function, Args}``: a call every serving node applies and reports."""

    module: Atom
    function: Atom
    args: tuple[Any, ...] = ()

    def to_term(self) -> tuple:
        """The MFA tuple on the wire (``Args`` is a list)."""
        return (self.module, self.function, list(self.args))


def parse_piggyback(term: Any) -> Piggyback | None:
    """``undefined`` -> ``None``; ``{M, F, Args}`` -> :class:`Piggyback`; else ``ValueError``."""
    if term == UNDEFINED or term is None:
        return None
    if (
        type(term) is tuple
        and len(term) == 3
        and type(term[0]) is Atom
        and type(term[1]) is Atom
        and type(term[2]) is list
    ):
        return Piggyback(term[0], term[1], tuple(term[2]))
    raise ValueError(f"not a piggyback: {term!r}")


_NO_RESULT: Any = object()


def lock_reply(granted: bool, node: Atom, piggyback_result: Any = _NO_RESULT) -> tuple:
    """What ``acquire_lock/3`` and ``release_lock/2`` return on ``node``.

    ``{Granted, [Node]}`` without piggyback, ``{Granted, [{Node, Result}]}`` with one.
    """
    if piggyback_result is _NO_RESULT:
        return (granted, [node])
    return (granted, [(node, piggyback_result)])


def parse_lock_result(term: Any) -> LockResult | None:
    """A well-formed ``{Bool, List}`` reply as a pair, else ``None`` (e.g. ``{badrpc, _}``)."""
    if type(term) is tuple and len(term) == 2 and type(term[0]) is bool and type(term[1]) is list:
        return (term[0], term[1])
    return None
