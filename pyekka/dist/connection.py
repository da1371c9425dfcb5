"""A distribution connection after the handshake, sans I/O.

:class:`DistConnection` joins the frame decoder, the control messages and the
tick rule: bytes from the peer become :class:`MessageReceived` events, messages
to send become bytes, and :meth:`DistConnection.on_timer` says when to tick or
that the peer is dead. It sends pass-through frames, or header frames without
atom cache references once DIST_HDR_ATOM_CACHE or FRAGMENTS was negotiated
(OTP then rejects pass-through frames). It never fragments what it sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyekka.dist import flags as df
from pyekka.dist.control import ControlMessage, parse_control
from pyekka.dist.events import SendBytes
from pyekka.dist.framing import (
    DEFAULT_MAX_FRAGMENTED_BYTES,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_SEQUENCES,
    TICK,
    Frame,
    FrameDecoder,
    encode_header_frame,
    encode_pass_through,
)
from pyekka.dist.ticker import DEFAULT_NET_TICKTIME, DEFAULT_TICK_INTENSITY, TickAction, Ticker

__all__ = ["ConnectionTimedOut", "DistConnection", "MessageReceived"]


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A control message (with its payload, for operations that have one) arrived."""

    message: ControlMessage


@dataclass(frozen=True, slots=True)
class ConnectionTimedOut:
    """Nothing came from the peer for a whole ``net_ticktime``: close the connection
    (OTP's reason is ``net_tick_timeout``)."""


class DistConnection:
    """One established connection: ``receive_data`` in, ``send`` out, ``on_timer``.

    ``flags`` are the negotiated flags from
    :class:`~pyekka.dist.handshake.HandshakeComplete`; ``now`` is the current time
    on the monotonic clock the owner will also pass to :meth:`on_timer`.
    """

    def __init__(
        self,
        flags: int,
        now: float,
        *,
        net_ticktime: float = DEFAULT_NET_TICKTIME,
        tick_intensity: int = DEFAULT_TICK_INTENSITY,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_fragmented_bytes: int = DEFAULT_MAX_FRAGMENTED_BYTES,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
    ) -> None:
        self.flags = flags
        self.dist_header = df.uses_dist_header(flags)
        self.decoder = FrameDecoder(
            max_frame_size=max_frame_size,
            max_fragmented_bytes=max_fragmented_bytes,
            max_sequences=max_sequences,
        )
        self.ticker = Ticker(
            now,
            net_ticktime=net_ticktime,
            intensity=tick_intensity,
            hidden=not flags & df.DFlag.PUBLISHED,
        )

    @property
    def next_deadline(self) -> float:
        """When :meth:`on_timer` must next be called."""
        return self.ticker.next_deadline

    def receive_data(self, data: bytes) -> list[MessageReceived]:
        """Feed bytes from the peer. Raises :class:`~pyekka.dist.errors.ProtocolError`
        on anything malformed (close the connection then)."""
        if data:
            self.ticker.note_read()
        events = []
        for item in self.decoder.receive_data(data):
            if isinstance(item, Frame):
                message = parse_control(item.control, item.payload)
                events.append(MessageReceived(message))
        return events

    def send(self, message: ControlMessage) -> bytes:
        """The bytes of one frame carrying ``message`` (write them as they are).

        Raises :class:`~pyekka.term.errors.EncodeError` for values that have no
        term form; nothing is recorded as written then.
        """
        encode = encode_header_frame if self.dist_header else encode_pass_through
        control = message.to_term()
        data = encode(control, message.payload()) if message.has_payload() else encode(control)
        self.ticker.note_write()
        return data

    def on_timer(self, now: float) -> list[SendBytes | ConnectionTimedOut]:
        """Run the tick rule; a tick to send, or :class:`ConnectionTimedOut`."""
        action = self.ticker.on_timer(now)
        if action is TickAction.SEND_TICK:
            return [SendBytes(TICK)]
        if action is TickAction.TIMEOUT:
            return [ConnectionTimedOut()]
        return []
