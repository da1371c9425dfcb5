"""Waiting for a condition in async tests, with a failure message that shows what was seen.

::

    await wait_until(lambda: set(node.nodes()) == {other.name}, timeout=5,
                     message="node sees other", observe=node.nodes)

The condition is polled (it may be a plain callable or return an awaitable) until it
returns a truthy value, which :func:`wait_until` returns. After ``timeout`` seconds it
raises :class:`WaitTimeout`, an ``AssertionError`` whose text names the condition and
the last observed state: ``observe()`` if given, else the condition's last value (or
the exception it last raised).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["WaitTimeout", "wait_until"]


class WaitTimeout(AssertionError):
    """A condition did not hold in time; :attr:`last` is the last observed state."""

    def __init__(self, message: str, timeout: float, last: Any) -> None:
        super().__init__(f"{message}: still not true after {timeout:g} s; last observed: {last!r}")
        self.message = message
        self.timeout = timeout
        self.last = last


async def _value(fn: Callable[[], Any]) -> Any:
    value = fn()
    if inspect.isawaitable(value):
        value = await value
    return value


async def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 10.0,
    message: str | None = None,
    observe: Callable[[], Any] | None = None,
    interval: float = 0.02,
) -> Any:
    """Poll ``condition()`` every ``interval`` seconds until it is truthy; return its value.

    Exceptions raised by the condition count as "not yet" (the last one is reported).
    Raises :class:`WaitTimeout` after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    label = message or getattr(condition, "__qualname__", repr(condition))
    while True:
        try:
            last: Any = await _value(condition)
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        if loop.time() >= deadline:
            if observe is not None:
                try:
                    last = await _value(observe)
                except Exception as exc:
                    last = exc
            raise WaitTimeout(label, timeout, last)
        await asyncio.sleep(interval)
