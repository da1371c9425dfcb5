"""The autocluster's results and status: :class:`AutoclusterState`,
:class:`RoundResult`, :class:`AutoclusterStatus`, and the calling side of
``pyekka_ctl:discovery()`` (:func:`discovery_json`, :func:`discovery_rows`).

All are re-exported by :mod:`pyekka.discovery.autocluster`.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from typing import Any

from pyekka.term import format_term
from pyekka.term.types import Atom

__all__ = [
    "AutoclusterState",
    "AutoclusterStatus",
    "RoundResult",
    "discovery_json",
    "discovery_rows",
]

A = Atom
_UNDEFINED = A("undefined")


class AutoclusterState(enum.Enum):
    """Where the loop is."""

    DISABLED = "disabled"
    """``manual`` discovery or ``cluster.enable = off``: no loop."""
    IDLE = "idle"
    """Not started yet."""
    WAITING = "waiting"
    """A round waits for the cluster's services."""
    RUNNING = "running"
    """A round runs."""
    SLEEPING = "sleeping"
    """Not in a cluster yet: the next round comes after the interval."""
    DONE = "done"
    """In a cluster: no more rounds."""
    STOPPED = "stopped"
    """Stopped (the node stops, or it left its cluster)."""


def _now_text(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")


@dataclass(frozen=True)
class RoundResult:
    """What one round did.

    ``lock`` and ``registered`` are ``"ok"``, ``"ignore"`` or ``"error"`` (``None``:
    not reached); ``discovered`` is ``None`` when discovery failed or was not
    reached; ``target`` the node the round tried to join; ``errors`` the logged
    problems, in order.
    """

    started: float
    finished: float
    lock: str | None = None
    discovered: tuple[str, ...] | None = None
    alive: tuple[str, ...] = ()
    target: str | None = None
    joined: bool = False
    registered: str | None = None
    in_cluster: bool = False
    errors: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for people."""
        parts = [f"lock {self.lock or '-'}"]
        if self.discovered is not None:
            parts.append(f"discovered {len(self.discovered)} ({', '.join(self.discovered)})")
            parts.append(f"alive {len(self.alive)}")
        if self.target is not None:
            parts.append(f"{'joined' if self.joined else 'could not join'} {self.target}")
        if self.registered is not None:
            parts.append(f"register {self.registered}")
        parts.append("in a cluster" if self.in_cluster else "not in a cluster")
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors))
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "started": _now_text(self.started),
            "finished": _now_text(self.finished),
            "lock": self.lock,
            "discovered": None if self.discovered is None else list(self.discovered),
            "alive": list(self.alive),
            "target": self.target,
            "joined": self.joined,
            "registered": self.registered,
            "in_cluster": self.in_cluster,
            "errors": list(self.errors),
            "summary": self.summary(),
        }

    def to_term(self) -> dict[Atom, Any]:
        """The result as an Erlang map (atoms, node atoms, binaries)."""

        def opt_atom(text: str | None) -> Atom:
            return _UNDEFINED if text is None else A(text)

        return {
            A("started"): _now_text(self.started).encode(),
            A("finished"): _now_text(self.finished).encode(),
            A("lock"): opt_atom(self.lock),
            A("discovered"): (
                _UNDEFINED if self.discovered is None else [A(n) for n in self.discovered]
            ),
            A("alive"): [A(n) for n in self.alive],
            A("target"): opt_atom(self.target),
            A("joined"): self.joined,
            A("registered"): opt_atom(self.registered),
            A("in_cluster"): self.in_cluster,
            A("errors"): [e.encode() for e in self.errors],
            A("summary"): self.summary().encode(),
        }


@dataclass(frozen=True)
class AutoclusterStatus:
    """The loop's state, for ``pyekka ctl status``."""

    strategy: str
    """``manual``, ``static``, ``mcast``, ``dns``, ``etcd`` or ``k8s``."""
    detail: str
    """The strategy's own description (its ``repr``)."""
    state: AutoclusterState
    rounds: int
    last_result: RoundResult | None = None

    def describe(self) -> str:
        """A few lines for people."""
        lines = [
            f"discovery: {self.strategy} {self.detail}".rstrip(),
            f"autocluster: {self.state.value}, {self.rounds} round(s)",
        ]
        if self.last_result is not None:
            when = _now_text(self.last_result.finished)
            lines.append(f"last round ({when}): {self.last_result.summary()}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        last = self.last_result
        return {
            "strategy": self.strategy,
            "detail": self.detail,
            "state": self.state.value,
            "rounds": self.rounds,
            "last_result": None if last is None else last.to_json(),
        }

    def to_term(self) -> dict[Atom, Any]:
        """``#{strategy, detail, state, rounds, last_result}`` (``undefined`` before
        the first round); what ``pyekka_ctl:discovery()`` returns."""
        last = self.last_result
        return {
            A("strategy"): A(self.strategy),
            A("detail"): self.detail.encode(),
            A("state"): A(self.state.value),
            A("rounds"): self.rounds,
            A("last_result"): _UNDEFINED if last is None else last.to_term(),
        }


def _text(term: Any) -> Any:
    """A term of a status map as JSON: atoms and binaries as text, ``undefined`` None."""
    if term == _UNDEFINED:
        return None
    if type(term) is Atom:
        return term.name
    if type(term) is bytes:
        return term.decode(errors="replace")
    if type(term) is list:
        return [_text(t) for t in term]
    if type(term) is dict:
        return {_text(k): _text(v) for k, v in term.items()}
    return term


def discovery_json(term: Any) -> dict[str, Any]:
    """``pyekka_ctl:discovery()``'s map (:meth:`AutoclusterStatus.to_term`) as the JSON
    of :meth:`AutoclusterStatus.to_json`; ``ValueError`` for another term."""
    keys = ("strategy", "detail", "state", "rounds", "last_result")
    if type(term) is not dict or any(A(k) not in term for k in keys):
        raise ValueError(f"not a discovery status map: {format_term(term)}")
    found = _text(term)
    return {k: found[k] for k in keys}


def discovery_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` rows of :func:`discovery_json`'s dict, for ``pyekka ctl status``."""
    detail = f" {status['detail']}" if status["detail"] else ""
    rows = [
        ("discovery", f"{status['strategy']}{detail}"),
        ("autocluster", f"{status['state']}, {status['rounds']} round(s)"),
    ]
    last = status["last_result"]
    if last is not None:
        rows.append(("last round", f"{last['finished']}: {last['summary']}"))
    return rows
