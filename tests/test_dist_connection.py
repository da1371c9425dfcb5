"""The established connection: ticks, the net_ticktime rule, sending and receiving."""

from __future__ import annotations

import pytest

from pyekka.dist import control as c
from pyekka.dist import flags as df
from pyekka.dist.connection import ConnectionTimedOut, DistConnection, MessageReceived
from pyekka.dist.errors import ProtocolError
from pyekka.dist.events import SendBytes
from pyekka.dist.framing import TICK, FrameDecoder, encode_pass_through
from pyekka.dist.ticker import TickAction, Ticker
from pyekka.term.types import Atom, Pid

P1 = Pid(Atom("b@127.0.0.1"), 90, 0, 3)
P2 = Pid(Atom("py@127.0.0.1"), 1, 0, 4)


def test_idle_connection_ticks_every_quarter_ticktime() -> None:
    ticker = Ticker(0.0, net_ticktime=60)
    assert ticker.interval == 15 and ticker.next_deadline == 15
    assert ticker.on_timer(14.9) is TickAction.NONE
    ticker.note_read()
    assert ticker.on_timer(15.0) is TickAction.SEND_TICK
    ticker.note_read()
    ticker.note_write()
    assert ticker.on_timer(30.0) is TickAction.NONE  # we wrote: no tick needed
    assert ticker.next_deadline == 45


def test_silent_peer_times_out_after_intensity_rounds_without_reads() -> None:
    ticker = Ticker(0.0, net_ticktime=60)
    ticker.note_read()
    assert ticker.on_timer(15) is TickAction.SEND_TICK  # round 1: read
    for t in (30, 45, 60):  # rounds 2..4: nothing read, we keep ticking
        assert ticker.on_timer(t) is TickAction.SEND_TICK
    assert ticker.on_timer(75) is TickAction.TIMEOUT  # 4 rounds since the last read


def test_a_read_in_time_keeps_the_connection() -> None:
    ticker = Ticker(0.0, net_ticktime=8, intensity=4)
    for t in range(2, 40, 2):
        if t % 6 == 0:
            ticker.note_read()
        ticker.note_write()
        assert ticker.on_timer(t) is TickAction.NONE


def test_hidden_connections_tick_when_nothing_was_read() -> None:
    ticker = Ticker(0.0, net_ticktime=60, hidden=True)
    ticker.note_write()
    assert ticker.on_timer(15) is TickAction.SEND_TICK
    ticker.note_write()
    ticker.note_read()
    assert ticker.on_timer(30) is TickAction.NONE


def test_late_timers_do_not_pile_up_rounds() -> None:
    ticker = Ticker(0.0, net_ticktime=60)
    ticker.note_read()
    assert ticker.on_timer(100.0) is TickAction.SEND_TICK
    assert ticker.next_deadline == 115.0


@pytest.mark.parametrize("kwargs", [{"net_ticktime": 0}, {"intensity": 3}, {"intensity": 1001}])
def test_ticker_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Ticker(0.0, **kwargs)


def test_connection_sends_pass_through_without_header_flags() -> None:
    conn = DistConnection(df.DEFAULT_FLAGS, 0.0)
    message = c.RegSend(P2, Atom("rex"), (P2, Atom("features_request")))
    data = conn.send(message)
    assert data == encode_pass_through(message.to_term(), message.payload())
    peer = DistConnection(df.DEFAULT_FLAGS, 0.0)
    assert peer.receive_data(data[:5]) == []
    assert peer.receive_data(data[5:]) == [MessageReceived(message)]


def test_connection_sends_header_frames_when_negotiated() -> None:
    flags = df.DEFAULT_FLAGS | df.DFlag.FRAGMENTS
    conn = DistConnection(flags, 0.0)
    data = conn.send(c.Link(P2, P1))
    assert data[4:7] == bytes([131, 68, 0])
    assert FrameDecoder().receive_data(data)[0].control == (1, P2, P1)


def test_connection_timer_events() -> None:
    conn = DistConnection(df.DEFAULT_FLAGS, 0.0, net_ticktime=4)
    assert conn.next_deadline == 1.0
    assert conn.on_timer(0.5) == []
    assert conn.on_timer(1.0) == [SendBytes(TICK)]
    conn.send(c.Link(P2, P1))
    assert conn.receive_data(TICK) == []  # a tick counts as life
    assert conn.on_timer(2.0) == []
    events = [conn.on_timer(t) for t in (3.0, 4.0, 5.0, 6.0)]
    assert events[-1] == [ConnectionTimedOut()]
    assert events[:-1] == [[SendBytes(TICK)]] * 3


def test_connection_rejects_broken_messages() -> None:
    conn = DistConnection(df.DEFAULT_FLAGS, 0.0)
    with pytest.raises(ProtocolError, match="unknown distribution operation"):
        conn.receive_data(encode_pass_through((99, P1)))
    with pytest.raises(ProtocolError, match="LINK control tuple"):
        DistConnection(df.DEFAULT_FLAGS, 0.0).receive_data(encode_pass_through((1, P1)))
