"""One distribution connection on asyncio: the handshake in either role, then the
established connection (reading, writing, ticking).

This module only moves bytes between a socket and the sans-I/O machines of
:mod:`pyekka.dist`; what a connection means for the node (the connection table,
simultaneous connects, routing signals into the runtime) is
:mod:`pyekka.node.distribution`'s business, reached through callbacks.

* :func:`run_initiator` / :func:`run_acceptor` drive a handshake under one
  deadline (OTP's ``net_setuptime``) and return the
  :class:`~pyekka.dist.handshake.HandshakeComplete`, or raise
  :class:`HandshakeError`: a :class:`~pyekka.node.connect_error.ConnectError`
  with the reason and words fit for a log line.
* :class:`Connection` is an established connection: :meth:`Connection.send`
  writes a control message at once (so signals leave in call order), a reader task
  feeds received bytes to :class:`~pyekka.dist.connection.DistConnection` and hands
  every message to ``dispatch`` in arrival order, and a timer runs the tick rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pyekka.dist import flags as df
from pyekka.dist.connection import ConnectionTimedOut, DistConnection
from pyekka.dist.control import ControlMessage
from pyekka.dist.errors import ProtocolError
from pyekka.dist.events import SendBytes
from pyekka.dist.framing import DEFAULT_MAX_FRAME_SIZE
from pyekka.dist.handshake import (
    AcceptorHandshake,
    AliveQuery,
    HandshakeComplete,
    HandshakeEvent,
    HandshakeFailed,
    InitiatorHandshake,
    LocalNode,
    OldConnectionMustClose,
    PeerNamed,
)
from pyekka.dist.ticker import DEFAULT_NET_TICKTIME
from pyekka.node.connect_error import ConnectError, ConnectFailure, failure_of_handshake
from pyekka.term.types import Atom

__all__ = [
    "CONNECTION_CLOSED",
    "NET_TICK_TIMEOUT",
    "Connection",
    "DistSettings",
    "HandshakeError",
    "run_acceptor",
    "run_initiator",
]

log = logging.getLogger("pyekka.node.dist")

CONNECTION_CLOSED = Atom("connection_closed")
NET_TICK_TIMEOUT = Atom("net_tick_timeout")
DISCONNECT = Atom("disconnect")
_READ_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class DistSettings:
    """What every connection of a node shares.

    ``handshake_timeout`` is OTP's ``net_setuptime`` (7 s by default): a peer that
    has not completed the handshake by then is dropped (slow or silent peers).
    ``interface`` binds outgoing sockets to that address (``None``: any).
    """

    net_ticktime: float = DEFAULT_NET_TICKTIME
    handshake_timeout: float = 7.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    interface: str | None = None


class HandshakeError(ConnectError):
    """A handshake did not complete: ``reason`` says why, ``detail`` (``str()``) says
    it for the log; ``node`` is the peer if it said its name."""

    @classmethod
    def failed(cls, event: HandshakeFailed, peer: str | None) -> HandshakeError:
        """The error for a :class:`~pyekka.dist.handshake.HandshakeFailed` event."""
        return cls(failure_of_handshake(event.kind), event.reason, peer)


def _is_challenge_reply(data: bytes) -> bool:
    return data[2:3] == b"r"


async def run_initiator(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    local: LocalNode,
    peer: str,
    *,
    timeout: float,
    keep_on_alive: Callable[[], bool],
    version: int = 6,
) -> HandshakeComplete:
    """Connect-side handshake with ``peer``. ``keep_on_alive`` answers the peer's
    ``alive`` status (it still has a connection to us): go on or give up.
    ``version`` 5 opens with the old ``n`` name message (as OTP 23/24 do towards
    a node that epmd, or ekka's port rule, reports as version 5)."""
    hs = InitiatorHandshake(local, peer, version=version)
    replied = False

    async def run() -> HandshakeComplete:
        nonlocal replied
        events: deque[HandshakeEvent] = deque(hs.start())
        while True:
            while events:
                event = events.popleft()
                if isinstance(event, SendBytes):
                    writer.write(event.data)
                    replied = replied or _is_challenge_reply(event.data)
                elif isinstance(event, AliveQuery):
                    events.extend(hs.answer_alive(keep_on_alive()))
                elif isinstance(event, HandshakeComplete):
                    return event
                elif isinstance(event, HandshakeFailed):
                    raise HandshakeError.failed(event, peer)
            data = await reader.read(_READ_SIZE)
            if not data:
                if replied:
                    raise HandshakeError(
                        ConnectFailure.WRONG_COOKIE,
                        "the peer closed the connection after our challenge reply: "
                        "it most likely has a different cookie",
                        peer,
                    )
                raise _closed_early(peer)
            events.extend(hs.receive_data(data))

    return await _with_deadline(run(), timeout, peer)


async def run_acceptor(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    local: LocalNode,
    *,
    timeout: float,
    decide: Callable[[PeerNamed], str],
    close_old: Callable[[str], Awaitable[None]],
) -> HandshakeComplete:
    """Accept-side handshake. ``decide`` gives the status for the named peer
    (``ok``, ``ok_simultaneous``, ``nok``, ``not_allowed``, ``alive``);
    ``close_old`` drops our old connection to a peer that reconnects."""
    hs = AcceptorHandshake(local)

    async def run() -> HandshakeComplete:
        events: deque[HandshakeEvent] = deque()
        while True:
            while events:
                event = events.popleft()
                if isinstance(event, SendBytes):
                    writer.write(event.data)
                elif isinstance(event, PeerNamed):
                    events.extend(hs.accept(decide(event)))  # type: ignore[arg-type]
                elif isinstance(event, OldConnectionMustClose):
                    await close_old(event.peer_name)
                    events.extend(hs.old_connection_closed())
                elif isinstance(event, HandshakeComplete):
                    return event
                elif isinstance(event, HandshakeFailed):
                    raise HandshakeError.failed(event, event.peer_name)
            data = await reader.read(_READ_SIZE)
            if not data:
                raise _closed_early(hs.peer_name)
            events.extend(hs.receive_data(data))

    return await _with_deadline(run(), timeout, None, lambda: hs.peer_name)


def _closed_early(peer: str | None) -> HandshakeError:
    return HandshakeError(
        ConnectFailure.UNREACHABLE, "the peer closed the connection during the handshake", peer
    )


async def _with_deadline(
    work: Awaitable[HandshakeComplete],
    timeout: float,
    peer: str | None,
    named: Callable[[], str | None] = lambda: None,
) -> HandshakeComplete:
    try:
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError:
        raise HandshakeError(
            ConnectFailure.TIMEOUT,
            f"no complete handshake within {timeout:g} s (net_setuptime)",
            peer or named(),
        ) from None
    except OSError as exc:
        raise HandshakeError(
            ConnectFailure.UNREACHABLE, f"socket error during the handshake: {exc}", peer or named()
        ) from exc


class Connection:
    """An established connection to ``peer``.

    ``dispatch(connection, message)`` is called for every control message in
    arrival order; ``closed(connection, reason)`` exactly once when it ends (the
    peer closed it, a protocol error, a tick timeout, or :meth:`close`).
    """

    def __init__(
        self,
        peer: Atom,
        done: HandshakeComplete,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        conn_id: int,
        settings: DistSettings,
        dispatch: Callable[[Connection, ControlMessage], None],
        closed: Callable[[Connection, Any], None],
    ) -> None:
        self.peer = peer
        self.conn_id = conn_id
        self.flags = done.flags
        self.peer_flags = done.peer_flags
        self.peer_creation = done.peer_creation
        self.hidden = not done.flags & df.DFlag.PUBLISHED
        self._rest = done.rest
        self._reader = reader
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._dist = DistConnection(
            done.flags,
            self._loop.time(),
            net_ticktime=settings.net_ticktime,
            max_frame_size=settings.max_frame_size,
        )
        self._dispatch = dispatch
        self._closed_cb = closed
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.is_closed = False

    def __repr__(self) -> str:
        return f"<Connection {self.peer.name} #{self.conn_id}>"

    def has(self, flag: int) -> bool:
        """Whether ``flag`` was negotiated on this connection."""
        return bool(self.flags & flag)

    def start(self) -> None:
        """Deliver what came with the handshake, then start reading and ticking."""
        self._schedule_timer()
        self._task = self._loop.create_task(self._read_loop(), name=f"pyekka dist {self.peer.name}")

    def send(self, message: ControlMessage) -> None:
        """Write one control message now (dropped once the connection is closed).

        Raises :class:`~pyekka.term.errors.EncodeError` before writing anything
        when a term cannot be encoded.
        """
        if self.is_closed:
            return
        data = self._dist.send(message)
        self._writer.write(data)

    def close(self, reason: Any = DISCONNECT) -> None:
        """Close the connection; ``closed`` is called with ``reason``."""
        if self.is_closed:
            return
        self.is_closed = True
        if self._timer is not None:
            self._timer.cancel()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        self._writer.close()
        self._closed_cb(self, reason)

    @property
    def finished(self) -> bool:
        """Whether the connection is closed and its reader task is over."""
        return self.is_closed and (self._task is None or self._task.done())

    async def wait_closed(self) -> None:
        """Wait until the reader task and the socket are finished."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    def _schedule_timer(self) -> None:
        self._timer = self._loop.call_at(self._dist.next_deadline, self._on_timer)

    def _on_timer(self) -> None:
        if self.is_closed:
            return
        for event in self._dist.on_timer(self._loop.time()):
            if isinstance(event, SendBytes):
                self._writer.write(event.data)
            elif isinstance(event, ConnectionTimedOut):
                log.warning(
                    "no data or tick from %s for net_ticktime: the connection is dead",
                    self.peer.name,
                )
                self.close(NET_TICK_TIMEOUT)
                return
        self._schedule_timer()

    def _deliver(self, data: bytes) -> None:
        for event in self._dist.receive_data(data):
            self._dispatch(self, event.message)

    async def _read_loop(self) -> None:
        reason: Any = CONNECTION_CLOSED
        try:
            if self._rest:
                self._deliver(self._rest)
                self._rest = b""
            while not self.is_closed:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    log.info("connection to %s closed by the peer", self.peer.name)
                    break
                self._deliver(data)
        except ProtocolError as exc:
            log.error("protocol error from %s, dropping the connection: %s", self.peer.name, exc)
        except (ConnectionError, OSError) as exc:
            log.info("connection to %s lost: %s", self.peer.name, exc)
        except asyncio.CancelledError:
            if not self.is_closed:
                raise
            return
        except Exception:
            log.exception("bug while handling a message from %s", self.peer.name)
        self.close(reason)
