"""The Erlang distribution protocol as pure state machines (sans I/O, no asyncio).

Bytes in, events out; calls in, bytes out. Nothing here opens sockets, sleeps or
reads a clock by itself: the asyncio runtime (``pyekka.node``) owns the sockets
and timers and drives these objects.

Modules, one role each:

==================  ==============================================================
``flags``           every ``DFLAG_*``, what pyekka advertises and requires,
                    :func:`~pyekka.dist.flags.describe` for logs
``names``           node name checks, ekka's port rule :func:`ekka_port`
``epmd``            EPMD messages: client requests, replies, their parsers
``epmd_server``     an embedded EPMD (registry + one object per connection)
``handshake``       :class:`InitiatorHandshake`, :class:`AcceptorHandshake`
``framing``         4-byte frames, ticks, distribution headers, atom cache,
                    fragment reassembly (:class:`~pyekka.dist.framing.FrameDecoder`)
``control``         the control messages (``LINK`` ... ``UNLINK_ID_ACK``) as
                    frozen dataclasses, :func:`parse_control`
``ticker``          the ``net_ticktime`` rule as pure state
``connection``      :class:`DistConnection`: framing + control + ticker
``ops``             the ``DOP_*`` operation codes
==================  ==============================================================

How the runtime drives a connection
-----------------------------------

Outgoing (we connect)::

    hs = InitiatorHandshake(LocalNode(name, creation, cookie), peer_name)
    write(hs.start())                 # SendBytes events: write their .data in order
    while not hs.finished:
        for ev in hs.receive_data(await read()):
            SendBytes -> write; AliveQuery -> hs.answer_alive(still_wanted)
            HandshakeFailed -> close; HandshakeComplete -> switch to the connection

Incoming (we accepted)::

    hs = AcceptorHandshake(LocalNode(...))
    PeerNamed(name, ...) -> hs.accept(simultaneous_status(own, name, existing))
    OldConnectionMustClose -> close the old one, then hs.old_connection_closed()

Established::

    conn = DistConnection(done.flags, loop.time())
    conn.receive_data(done.rest)      # bytes that followed the handshake
    on data:   for ev in conn.receive_data(data): deliver(ev.message)
    to send:   write(conn.send(RegSend(from_pid, name, msg)))
    timer at conn.next_deadline: conn.on_timer(loop.time()) -> SendBytes (a tick)
               or ConnectionTimedOut (close, reason net_tick_timeout)

Any :class:`ProtocolError` from ``receive_data`` means the peer broke the
protocol: close the connection. EPMD follows the same pattern: the client writes
``epmd.encode_*`` bytes and parses with ``epmd.read_*`` until they return a value;
the embedded server feeds each accepted socket's bytes to an
``epmd_server.EpmdServerConnection`` and calls its ``connection_closed()`` when
the socket closes (that ends the node's registration).
"""

from pyekka.dist.connection import ConnectionTimedOut, DistConnection, MessageReceived
from pyekka.dist.control import ControlMessage, parse_control
from pyekka.dist.errors import ProtocolError
from pyekka.dist.events import SendBytes
from pyekka.dist.flags import DEFAULT_FLAGS, REQUIRED_FLAGS, DFlag, describe
from pyekka.dist.handshake import (
    AcceptorHandshake,
    AliveQuery,
    FailureKind,
    HandshakeComplete,
    HandshakeFailed,
    InitiatorHandshake,
    LocalNode,
    OldConnectionMustClose,
    PeerNamed,
    gen_digest,
    simultaneous_status,
)
from pyekka.dist.names import ekka_port, is_node_name, split_node

__all__ = [
    "DEFAULT_FLAGS",
    "REQUIRED_FLAGS",
    "AcceptorHandshake",
    "AliveQuery",
    "ConnectionTimedOut",
    "ControlMessage",
    "DFlag",
    "DistConnection",
    "FailureKind",
    "HandshakeComplete",
    "HandshakeFailed",
    "InitiatorHandshake",
    "LocalNode",
    "MessageReceived",
    "OldConnectionMustClose",
    "PeerNamed",
    "ProtocolError",
    "SendBytes",
    "describe",
    "ekka_port",
    "gen_digest",
    "is_node_name",
    "parse_control",
    "simultaneous_status",
    "split_node",
]
