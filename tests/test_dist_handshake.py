"""The handshake state machines: replayed against the captured OTP 25 handshakes,
run against each other, and fed bad input."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyekka.dist import flags as df
from pyekka.dist.events import SendBytes
from pyekka.dist.handshake import (
    AcceptorHandshake,
    AliveQuery,
    FailureKind,
    HandshakeComplete,
    HandshakeEvent,
    HandshakeFailed,
    InitiatorHandshake,
    LocalNode,
    OldConnectionMustClose,
    PeerNamed,
    gen_digest,
    simultaneous_status,
)
from tests.vectors import have_vectors, load, records, requires_vectors

COOKIE = "secretcookie"


def sent(events: list[HandshakeEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, SendBytes))


def last(events: list[HandshakeEvent]) -> HandshakeEvent:
    return events[-1]


def _fixed(*values: int) -> Callable[[], int]:
    it: Iterator[int] = iter(values)
    return lambda: next(it)


# --------------------------------------------------------------- vectors


@requires_vectors
@pytest.mark.parametrize("r", records("dist", type="digest"))
def test_digest_vectors(r: dict) -> None:
    assert r["md5_input"] == r["cookie"] + str(r["challenge"])
    assert gen_digest(r["challenge"], r["cookie"]).hex() == r["digest"]
    assert gen_digest(r["challenge"], r["cookie"].encode()).hex() == r["digest"]


def _captured(variant: str) -> dict[str, dict]:
    return {
        r["msg"]: r for r in load("dist") if r["type"] == "handshake" and r["variant"] == variant
    }


def _received(r: dict) -> bytes:
    """What the other node actually received (the proxy may have edited flags)."""
    return bytes.fromhex(r.get("bytes_forwarded", r["bytes"]))


VARIANTS = (
    ["as_is", "no_atom_cache"]
    if have_vectors()
    else [pytest.param(None, marks=requires_vectors, id="no-vectors")]
)


@requires_vectors
@pytest.mark.parametrize("variant", VARIANTS)
def test_replay_as_acceptor(variant: str) -> None:
    """We are B: A's captured messages in, B's captured bytes out, byte for byte."""
    hs = _captured(variant)
    challenge = hs["recv_challenge"]["fields"]
    local = LocalNode(challenge["name"], challenge["creation"], COOKIE, flags=challenge["flags"])
    acceptor = AcceptorHandshake(local, rng=_fixed(challenge["challenge"]))
    events = acceptor.receive_data(_received(hs["send_name"]))
    named = last(events)
    assert isinstance(named, PeerNamed)
    assert named.name == hs["send_name"]["fields"]["name"]
    assert named.creation == hs["send_name"]["fields"]["creation"]
    assert named.version == 6
    assert named.flags == int.from_bytes(_received(hs["send_name"])[3:11], "big")
    events = acceptor.accept("ok")
    assert sent(events) == bytes.fromhex(hs["recv_status"]["bytes"] + hs["recv_challenge"]["bytes"])
    events = acceptor.receive_data(bytes.fromhex(hs["challenge_reply"]["bytes"]))
    assert sent(events) == bytes.fromhex(hs["challenge_ack"]["bytes"])
    done = last(events)
    assert isinstance(done, HandshakeComplete)
    assert done.peer_name == hs["send_name"]["fields"]["name"]
    assert done.peer_creation == hs["send_name"]["fields"]["creation"]
    assert done.flags == df.negotiate(challenge["flags"], named.flags)
    assert done.rest == b"" and not done.replaces_existing


@requires_vectors
@pytest.mark.parametrize("variant", VARIANTS)
def test_replay_as_initiator(variant: str) -> None:
    """We are A: B's captured messages in, A's captured bytes out, byte for byte."""
    hs = _captured(variant)
    name = hs["send_name"]["fields"]
    reply = hs["challenge_reply"]["fields"]
    local = LocalNode(name["name"], name["creation"], COOKIE, flags=name["flags"])
    peer = hs["recv_challenge"]["fields"]["name"]
    initiator = InitiatorHandshake(local, peer, rng=_fixed(reply["challenge"]))
    assert sent(initiator.start()) == bytes.fromhex(hs["send_name"]["bytes"])
    events = initiator.receive_data(
        bytes.fromhex(hs["recv_status"]["bytes"]) + _received(hs["recv_challenge"])
    )
    assert sent(events) == bytes.fromhex(hs["challenge_reply"]["bytes"])
    # the first distribution frame may arrive in the same read as the ack
    events = initiator.receive_data(bytes.fromhex(hs["challenge_ack"]["bytes"]) + b"\0\0\0\0")
    done = last(events)
    assert isinstance(done, HandshakeComplete)
    assert done.peer_name == peer
    assert done.peer_creation == hs["recv_challenge"]["fields"]["creation"]
    assert done.rest == b"\0\0\0\0"
    expected_flags = df.negotiate(name["flags"], done.peer_flags)
    assert done.flags == expected_flags
    assert bool(done.flags & df.DFlag.DIST_HDR_ATOM_CACHE) == (variant == "as_is")


@requires_vectors
@pytest.mark.parametrize("variant", VARIANTS)
def test_replay_with_a_wrong_cookie_fails_on_both_sides(variant: str) -> None:
    hs = _captured(variant)
    challenge = hs["recv_challenge"]["fields"]
    acceptor = AcceptorHandshake(
        LocalNode(challenge["name"], challenge["creation"], "othercookie"),
        rng=_fixed(challenge["challenge"]),
    )
    acceptor.receive_data(_received(hs["send_name"]))
    acceptor.accept("ok")
    events = acceptor.receive_data(bytes.fromhex(hs["challenge_reply"]["bytes"]))
    assert sent(events) == b""  # no ack: OTP just closes
    failed = last(events)
    assert isinstance(failed, HandshakeFailed) and "cookie" in failed.reason
    assert failed.kind is FailureKind.COOKIE
    assert acceptor.finished

    name = hs["send_name"]["fields"]
    initiator = InitiatorHandshake(
        LocalNode(name["name"], name["creation"], "othercookie"),
        challenge["name"],
        rng=_fixed(hs["challenge_reply"]["fields"]["challenge"]),
    )
    initiator.start()
    initiator.receive_data(
        bytes.fromhex(hs["recv_status"]["bytes"]) + _received(hs["recv_challenge"])
    )
    failed = last(initiator.receive_data(bytes.fromhex(hs["challenge_ack"]["bytes"])))
    assert isinstance(failed, HandshakeFailed) and "cookie" in failed.reason
    assert failed.kind is FailureKind.COOKIE


# --------------------------------------------------------------- ours vs ours

A = "a@127.0.0.1"
B = "b@127.0.0.1"


def _pair(
    *,
    version: int = 6,
    cookie_a: str = COOKIE,
    cookie_b: str = COOKIE,
    flags_a: int = df.DEFAULT_FLAGS,
) -> tuple[InitiatorHandshake, AcceptorHandshake]:
    initiator = InitiatorHandshake(LocalNode(A, 11, cookie_a, flags=flags_a), B, version=version)
    acceptor = AcceptorHandshake(LocalNode(B, 22, cookie_b))
    return initiator, acceptor


def _pump(
    initiator: InitiatorHandshake,
    acceptor: AcceptorHandshake,
    status: str = "ok",
    *,
    chunk: int | None = None,
) -> tuple[list[HandshakeEvent], list[HandshakeEvent]]:
    """Run both machines against each other until neither has bytes to send."""
    seen_i: list[HandshakeEvent] = []
    seen_a: list[HandshakeEvent] = []
    to_acceptor = sent(initiator.start())
    to_initiator = b""
    while to_acceptor or to_initiator:
        if to_acceptor and not acceptor.finished:
            data, to_acceptor = to_acceptor, b""
            pieces = (
                [data]
                if chunk is None
                else [data[i : i + chunk] for i in range(0, len(data), chunk)]
            )
            for piece in pieces:
                events = acceptor.receive_data(piece)
                seen_a += events
                to_initiator += sent(events)
                if isinstance(last(events) if events else None, PeerNamed):
                    events = acceptor.accept(status)  # type: ignore[arg-type]
                    seen_a += events
                    to_initiator += sent(events)
                if acceptor.finished:
                    break
        else:
            to_acceptor = b""
        if to_initiator and not initiator.finished:
            events = initiator.receive_data(to_initiator)
            to_initiator = b""
            seen_i += events
            to_acceptor += sent(events)
        else:
            to_initiator = b""
    return seen_i, seen_a


@pytest.mark.parametrize("version", [5, 6])
@pytest.mark.parametrize("chunk", [None, 1])
def test_our_initiator_and_acceptor_agree(version: int, chunk: int | None) -> None:
    initiator, acceptor = _pair(version=version)
    seen_i, seen_a = _pump(initiator, acceptor, chunk=chunk)
    done_i, done_a = last(seen_i), last(seen_a)
    assert isinstance(done_i, HandshakeComplete) and isinstance(done_a, HandshakeComplete)
    assert (done_i.peer_name, done_i.peer_creation) == (B, 22)
    assert (done_a.peer_name, done_a.peer_creation) == (A, 11)
    assert done_i.flags == done_a.flags == df.DEFAULT_FLAGS
    named = next(e for e in seen_a if isinstance(e, PeerNamed))
    assert named.version == version
    # an old 'n' carries only the low 32 flag bits and no creation: the 'c' completes them
    assert named.creation == (None if version == 5 else 11)
    assert named.flags == (df.DEFAULT_FLAGS & 0xFFFFFFFF if version == 5 else df.DEFAULT_FLAGS)
    assert done_a.peer_flags == df.DEFAULT_FLAGS


def test_old_name_message_layout() -> None:
    initiator, _ = _pair(version=5)
    data = sent(initiator.start())
    assert (
        data
        == struct.pack(">HcHI", 7 + len(A), b"n", 5, df.DEFAULT_FLAGS & 0xFFFFFFFF) + A.encode()
    )


@pytest.mark.parametrize("version", [5, 6])
def test_wrong_cookie_fails_on_both_sides(version: int) -> None:
    initiator, acceptor = _pair(version=version, cookie_b="other")
    seen_i, seen_a = _pump(initiator, acceptor)
    failed_a = last(seen_a)
    assert isinstance(failed_a, HandshakeFailed)
    assert failed_a.reason == "invalid challenge reply: the peer has a different cookie"
    assert failed_a.kind is FailureKind.COOKIE
    assert failed_a.peer_name == A
    # the acceptor closes without an ack: the initiator's handshake never completes
    assert not initiator.finished
    assert not any(isinstance(e, HandshakeComplete) for e in seen_i)


def test_initiator_rejects_a_bad_ack() -> None:
    initiator, acceptor = _pair()
    to_acceptor = sent(initiator.start())
    acceptor.receive_data(to_acceptor)
    to_initiator = sent(acceptor.accept("ok"))
    reply = sent(initiator.receive_data(to_initiator))
    ack = sent(acceptor.receive_data(reply))
    forged = ack[:3] + bytes([ack[3] ^ 1]) + ack[4:]
    failed = last(initiator.receive_data(forged))
    assert isinstance(failed, HandshakeFailed)
    assert failed.reason == "invalid challenge ack: the peer has a different cookie"
    assert failed.kind is FailureKind.COOKIE


def test_acceptor_refuses_a_peer_lacking_required_flags() -> None:
    flags = df.DEFAULT_FLAGS & ~df.DFlag.BIG_CREATION & ~df.DFlag.MANDATORY_25_DIGEST
    initiator, acceptor = _pair(flags_a=flags)
    acceptor_events = acceptor.receive_data(sent(initiator.start()))
    assert sent(acceptor_events) == b"\x00\x0csnot_allowed"
    failed = last(acceptor_events)
    assert isinstance(failed, HandshakeFailed)
    assert failed.reason == "peer lacks required flags: BIG_CREATION"
    assert failed.kind is FailureKind.FLAGS
    # the initiator hears not_allowed and gives up too
    failed_i = last(initiator.receive_data(sent(acceptor_events)))
    assert isinstance(failed_i, HandshakeFailed) and "not_allowed" in failed_i.reason
    assert failed_i.kind is FailureKind.NOT_ALLOWED


def test_mandatory_25_digest_stands_for_the_whole_set() -> None:
    flags = (df.DEFAULT_FLAGS & ~df.MANDATORY_25) | df.DFlag.MANDATORY_25_DIGEST
    initiator, acceptor = _pair(flags_a=flags)
    _, seen_a = _pump(initiator, acceptor)
    done = last(seen_a)
    assert isinstance(done, HandshakeComplete)
    assert done.peer_flags & df.MANDATORY_25 == df.MANDATORY_25


def test_initiator_refuses_an_acceptor_lacking_required_flags() -> None:
    initiator = InitiatorHandshake(LocalNode(A, 1, COOKIE), B)
    initiator.start()
    flags = df.DEFAULT_FLAGS & ~df.DFlag.MAP_TAG & ~df.DFlag.MANDATORY_25_DIGEST
    challenge = struct.pack(">cQIIH", b"N", flags, 5, 2, len(B)) + B.encode()
    events = initiator.receive_data(b"\x00\x03sok" + struct.pack(">H", len(challenge)) + challenge)
    failed = last(events)
    assert isinstance(failed, HandshakeFailed)
    assert failed.reason == "connection would lack required flags: MAP_TAG"
    assert failed.kind is FailureKind.FLAGS


def test_initiator_checks_who_answered() -> None:
    initiator = InitiatorHandshake(LocalNode(A, 1, COOKIE), B)
    initiator.start()
    challenge = struct.pack(">cQIIH", b"N", df.DEFAULT_FLAGS, 5, 2, 13) + b"c@127.0.0.1xx"
    failed = last(
        initiator.receive_data(b"\x00\x03sok" + struct.pack(">H", len(challenge)) + challenge)
    )
    assert isinstance(failed, HandshakeFailed) and "instead of" in failed.reason
    assert failed.kind is FailureKind.PROTOCOL


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        ("nok", "refused (nok): our own connection attempt wins", FailureKind.NOK),
        ("not_allowed", "refused (not_allowed)", FailureKind.NOT_ALLOWED),
    ],
)
def test_acceptor_refusals(status: str, reason: str, kind: FailureKind) -> None:
    initiator, acceptor = _pair()
    acceptor.receive_data(sent(initiator.start()))
    events = acceptor.accept(status)  # type: ignore[arg-type]
    assert sent(events) == struct.pack(">H", 1 + len(status)) + b"s" + status.encode()
    failed = last(events)
    assert isinstance(failed, HandshakeFailed) and failed.reason == reason
    failed_i = last(initiator.receive_data(sent(events)))
    assert isinstance(failed_i, HandshakeFailed) and f"({status})" in failed_i.reason
    assert failed.kind is failed_i.kind is kind


def test_ok_simultaneous_completes() -> None:
    initiator, acceptor = _pair()
    seen_i, seen_a = _pump(initiator, acceptor, "ok_simultaneous")
    assert isinstance(last(seen_i), HandshakeComplete) and isinstance(
        last(seen_a), HandshakeComplete
    )


def test_alive_then_true_replaces_the_old_connection() -> None:
    initiator, acceptor = _pair()
    acceptor.receive_data(sent(initiator.start()))
    events = acceptor.accept("alive")
    assert sent(events) == b"\x00\x06salive"
    query = last(initiator.receive_data(sent(events)))
    assert query == AliveQuery(B)
    events = initiator.answer_alive(True)
    assert sent(events) == b"\x00\x05strue"
    challenge = sent(acceptor.receive_data(sent(events)))
    reply = sent(initiator.receive_data(challenge))
    events = acceptor.receive_data(reply)
    assert events == [OldConnectionMustClose(A)]
    events = acceptor.old_connection_closed()
    done_a = last(events)
    assert isinstance(done_a, HandshakeComplete) and done_a.replaces_existing
    done_i = last(initiator.receive_data(sent(events)))
    assert isinstance(done_i, HandshakeComplete) and not done_i.replaces_existing


def test_alive_then_false_gives_up_on_both_sides() -> None:
    initiator, acceptor = _pair()
    acceptor.receive_data(sent(initiator.start()))
    initiator.receive_data(sent(acceptor.accept("alive")))
    events = initiator.answer_alive(False)
    assert sent(events) == b"\x00\x06sfalse"
    gave_up = last(events)
    assert isinstance(gave_up, HandshakeFailed) and gave_up.kind is FailureKind.ALIVE_DROPPED
    failed = last(acceptor.receive_data(sent(events)))
    assert isinstance(failed, HandshakeFailed) and "alive answered false" in failed.reason
    assert failed.kind is FailureKind.ALIVE_DROPPED


def test_simultaneous_status_follows_net_kernel() -> None:
    assert simultaneous_status("a@h", "b@h", "none") == "ok"
    assert simultaneous_status("a@h", "b@h", "up") == "alive"
    # the greater name keeps its own attempt
    assert simultaneous_status("b@h", "a@h", "pending") == "nok"
    assert simultaneous_status("a@h", "b@h", "pending") == "ok_simultaneous"
    with pytest.raises(ValueError):
        simultaneous_status("a@h", "b@h", "maybe")  # type: ignore[arg-type]


# --------------------------------------------------------------- bad input


def _acceptor() -> AcceptorHandshake:
    return AcceptorHandshake(LocalNode(B, 22, COOKIE))


def _packet(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty handshake message"),
        (b"X", "expected a name message"),
        (b"N\x00", "malformed name message"),
        (struct.pack(">cQIH", b"N", df.DEFAULT_FLAGS, 1, 50) + b"a@b", "name message is truncated"),
        (struct.pack(">cQIH", b"N", df.DEFAULT_FLAGS, 1, 5) + b"nohost", "invalid node name"),
        (struct.pack(">cQIH", b"N", df.DEFAULT_FLAGS, 1, 5) + b"a@b@c", "invalid node name"),
        (b"n\x00\x05", "malformed old-style name"),
    ],
)
def test_acceptor_fails_on_malformed_names(body: bytes, reason: str) -> None:
    failed = last(_acceptor().receive_data(_packet(body)))
    assert isinstance(failed, HandshakeFailed) and reason in failed.reason
    assert failed.kind is FailureKind.PROTOCOL


def test_acceptor_refuses_dynamic_names() -> None:
    body = struct.pack(">cQIH", b"N", df.DEFAULT_FLAGS | df.DFlag.NAME_ME, 0, 9) + b"127.0.0.1"
    events = _acceptor().receive_data(_packet(body))
    assert sent(events) == b"\x00\x0csnot_allowed"
    failed = last(events)
    assert isinstance(failed, HandshakeFailed) and failed.kind is FailureKind.NOT_ALLOWED


@pytest.mark.parametrize(
    ("packet", "reason", "kind"),
    [
        (b"r\x00", "malformed challenge reply", FailureKind.PROTOCOL),
        (b"a" + bytes(16), "malformed challenge reply", FailureKind.PROTOCOL),
        (b"r" + bytes(4) + bytes(16), "different cookie", FailureKind.COOKIE),
    ],
)
def test_acceptor_fails_on_a_bad_challenge_reply(
    packet: bytes, reason: str, kind: FailureKind
) -> None:
    initiator, acceptor = _pair()
    acceptor.receive_data(sent(initiator.start()))
    acceptor.accept("ok")
    failed = last(acceptor.receive_data(_packet(packet)))
    assert isinstance(failed, HandshakeFailed) and reason in failed.reason
    assert failed.kind is kind


def test_acceptor_expects_the_complement_after_an_old_name() -> None:
    initiator, acceptor = _pair(version=5)
    acceptor.receive_data(sent(initiator.start()))
    acceptor.accept("ok")
    failed = last(acceptor.receive_data(_packet(b"r" + bytes(20))))
    assert isinstance(failed, HandshakeFailed) and "'c' complement" in failed.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_packet(b"sweird"), "unknown status 'weird'"),
        (_packet(b"snamed:\x00\x01x\x00\x00\x00\x01"), "dynamic name"),
        (_packet(b"x"), "expected a status message"),
        (
            _packet(b"sok") + _packet(b"n\x00\x05" + bytes(8) + B.encode()),
            "old-style 'n' challenge",
        ),
        (_packet(b"sok") + _packet(b"N\x00"), "malformed challenge message"),
        (_packet(b"sok") + _packet(struct.pack(">cQIIH", b"N", 0, 0, 0, 40)), "truncated"),
    ],
)
def test_initiator_fails_on_bad_replies(data: bytes, reason: str) -> None:
    initiator = InitiatorHandshake(LocalNode(A, 1, COOKIE), B)
    initiator.start()
    failed = last(initiator.receive_data(data))
    assert isinstance(failed, HandshakeFailed) and reason in failed.reason
    assert failed.kind is FailureKind.PROTOCOL


def test_misuse_is_reported() -> None:
    initiator, acceptor = _pair()
    with pytest.raises(RuntimeError):
        acceptor.accept("ok")
    with pytest.raises(RuntimeError):
        initiator.answer_alive(True)
    with pytest.raises(RuntimeError):
        acceptor.old_connection_closed()
    initiator.start()
    with pytest.raises(RuntimeError):
        initiator.start()
    acceptor.receive_data(_packet(b"X"))
    with pytest.raises(RuntimeError):
        acceptor.receive_data(b"more")
    acceptor2 = _acceptor()
    acceptor2.receive_data(sent(InitiatorHandshake(LocalNode(A, 1, COOKIE), B).start()))
    with pytest.raises(ValueError):
        acceptor2.accept("maybe")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "nohost", "creation": 1, "cookie": "c"},
        {"name": "a@b", "creation": -1, "cookie": "c"},
        {"name": "a@b", "creation": 1 << 32, "cookie": "c"},
        {"name": "a@b", "creation": 1, "cookie": "\u20ac"},
        {"name": "a@b", "creation": 1, "cookie": "c", "flags": df.DEFAULT_FLAGS | df.DFlag.NAME_ME},
    ],
)
def test_local_node_is_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LocalNode(**kwargs)


def test_initiator_arguments_are_validated() -> None:
    with pytest.raises(ValueError):
        InitiatorHandshake(LocalNode(A, 1, COOKIE), "nohost")
    with pytest.raises(ValueError):
        InitiatorHandshake(LocalNode(A, 1, COOKIE), B, version=4)


def test_default_challenges_are_random() -> None:
    challenges = set()
    for _ in range(8):
        acceptor = _acceptor()
        acceptor.receive_data(sent(InitiatorHandshake(LocalNode(A, 1, COOKIE), B).start()))
        challenge = sent(acceptor.accept("ok"))[5 + 2 + 1 + 8 : 5 + 2 + 1 + 12]
        challenges.add(challenge)
    assert len(challenges) > 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.booleans())
def test_random_bytes_never_crash_the_machines(data: bytes, as_acceptor: bool) -> None:
    """Garbage ends in HandshakeFailed or waits for more; it never raises."""
    if as_acceptor:
        machine: AcceptorHandshake | InitiatorHandshake = _acceptor()
    else:
        machine = InitiatorHandshake(LocalNode(A, 1, COOKIE), B)
        machine.start()
    events = machine.receive_data(data)
    if isinstance(machine, AcceptorHandshake) and events and isinstance(events[-1], PeerNamed):
        events = machine.accept("ok")
    for event in events:
        assert isinstance(event, SendBytes | PeerNamed | AliveQuery | HandshakeFailed)
    assert machine.finished == any(isinstance(e, HandshakeFailed) for e in events)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=30), max_size=4))
def test_random_packets_after_the_name_never_crash(packets: list[bytes]) -> None:
    initiator, acceptor = _pair()
    acceptor.receive_data(sent(initiator.start()))
    acceptor.accept("ok")
    for packet in packets:
        if acceptor.finished:
            break
        for event in acceptor.receive_data(_packet(packet)):
            assert not isinstance(event, HandshakeComplete)
