"""The distribution handshake, both roles, as sans-I/O state machines.

:class:`InitiatorHandshake` is the side that connected (``handshake_we_started``
in OTP's ``dist_util``), :class:`AcceptorHandshake` the side that accepted
(``handshake_other_started``). Feed received bytes to ``receive_data``; each call
returns events: :class:`~pyekka.dist.events.SendBytes` to write, and at the end
exactly one :class:`HandshakeComplete` or :class:`HandshakeFailed` (after which
the owner closes the socket on failure, or hands ``rest`` to the connection).
:class:`FailureKind` says why a handshake failed, for the owner to act on.

Some steps need a decision of the owner; the machine then pauses with an event
and waits for a method call:

* acceptor, :class:`PeerNamed` -> :meth:`AcceptorHandshake.accept` with the
  status to send (``ok``, ``ok_simultaneous``, ``nok``, ``not_allowed`` or
  ``alive``; :func:`simultaneous_status` computes OTP's answer);
* acceptor after ``alive``, :class:`OldConnectionMustClose` ->
  :meth:`AcceptorHandshake.old_connection_closed`;
* initiator, :class:`AliveQuery` -> :meth:`InitiatorHandshake.answer_alive`.

Messages, each with a 2-byte length prefix (all integers big-endian)::

    send_name (new)   'N' flags:64 creation:32 nlen:16 name
    send_name (old)   'n' version:16 flags:32 name       (OTP 23/24 told "v5")
    status            's' text        ok | ok_simultaneous | nok | not_allowed | alive
    status reply      's' text        true | false        (initiator, after alive)
    challenge         'N' flags:64 challenge:32 creation:32 nlen:16 name
    complement        'c' flags_high:32 creation:32       (only after an old 'n')
    challenge_reply   'r' challenge:32 digest:16 bytes
    challenge_ack     'a' digest:16 bytes

``digest = md5(cookie + decimal(challenge))`` (:func:`gen_digest`). A wrong
cookie shows as a bad digest: the acceptor fails on the challenge reply and
closes; the initiator then fails because no (or a bad) ack arrives.

The machines keep no time: the owner bounds the whole handshake (OTP's
``net_setuptime``, 7 s by default) and closes the socket when it runs out.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Literal

from pyekka.dist import flags as df
from pyekka.dist.events import SendBytes
from pyekka.dist.names import is_node_name

__all__ = [
    "AcceptorHandshake",
    "AliveQuery",
    "FailureKind",
    "HandshakeComplete",
    "HandshakeEvent",
    "HandshakeFailed",
    "InitiatorHandshake",
    "LocalNode",
    "OldConnectionMustClose",
    "PeerNamed",
    "gen_digest",
    "simultaneous_status",
]

Status = Literal["ok", "ok_simultaneous", "nok", "not_allowed", "alive"]
_STATUSES = ("ok", "ok_simultaneous", "nok", "not_allowed", "alive")


# ----------------------------------------------------------------------- events


class FailureKind(Enum):
    """Why a handshake failed (the same on both sides where both can tell)."""

    PROTOCOL = "protocol"
    """A malformed or unexpected message, the wrong peer, or an unsupported feature."""
    NOK = "nok"
    """Status ``nok``: a simultaneous connect that the other attempt wins."""
    NOT_ALLOWED = "not_allowed"
    """Status ``not_allowed``: the acceptor refuses the peer (its flags or name)."""
    FLAGS = "flags"
    """The connection would lack flags this node requires."""
    COOKIE = "cookie"
    """A digest did not match: the two nodes have different cookies."""
    ALIVE_DROPPED = "alive_dropped"
    """After status ``alive`` the initiator gave up (the old connection stays)."""


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The connection is up.

    ``flags`` are the negotiated flags (ours AND the peer's), ``peer_flags`` what the
    peer announced; ``rest`` is data received after the handshake, which belongs
    to the distribution connection. ``replaces_existing`` is true when the peer
    reconnected while we still had a connection to it (status ``alive``).
    """

    peer_name: str
    peer_flags: int
    peer_creation: int
    flags: int
    rest: bytes = b""
    replaces_existing: bool = False


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """The handshake cannot complete; close the socket.

    ``kind`` says why (for the owner to act on), ``reason`` says it for humans.
    """

    reason: str
    kind: FailureKind
    peer_name: str | None = None


