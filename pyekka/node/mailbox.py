"""A process mailbox with Erlang's selective receive.

Messages stay in arrival order. ``receive()`` without a pattern takes the oldest
message in O(1); with a pattern it scans from the oldest, takes the first match
and leaves every other message where it was. A waiting receive sleeps on a future
that the next delivery wakes, and only looks at messages that arrived since its
last scan: there is no polling.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Mailbox"]

_NO_MATCH: Any = object()


class Mailbox:
    """The message queue of one process; only that process's task may receive."""

    __slots__ = ("_queue", "_waiter")

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, msg: Any) -> None:
        """Append a message and wake a waiting receive."""
        self._queue.append(msg)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def snapshot(self) -> list[Any]:
        """The queued messages, oldest first (a copy; for inspection)."""
        return list(self._queue)

    def clear(self) -> None:
        """Drop every queued message."""
        self._queue.clear()

    def remove_first(self, pred: Callable[[Any], bool]) -> bool:
        """Remove the oldest message for which ``pred`` is true; whether one was found."""
        q = self._queue
        for i in range(len(q)):
            if pred(q[i]):
                del q[i]
                return True
        return False

    def mark(self) -> int:
        """A position for ``receive(..., since=mark)``: the messages queued now are
        skipped by that receive (OTP's receive marker, for a pattern that only
        later messages can match, such as one naming a fresh reference)."""
        return len(self._queue)

    async def receive(
        self,
        match: Callable[[Any], Any] | None = None,
        timeout: float | None = None,
        since: int = 0,
    ) -> Any:
        """The oldest message for which ``match`` is truthy (any message if ``None``).

        ``timeout`` is in seconds (``None`` waits forever, ``0`` only looks at what
        is queued); when it passes, ``TimeoutError`` is raised and the mailbox is
        left untouched. ``since`` (a :meth:`mark` taken by the receiving task, with
        no receive in between) skips the messages that were queued before it.
        """
        if match is None:
            return await self._take(None, timeout, 0)
        return await self._take(lambda m: m if match(m) else _NO_MATCH, timeout, since)

    async def receive_select(
        self, select: Callable[[Any], Any], timeout: float | None = None, since: int = 0
    ) -> Any:
        """Like ``receive``, for pattern extraction: ``select(msg)`` returns ``None``
        for no match, anything else is a match; that value is returned and the
        message is removed.
        """

        def test(m: Any) -> Any:
            r = select(m)
            return _NO_MATCH if r is None else r

        return await self._take(test, timeout, since)

    async def _take(
        self, test: Callable[[Any], Any] | None, timeout: float | None, since: int
    ) -> Any:
        if self._waiter is not None:
            raise RuntimeError("another task is already receiving from this mailbox")
        q = self._queue
        scanned = min(since, len(q))
        expired = timeout is not None and timeout <= 0
        handle: asyncio.TimerHandle | None = None
        loop: asyncio.AbstractEventLoop | None = None

        def expire() -> None:
            nonlocal expired
            expired = True
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

        try:
            while True:
                if test is None:
                    if q:
                        return q.popleft()
                else:
                    # Index loop, not iteration: ``test`` may send to this mailbox.
                    while scanned < len(q):
                        value = test(q[scanned])
                        if value is not _NO_MATCH:
                            del q[scanned]
                            return value
                        scanned += 1
                if expired:
                    raise TimeoutError
                if loop is None:
                    loop = asyncio.get_running_loop()
                    if timeout is not None:
                        handle = loop.call_later(timeout, expire)
                fut: asyncio.Future[None] = loop.create_future()
                self._waiter = fut
                try:
                    await fut
                finally:
                    self._waiter = None
        finally:
            if handle is not None:
                handle.cancel()
