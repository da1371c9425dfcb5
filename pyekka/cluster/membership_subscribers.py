"""Who hears of the ``ekka_membership`` process's events: Python callbacks (kept across
restarts), change listeners, and Erlang pids that called ``{monitor, ...}``
(``ekka:monitor/2`` on a genuine or pyekka node).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pyekka.cluster.events import Event, EventType
from pyekka.term.types import Pid

if TYPE_CHECKING:
    from pyekka.node.process import Process

__all__ = ["EventCallback", "Subscribers"]

log = logging.getLogger("pyekka.cluster.membership")

EventCallback = Callable[[Event], None]
"""A subscriber: called in the membership process with each event (must not block)."""

_ALL_TYPES = frozenset(EventType)


def _remover(items: list[Any], item: Any) -> Callable[[], None]:
    def remove() -> None:
        with contextlib.suppress(ValueError):
            items.remove(item)

    return remove


class Subscribers:
    """The callbacks, change listeners and monitoring pids of a membership service."""

    def __init__(self) -> None:
        self._callbacks: list[tuple[frozenset[EventType], EventCallback]] = []
        self._listeners: list[Callable[[], None]] = []
        self._pid_monitors: dict[tuple[EventType, Pid], Any] = {}

    def on_event(
        self, callback: EventCallback, types: Iterable[EventType] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for events of ``types`` (all: ``None``); returns the
        unsubscriber."""
        entry = (_ALL_TYPES if types is None else frozenset(types), callback)
        self._callbacks.append(entry)
        return _remover(self._callbacks, entry)

    def on_change(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` at every :meth:`changed`; returns the unsubscriber."""
        self._listeners.append(callback)
        return _remover(self._listeners, callback)

    def notify(self, events: Iterable[Event], proc: Process | None) -> None:
        """Call the callbacks with ``events`` and send them to the monitoring pids
        (from ``proc``; none without it)."""
        for event in events:
            for types, callback in list(self._callbacks):
                if event.type in types:
                    try:
                        callback(event)
                    except Exception:
                        log.exception("a membership subscriber failed on %s", event)
            for (kind, pid), _ref in list(self._pid_monitors.items()):
                if kind is event.type and proc is not None:
                    proc.send(pid, event.to_term())

    def changed(self) -> None:
        """Call the change listeners (the process handled a message)."""
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("a membership change listener failed")

    def set_pid_monitor(self, proc: Process, kind: EventType, pid: Pid, on: bool) -> None:
        """Start (``on``) or stop sending events of ``kind`` to ``pid``, monitoring it."""
        key = (kind, pid)
        if on and key not in self._pid_monitors:
            self._pid_monitors[key] = proc.monitor(pid)
        elif not on and key in self._pid_monitors:
            proc.demonitor(self._pid_monitors.pop(key), flush=True)

    def pid_down(self, ref: Any) -> None:
        """A monitored pid is gone (its monitor ``ref`` fired): forget it."""
        for key, monitor in list(self._pid_monitors.items()):
            if monitor == ref:
                del self._pid_monitors[key]

    def clear_pid_monitors(self) -> None:
        """Forget the monitoring pids (the process stopped)."""
        self._pid_monitors.clear()
