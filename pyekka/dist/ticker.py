"""Connection liveness: when to send a tick and when the peer is dead (net_ticktime).

OTP's rule (``dist_util:send_tick/2``): every ``net_ticktime / intensity`` seconds
(15 s by default: ticktime 60, intensity 4) the connection checks what happened
since the last check. If nothing was written, it writes a tick (a zero-length
frame); a hidden connection also ticks when nothing was read, because hidden
C nodes only tick back. If nothing at all was read during ``intensity``
consecutive checks, the peer is declared dead (``net_tick_timeout``), so a silent
peer is detected after 45 to 75 seconds by default.

:class:`Ticker` is the pure state of that rule: tell it about reads and writes,
call :meth:`Ticker.on_timer` at :attr:`Ticker.next_deadline`.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["DEFAULT_NET_TICKTIME", "DEFAULT_TICK_INTENSITY", "TickAction", "Ticker"]

DEFAULT_NET_TICKTIME = 60.0
DEFAULT_TICK_INTENSITY = 4


class TickAction(Enum):
    """What a timer round decided."""

    NONE = "none"
    SEND_TICK = "send_tick"
    TIMEOUT = "timeout"


class Ticker:
    """Tick bookkeeping of one connection; times are in seconds on any monotonic clock."""

    __slots__ = (
        "_last_read_round",
        "_read",
        "_round",
        "_written",
        "hidden",
        "intensity",
        "interval",
        "next_deadline",
    )

    def __init__(
        self,
        now: float,
        *,
        net_ticktime: float = DEFAULT_NET_TICKTIME,
        intensity: int = DEFAULT_TICK_INTENSITY,
        hidden: bool = False,
    ) -> None:
        if net_ticktime <= 0:
            raise ValueError("net_ticktime must be positive")
        if not 4 <= intensity <= 1000:
            raise ValueError("the tick intensity is 4..1000 (as net_tickintensity)")
        self.intensity = intensity
        self.interval = net_ticktime / intensity
        self.hidden = hidden
        self.next_deadline = now + self.interval
        self._read = False
        self._written = False
        self._round = 0
        self._last_read_round = 0

    def note_read(self) -> None:
        """Something (data or a tick) arrived from the peer."""
        self._read = True

    def note_write(self) -> None:
        """A message was written to the peer (the ticks this class asks for do not count)."""
        self._written = True

    def on_timer(self, now: float) -> TickAction:
        """Run one check if ``now`` reached :attr:`next_deadline` (else ``NONE``)."""
        if now < self.next_deadline:
            return TickAction.NONE
        self._round += 1
        self.next_deadline += self.interval
        if self.next_deadline <= now:  # the owner was late: do not pile up rounds
            self.next_deadline = now + self.interval
        read, written = self._read, self._written
        self._read = self._written = False
        if read:
            self._last_read_round = self._round
        elif self._round - self._last_read_round >= self.intensity:
            return TickAction.TIMEOUT
        if not written or (self.hidden and not read):
            return TickAction.SEND_TICK
        return TickAction.NONE
