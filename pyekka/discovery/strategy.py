"""The discovery strategy contract (ekka's ``ekka_cluster_strategy`` behaviour).

A strategy answers five questions for the autocluster loop, as async methods:

==============  ================================================================
``discover()``  candidate node names (may include the local node)
``lock()``      take the cluster-wide "I am joining" lock
``unlock()``    release it
``register()``  advertise the local node
``unregister``  withdraw it
==============  ================================================================

``lock``/``unlock``/``register``/``unregister`` return :attr:`Outcome.OK` when they did
something and :attr:`Outcome.IGNORE` when the strategy has no such notion (ekka's
``ignore``: the autocluster loop then waits a random moment instead of locking).
Every failure is logged and raised as :class:`DiscoveryError`; a strategy never lets
another exception type escape, so the caller's loop only needs one ``except``.
"""

from __future__ import annotations

import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from types import TracebackType

__all__ = [
    "DiscoveryError",
    "Outcome",
    "Strategy",
    "check_node_name",
    "short_name",
    "unique",
]

MAX_ATOM_CHARS = 255
"""Node names are atoms: at most 255 characters."""


class DiscoveryError(Exception):
    """A discovery operation failed; ``strategy`` names the strategy (``"etcd"``...)."""

    def __init__(self, strategy: str, message: str) -> None:
        super().__init__(f"{strategy} discovery: {message}")
        self.strategy = strategy
        self.message = message


class Outcome(enum.Enum):
    """What ``lock``/``unlock``/``register``/``unregister`` did (ekka's ``ok``/``ignore``)."""

    OK = "ok"
    IGNORE = "ignore"


def check_node_name(name: str) -> str:
    """``name`` if it can be a node name (``name@host``, an atom's length), else ValueError."""
    if not isinstance(name, str) or "@" not in name or len(name) > MAX_ATOM_CHARS:
        raise ValueError(f"not a node name (name@host, at most 255 characters): {name!r}")
    return name


def short_name(node: str) -> str:
    """The part of a node name before ``@`` (``emqx`` for ``emqx@10.0.0.1``)."""
    return node.split("@", 1)[0]


class Strategy(ABC):
    """Base class of the strategies: ``discover`` plus optional lock/registration.

    Subclasses set ``name`` and implement :meth:`discover`; the other operations
    default to :attr:`Outcome.IGNORE`. Use a strategy as an async context manager
    (or call :meth:`close`) to release its sockets, sessions and background tasks.
    """

    name: str = "strategy"
    log: logging.Logger = logging.getLogger("pyekka.discovery")

    @abstractmethod
    async def discover(self) -> list[str]:
        """Candidate node names; raises :class:`DiscoveryError`."""

    async def lock(self) -> Outcome:
        """Take the cluster-wide join lock (most strategies: ``IGNORE``)."""
        return Outcome.IGNORE

    async def unlock(self) -> Outcome:
        """Release the join lock."""
        return Outcome.IGNORE

    async def register(self) -> Outcome:
        """Advertise the local node."""
        return Outcome.IGNORE

    async def unregister(self) -> Outcome:
        """Withdraw the local node's advertisement."""
        return Outcome.IGNORE

    async def close(self) -> None:
        """Release resources (idempotent). Does not unregister."""
        return None

    async def __aenter__(self) -> Strategy:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def error(self, message: str, *args: object) -> DiscoveryError:
        """Log ``message % args`` as a warning and return the error to raise."""
        text = message % args if args else message
        self.log.warning("%s discovery: %s", self.name, text)
        return DiscoveryError(self.name, text)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def unique(names: Iterable[str]) -> list[str]:
    """``names`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(names))