@dataclass(frozen=True, slots=True)
class PeerNamed:
    """Acceptor: the peer said who it is; call :meth:`AcceptorHandshake.accept`.

    ``creation`` is ``None`` (and ``flags`` only the low 32 bits) when the peer used
    the old ``n`` message; both are completed by its ``c`` message later.
    """

    name: str
    flags: int
    creation: int | None
    version: int


@dataclass(frozen=True, slots=True)
class OldConnectionMustClose:
    """Acceptor after ``alive``: the peer proved the cookie; drop the old connection to
    it, then call :meth:`AcceptorHandshake.old_connection_closed`."""

    peer_name: str


@dataclass(frozen=True, slots=True)
class AliveQuery:
    """Initiator: the peer still has a connection to us (status ``alive``). Answer with
    :meth:`InitiatorHandshake.answer_alive`: ``True`` if this attempt should go on."""

    peer_name: str


HandshakeEvent = (
    SendBytes
    | HandshakeComplete
    | HandshakeFailed
    | PeerNamed
    | OldConnectionMustClose
    | AliveQuery
)


# ----------------------------------------------------------------------- helpers


def gen_digest(challenge: int, cookie: str | bytes) -> bytes:
    """MD5 of the cookie followed by the challenge in decimal (OTP's ``gen_digest``)."""
    return hashlib.md5(_cookie_bytes(cookie) + str(challenge).encode("ascii")).digest()


def _cookie_bytes(cookie: str | bytes) -> bytes:
    if isinstance(cookie, bytes):
        return cookie
    try:
        # atom_to_list/1 in an iolist: only characters up to 255 are possible.
        return cookie.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError("a cookie can only hold characters up to U+00FF") from exc


def _new_challenge() -> int:
    return secrets.randbits(32)


def simultaneous_status(
    own_name: str, peer_name: str, existing: Literal["none", "pending", "up"]
) -> Status:
    """The status OTP's net_kernel answers an incoming connection with.

    ``existing`` is what we already have towards ``peer_name``: nothing, our own
    connection attempt still in its handshake (``pending``), or a live connection
    (``up``). On a simultaneous connect the node with the greater name keeps its
    own attempt: it answers ``nok``; the other answers ``ok_simultaneous`` and must
    abandon its outgoing attempt.
    """
    if existing == "none":
        return "ok"
    if existing == "up":
        return "alive"
    if existing == "pending":
        if own_name.encode("utf-8") > peer_name.encode("utf-8"):
            return "nok"
        return "ok_simultaneous"
    raise ValueError(f"unknown connection state {existing!r}")


@dataclass(frozen=True, slots=True)
class LocalNode:
    """This node as the handshake presents it: name, creation, flags and cookie."""

    name: str
    creation: int
    cookie: str | bytes
    flags: int = df.DEFAULT_FLAGS
    required_flags: int = df.REQUIRED_FLAGS

    def __post_init__(self) -> None:
        if not is_node_name(self.name):
            raise ValueError(f"not a node name: {self.name!r}")
        if not 0 <= self.creation <= 0xFFFFFFFF:
            raise ValueError("creation must fit 32 bits")
        _cookie_bytes(self.cookie)
        if self.flags & df.DFlag.NAME_ME:
            raise ValueError("dynamic node names (NAME_ME) are not supported")

    @property
    def name_bytes(self) -> bytes:
        """The name as sent in handshake messages (Latin-1, as OTP does)."""
        return self.name.encode("latin-1")


class _Failure(Exception):
    """Internal: abort the handshake with this reason (optionally after a status)."""

    def __init__(
        self, reason: str, kind: FailureKind = FailureKind.PROTOCOL, status: str | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status


def _frame(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


def _status_frame(status: str) -> bytes:
    return _frame(b"s" + status.encode("ascii"))


def _missing(required: int, flags: int) -> str | None:
    lacking = df.missing_flags(required, flags)
    return df.describe(lacking) if lacking else None


class _State(Enum):
    SEND_NAME = auto()
    RECV_NAME = auto()
    AWAIT_ACCEPT = auto()
    RECV_STATUS = auto()
    AWAIT_ALIVE_ANSWER = auto()
    RECV_ALIVE_REPLY = auto()
    RECV_CHALLENGE = auto()
    RECV_COMPLEMENT = auto()
    RECV_CHALLENGE_REPLY = auto()
    AWAIT_OLD_CLOSED = auto()
    RECV_CHALLENGE_ACK = auto()
    DONE = auto()
    FAILED = auto()


class _Handshake:
    """Packet buffering and the shared bookkeeping of both roles."""

    def __init__(self, local: LocalNode, rng: Callable[[], int] | None) -> None:
        self.local = local
        self._rng = rng or _new_challenge
        self._buf = bytearray()
        self._state = _State.FAILED
        self.peer_name: str | None = None
        self.peer_flags = 0
        self.peer_creation: int | None = None
        self.my_challenge: int | None = None
        #: What handles a packet received in each state that expects one.
        self._receivers: dict[_State, Callable[[bytes], list[HandshakeEvent]]] = {}

    @property
    def finished(self) -> bool:
        """Whether the handshake completed or failed."""
        return self._state in (_State.DONE, _State.FAILED)

    def receive_data(self, data: bytes) -> list[HandshakeEvent]:
        """Feed bytes from the peer; returns the events they cause."""
        if self.finished:
            raise RuntimeError("the handshake is over; give further data to the connection")
        self._buf += data
        return self._run()

    def _paused(self) -> bool:
        return self._state in (
            _State.AWAIT_ACCEPT,
            _State.AWAIT_ALIVE_ANSWER,
            _State.AWAIT_OLD_CLOSED,
        )

    def _run(self, events: list[HandshakeEvent] | None = None) -> list[HandshakeEvent]:
        events = [] if events is None else events
        try:
            while not self.finished and not self._paused():
                packet = self._next_packet()
                if packet is None:
                    break
                events.extend(self._handle(packet))
        except _Failure as exc:
            if exc.status is not None:
                events.append(SendBytes(_status_frame(exc.status)))
            events.append(self._fail(exc.reason, exc.kind))
        return events

    def _next_packet(self) -> bytes | None:
        if len(self._buf) < 2:
            return None
        size = int.from_bytes(self._buf[:2], "big")
        if len(self._buf) < 2 + size:
            return None
        packet = bytes(self._buf[2 : 2 + size])
        del self._buf[: 2 + size]
        if not packet:
            raise _Failure("empty handshake message")
        return packet

    def _fail(self, reason: str, kind: FailureKind) -> HandshakeFailed:
        self._state = _State.FAILED
        self._buf.clear()
        return HandshakeFailed(reason, kind, self.peer_name)

    def _complete(self, replaces_existing: bool = False) -> HandshakeComplete:
        self._state = _State.DONE
        rest = bytes(self._buf)
        self._buf.clear()
        assert self.peer_name is not None and self.peer_creation is not None
        return HandshakeComplete(
            peer_name=self.peer_name,
            peer_flags=self.peer_flags,
            peer_creation=self.peer_creation,
            flags=df.negotiate(self.local.flags, self.peer_flags),
            rest=rest,
            replaces_existing=replaces_existing,
        )

    def _handle(self, packet: bytes) -> list[HandshakeEvent]:
        receiver = self._receivers.get(self._state)
        if receiver is None:  # pragma: no cover - _run only reads in receiving states
            raise _Failure(f"unexpected message in state {self._state.name}")
        return receiver(packet)

    def _check_negotiated(self) -> None:
        negotiated = df.negotiate(self.local.flags, self.peer_flags)
        lacking = _missing(self.local.required_flags, negotiated)
        if lacking:
            raise _Failure(f"connection would lack required flags: {lacking}", FailureKind.FLAGS)

    def _digest_ok(self, digest: bytes) -> bool:
        assert self.my_challenge is not None
        return secrets.compare_digest(digest, gen_digest(self.my_challenge, self.local.cookie))


# --------------------------------------------------------------------- initiator


class InitiatorHandshake(_Handshake):
    """The connecting side. Call :meth:`start` first, then feed received bytes.

    ``version=5`` sends the old ``n`` name message (as OTP 23/24 do when epmd, or
    ekka_epmd, reports version 5) and then the ``c`` complement; the default ``6``
    sends ``N``. ``rng`` returns our 32-bit challenge (injectable for tests).
    """

    def __init__(
        self,
        local: LocalNode,
        peer_name: str,
        *,
        version: int = 6,
        rng: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(local, rng)
        if not is_node_name(peer_name):
            raise ValueError(f"not a node name: {peer_name!r}")
        if version not in (5, 6):
            raise ValueError("the handshake version is 5 or 6")
        self.peer_name = peer_name
        self.version = version
        self._state = _State.SEND_NAME
        self._receivers = {
            _State.RECV_STATUS: self._on_status,
            _State.RECV_CHALLENGE: self._on_challenge,
            _State.RECV_CHALLENGE_ACK: self._on_ack,
        }

    def start(self) -> list[HandshakeEvent]:
        """The first message (send_name)."""
        if self._state is not _State.SEND_NAME:
            raise RuntimeError("start() was already called")
        self._state = _State.RECV_STATUS
        local = self.local
        if self.version == 6:
            body = (
                struct.pack(">cQIH", b"N", local.flags, local.creation, len(local.name_bytes))
                + local.name_bytes
            )
        else:
            body = struct.pack(">cHI", b"n", 5, local.flags & 0xFFFFFFFF) + local.name_bytes
        return [SendBytes(_frame(body))]

    def answer_alive(self, keep: bool) -> list[HandshakeEvent]:
        """Answer an :class:`AliveQuery`: ``True`` to go on, ``False`` to give up."""
        if self._state is not _State.AWAIT_ALIVE_ANSWER:
            raise RuntimeError("no alive query is pending")
        sent = SendBytes(_status_frame("true" if keep else "false"))
        if not keep:
            dropped = "peer has a live connection to us; attempt dropped"
            return [sent, self._fail(dropped, FailureKind.ALIVE_DROPPED)]
        self._state = _State.RECV_CHALLENGE
        return self._run([sent])

    def _on_status(self, packet: bytes) -> list[HandshakeEvent]:
        if packet[:1] != b"s":
            raise _Failure(f"expected a status message, got tag {packet[:1]!r}")
        status = packet[1:].decode("latin-1")
        if status in ("ok", "ok_simultaneous"):
            self._state = _State.RECV_CHALLENGE
            return []
        if status == "alive":
            self._state = _State.AWAIT_ALIVE_ANSWER
            assert self.peer_name is not None
            return [AliveQuery(self.peer_name)]
        if status == "nok":
            raise _Failure(
                "peer refused (nok): simultaneous connect, its own attempt wins", FailureKind.NOK
            )
        if status == "not_allowed":
            raise _Failure(
                "peer refused (not_allowed): flags or name not accepted", FailureKind.NOT_ALLOWED
            )
        if status.startswith("named:"):
            raise _Failure("peer assigned a dynamic name, which was not asked for")
        raise _Failure(f"unknown status {status!r}")

    def _on_challenge(self, packet: bytes) -> list[HandshakeEvent]:
        if packet[:1] == b"n":
            raise _Failure("peer sent an old-style 'n' challenge (OTP 22 or older): unsupported")
        if packet[:1] != b"N" or len(packet) < 19:
            raise _Failure("malformed challenge message")
        flags, challenge, creation, nlen = struct.unpack_from(">QIIH", packet, 1)
        if len(packet) < 19 + nlen:
            raise _Failure("challenge message name is truncated")
        name = packet[19 : 19 + nlen].decode("latin-1")
        if name != self.peer_name:
            raise _Failure(f"connected to {name!r} instead of {self.peer_name!r}")
        self.peer_flags = df.expand_mandatory_25(flags)
        self.peer_creation = creation
        self._check_negotiated()
        self.my_challenge = self._rng() & 0xFFFFFFFF
        events: list[HandshakeEvent] = []
        if self.version == 5:
            local = self.local
            complement = struct.pack(">cII", b"c", local.flags >> 32, local.creation)
            events.append(SendBytes(_frame(complement)))
        reply = struct.pack(">cI", b"r", self.my_challenge) + gen_digest(
            challenge, self.local.cookie
        )
        events.append(SendBytes(_frame(reply)))
        self._state = _State.RECV_CHALLENGE_ACK
        return events

    def _on_ack(self, packet: bytes) -> list[HandshakeEvent]:
        if packet[:1] != b"a" or len(packet) != 17:
            raise _Failure("malformed challenge ack")
        if not self._digest_ok(packet[1:]):
            raise _Failure(
                "invalid challenge ack: the peer has a different cookie", FailureKind.COOKIE
            )
        return [self._complete()]


# ---------------------------------------------------------------------- acceptor


class AcceptorHandshake(_Handshake):
    """The accepting side. Feed received bytes; answer :class:`PeerNamed` with
    :meth:`accept`. ``rng`` returns our 32-bit challenge (injectable for tests)."""

    def __init__(self, local: LocalNode, *, rng: Callable[[], int] | None = None) -> None:
        super().__init__(local, rng)
        self._state = _State.RECV_NAME
        self.peer_version = 0
        self._replaces = False
        self._peer_challenge: int | None = None
        self._receivers = {
            _State.RECV_NAME: self._on_name,
            _State.RECV_ALIVE_REPLY: self._on_alive_reply,
            _State.RECV_COMPLEMENT: self._on_complement,
            _State.RECV_CHALLENGE_REPLY: self._on_reply,
        }

    def accept(self, status: Status) -> list[HandshakeEvent]:
        """Answer :class:`PeerNamed` with the status to send (see :func:`simultaneous_status`)."""
        if self._state is not _State.AWAIT_ACCEPT:
            raise RuntimeError("accept() is only valid after PeerNamed")
        if status not in _STATUSES:
            raise ValueError(f"unknown status {status!r}")
        sent = SendBytes(_status_frame(status))
        if status == "nok":
            return [
                sent,
                self._fail("refused (nok): our own connection attempt wins", FailureKind.NOK),
            ]
        if status == "not_allowed":
            return [sent, self._fail("refused (not_allowed)", FailureKind.NOT_ALLOWED)]
        if status == "alive":
            self._state = _State.RECV_ALIVE_REPLY
            return self._run([sent])
        return self._run([sent, self._send_challenge()])

    def old_connection_closed(self) -> list[HandshakeEvent]:
        """After :class:`OldConnectionMustClose`: send the ack and complete."""
        if self._state is not _State.AWAIT_OLD_CLOSED:
            raise RuntimeError("no old connection is being waited for")
        return [self._ack(), self._complete(replaces_existing=True)]

    def _send_challenge(self) -> SendBytes:
        local = self.local
        self.my_challenge = self._rng() & 0xFFFFFFFF
        body = (
            struct.pack(
                ">cQIIH",
                b"N",
                local.flags,
                self.my_challenge,
                local.creation,
                len(local.name_bytes),
            )
            + local.name_bytes
        )
        self._state = (
            _State.RECV_COMPLEMENT if self.peer_creation is None else _State.RECV_CHALLENGE_REPLY
        )
        return SendBytes(_frame(body))

    def _ack(self) -> SendBytes:
        assert self._peer_challenge is not None
        return SendBytes(_frame(b"a" + gen_digest(self._peer_challenge, self.local.cookie)))

    def _on_name(self, packet: bytes) -> list[HandshakeEvent]:
        tag = packet[:1]
        if tag == b"N":
            if len(packet) < 15:
                raise _Failure("malformed name message")
            flags, creation, nlen = struct.unpack_from(">QIH", packet, 1)
            if len(packet) < 15 + nlen:
                raise _Failure("name message is truncated")
            name = packet[15 : 15 + nlen].decode("latin-1")
            version = 6
        elif tag == b"n":
            if len(packet) < 7:
                raise _Failure("malformed old-style name message")
            version, flags = struct.unpack_from(">HI", packet, 1)
            name = packet[7:].decode("latin-1")
            creation = None
        else:
            raise _Failure(f"expected a name message, got tag {tag!r}")
        if flags & df.DFlag.NAME_ME:
            raise _Failure(
                "peer asks for a dynamic name: unsupported", FailureKind.NOT_ALLOWED, "not_allowed"
            )
        if not is_node_name(name):
            raise _Failure(f"peer sent an invalid node name {name!r}")
        self.peer_name = name
        self.peer_flags = df.expand_mandatory_25(flags)
        self.peer_creation = creation
        self.peer_version = version
        self._check_peer_flags()
        self._state = _State.AWAIT_ACCEPT
        return [PeerNamed(name, self.peer_flags, creation, version)]

    def _check_peer_flags(self) -> None:
        required = self.local.required_flags
        if self.peer_creation is None:
            required &= 0xFFFFFFFF  # high bits come with the complement
        lacking = _missing(required, self.peer_flags)
        if lacking:
            raise _Failure(
                f"peer lacks required flags: {lacking}", FailureKind.FLAGS, "not_allowed"
            )

    def _on_alive_reply(self, packet: bytes) -> list[HandshakeEvent]:
        if packet == b"strue":
            self._replaces = True
            return [self._send_challenge()]
        if packet == b"sfalse":
            raise _Failure(
                "peer gave up its attempt (alive answered false)", FailureKind.ALIVE_DROPPED
            )
        raise _Failure(f"unexpected reply to alive: {packet!r}")

    def _on_complement(self, packet: bytes) -> list[HandshakeEvent]:
        if packet[:1] != b"c" or len(packet) != 9:
            raise _Failure("expected the 'c' complement after an old-style name")
        high, creation = struct.unpack_from(">II", packet, 1)
        self.peer_flags = df.expand_mandatory_25(self.peer_flags | (high << 32))
        self.peer_creation = creation
        lacking = _missing(self.local.required_flags, self.peer_flags)
        if lacking:
            raise _Failure(f"peer lacks required flags: {lacking}", FailureKind.FLAGS)
        self._state = _State.RECV_CHALLENGE_REPLY
        return []

    def _on_reply(self, packet: bytes) -> list[HandshakeEvent]:
        if packet[:1] != b"r" or len(packet) != 21:
            raise _Failure("malformed challenge reply")
        (self._peer_challenge,) = struct.unpack_from(">I", packet, 1)
        if not self._digest_ok(packet[5:]):
            raise _Failure(
                "invalid challenge reply: the peer has a different cookie", FailureKind.COOKIE
            )
        self._check_negotiated()
        if self._replaces:
            self._state = _State.AWAIT_OLD_CLOSED
            assert self.peer_name is not None
            return [OldConnectionMustClose(self.peer_name)]
        return [self._ack(), self._complete()]
