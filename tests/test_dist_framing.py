"""Distribution frames: the captured OTP 25 traffic, decoded and re-encoded, plus
fragments, the atom cache and hostile input."""

from __future__ import annotations

import re
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyekka.dist.errors import ProtocolError
from pyekka.dist.framing import (
    TICK,
    Frame,
    FrameDecoder,
    Tick,
    encode_header_frame,
    encode_pass_through,
)
from pyekka.term import binary_to_term, encode_term, term_to_binary
from pyekka.term.types import (
    Atom,
    BitString,
    ErlMap,
    ImproperList,
    Pid,
    Port,
    Reference,
    exact_equal,
)
from tests.vectors import have_vectors, load, requires_vectors

# --------------------------------------------------------------- ~w printing
# An independent printer of terms the way io_lib:format("~w") prints them, so the
# `*_erl` fields of the vectors can be compared with what we decoded. Remote pids
# print with a node-table index of the capturing VM; both sides replace it by N.

_RESERVED = {
    *("after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor"),
    *("case", "catch", "cond", "div", "end", "fun", "if", "let", "maybe", "not", "of"),
    *("or", "orelse", "receive", "rem", "try", "when", "xor"),
}
_BARE_ATOM = re.compile(r"[a-z][A-Za-z0-9_@]*\Z")


def _atom_w(name: str) -> str:
    if _BARE_ATOM.match(name) and name not in _RESERVED:
        return name
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def erl_w(t: Any) -> str:
    """``io_lib:format("~w", [T])`` for the term kinds found in dist.jsonl."""
    if t is True or t is False:
        return "true" if t else "false"
    if type(t) is int:
        return str(t)
    if type(t) is float:
        return repr(t)
    if type(t) is Atom:
        return _atom_w(t.name)
    if type(t) is bytes:
        return "<<" + ",".join(str(b) for b in t) + ">>"
    if type(t) is BitString:
        body = [str(b) for b in t.data[:-1]]
        body.append(f"{t.data[-1] >> (8 - t.bits)}:{t.bits}")
        return "<<" + ",".join(body) + ">>"
    if type(t) is list:
        return "[" + ",".join(erl_w(x) for x in t) + "]"
    if type(t) is ImproperList:
        return "[" + ",".join(erl_w(x) for x in t.items) + "|" + erl_w(t.tail) + "]"
    if type(t) is tuple:
        return "{" + ",".join(erl_w(x) for x in t) + "}"
    if type(t) in (dict, ErlMap):
        return "#{" + ",".join(f"{erl_w(k)} => {erl_w(v)}" for k, v in t.items()) + "}"
    if type(t) is Pid:
        return f"<N.{t.id}.{t.serial}>"
    if type(t) is Reference:
        return "#Ref<N." + ".".join(str(i) for i in reversed(t.ids)) + ">"
    if type(t) is Port:
        return f"#Port<N.{t.id}>"
    raise TypeError(f"no ~w form for {t!r}")


def normalize_erl(text: str) -> str:
    """Replace the printing VM's node-table index in pids and refs by ``N``."""
    return re.sub(r"(<|#Ref<|#Port<)\d+\.", r"\1N.", text)


# --------------------------------------------------------------- vectors


def _streams() -> list:
    """One parameter per (variant, direction): the frames in capture order."""
    if not have_vectors():
        return [pytest.param(None, marks=requires_vectors, id="no-vectors")]
    streams: dict[tuple[str, str], list[dict]] = {}
    for r in load("dist"):
        if r["type"] == "dist":
            streams.setdefault((r["variant"], r["direction"]), []).append(r)
    return [pytest.param(frames, id=f"{v}-{d}") for (v, d), frames in streams.items()]


def _dist_records(kind: str) -> list:
    if not have_vectors():
        return [pytest.param(None, marks=requires_vectors, id="no-vectors")]
    return [
        pytest.param(r, id=r["id"])
        for r in load("dist")
        if r["type"] == "dist" and r["kind"] == kind
    ]


def _direction(variant: str, direction: str) -> list[dict]:
    """The captured frames of one direction, in order."""
    return [
        r
        for r in load("dist")
        if r["type"] == "dist" and r["variant"] == variant and r["direction"] == direction
    ]


@requires_vectors
@pytest.mark.parametrize("frames", _streams())
def test_captured_stream_decodes_to_what_the_vm_printed(frames: list[dict]) -> None:
    decoder = FrameDecoder()  # one per direction: the atom cache lasts the connection
    for r in frames:
        events = decoder.receive_data(bytes.fromhex(r["bytes"]))
        assert len(events) == 1, r["id"]
        frame = events[0]
        assert isinstance(frame, Frame)
        assert normalize_erl(erl_w(frame.control)) == normalize_erl(r["control_erl"]), r["id"]
        if r.get("payload_erl") is None:
            assert frame.payload is None, r["id"]
        else:
            assert normalize_erl(erl_w(frame.payload)) == normalize_erl(r["payload_erl"]), r["id"]


@requires_vectors
@pytest.mark.parametrize("r", _dist_records("pass_through"))
def test_pass_through_frames_equal_the_captured_etf_and_reencode_exactly(r: dict) -> None:
    raw = bytes.fromhex(r["bytes"])
    frame = FrameDecoder().receive_data(raw)[0]
    assert isinstance(frame, Frame)
    assert exact_equal(frame.control, binary_to_term(bytes.fromhex(r["control_etf"])))
    payload_etf = r.get("payload_etf")
    if payload_etf:
        assert exact_equal(frame.payload, binary_to_term(bytes.fromhex(payload_etf)))
        assert encode_pass_through(frame.control, frame.payload) == raw
    else:
        assert frame.payload is None
        assert encode_pass_through(frame.control) == raw


@requires_vectors
@pytest.mark.parametrize("r", _dist_records("dist_header"))
def test_header_frames_name_their_atom_cache_refs(r: dict) -> None:
    """The header's reference list is exactly what the capture says, in order."""
    body = bytes.fromhex(r["bytes"])[4:]
    refs = r["atom_cache_refs"]
    assert body[:3] == bytes([131, 68, len(refs)])
    seen = []
    # Replaying the frames of this direction up to this one fills the cache.
    decoder = FrameDecoder()
    for prior in _direction(r["variant"], r["direction"]):
        if prior["id"] == r["id"]:
            break
        decoder.receive_data(bytes.fromhex(prior["bytes"]))
    for ref in refs:
        if not ref["new_entry"]:
            seen.append(decoder.atom_cache[ref["cache_index"]].name)
    assert seen == [ref["atom"] for ref in refs if not ref["new_entry"]]
    decoder.receive_data(bytes.fromhex(r["bytes"]))
    after = [decoder.atom_cache[ref["cache_index"]].name for ref in refs]
    assert after == [ref["atom"] for ref in refs]


@requires_vectors
@pytest.mark.parametrize("variant", ["as_is", "no_atom_cache"])
def test_sent_terms_arrive_as_the_known_terms(variant: str) -> None:
    """A sent each known term to B's vec_sink inside {SelfPid, Term}, in order."""
    known = next(r for r in load("dist") if r["type"] == "known_terms" and r["variant"] == variant)
    decoder = FrameDecoder()
    received = []
    for r in _direction(variant, "a_to_b"):
        frame = decoder.receive_data(bytes.fromhex(r["bytes"]))[0]
        assert isinstance(frame, Frame)
        if frame.control[0] == 6 and frame.control[3] == Atom("vec_sink"):
            received.append(frame.payload[1])
    terms = [binary_to_term(bytes.fromhex(t["etf"])) for t in known["terms"]]
    assert len(received) == len(terms) + 1  # plus one {Pid, Ref} of A's own
    plain = [t for t in received if not (type(t) is tuple and type(t[0]) is Pid)]
    assert len(plain) == len(terms)
    for got, want in zip(plain, terms, strict=True):
        assert exact_equal(got, want)


@requires_vectors
def test_all_frames_at_once_and_byte_by_byte() -> None:
    raw = b"".join(bytes.fromhex(r["bytes"]) for r in _direction("as_is", "a_to_b"))
    whole = FrameDecoder().receive_data(raw)
    decoder = FrameDecoder()
    pieces: list[Tick | Frame] = []
    for i in range(len(raw)):
        pieces.extend(decoder.receive_data(raw[i : i + 1]))
    assert len(whole) == len(pieces) == 15
    for a, b in zip(whole, pieces, strict=True):
        assert isinstance(a, Frame) and isinstance(b, Frame)
        assert exact_equal(a.control, b.control)
        assert exact_equal(a.payload, b.payload)


# --------------------------------------------------------------- hand-built frames

ME = Atom("py@127.0.0.1")
PID = Pid(ME, 5, 0, 7)
OTHER = Pid(Atom("b@127.0.0.1"), 90, 1, 9)


def _cache_header(refs: list[tuple[int, str | None]], long_atoms: bool = False) -> bytes:
    """NumberOfAtomCacheRefs, Flags and refs: ``(cache_index, text or None if cached)``."""
    n = len(refs)
    if n == 0:
        return bytes([0])  # no flags and no refs at all
    flags = bytearray(n // 2 + 1)
    out = bytearray()
    for i, (index, text) in enumerate(refs):
        nibble = (index >> 8) | (0x8 if text is not None else 0)
        flags[i // 2] |= nibble << (4 * (i % 2))
        out.append(index & 0xFF)
        if text is not None:
            raw = text.encode("utf-8")
            out += len(raw).to_bytes(2 if long_atoms else 1, "big") + raw
    if long_atoms:
        flags[n // 2] |= 1 << (4 * (n % 2))
    return bytes([n]) + bytes(flags) + bytes(out)


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _ref(i: int) -> bytes:
    return bytes([82, i])  # ATOM_CACHE_REF


def test_tick_and_pass_through_round_trip() -> None:
    control = (6, PID, Atom(""), Atom("ekka_membership"))
    payload = (Atom("$gen_cast"), (Atom("ping"), [1, 2.5, b"x"]))
    data = TICK + encode_pass_through(control, payload) + TICK
    events = FrameDecoder().receive_data(data)
    assert events[0] == Tick() and events[2] == Tick()
    frame = events[1]
    assert isinstance(frame, Frame)
    assert exact_equal(frame.control, control) and exact_equal(frame.payload, payload)
    assert data[8] == 112


def test_header_frame_encoding_decodes_back() -> None:
    control = (22, PID, OTHER)
    raw = encode_header_frame(control, [Atom("hello")])
    assert raw[4:7] == bytes([131, 68, 0])
    assert raw[7:] == encode_term(control) + encode_term([Atom("hello")])
    frame = FrameDecoder().receive_data(raw)[0]
    assert isinstance(frame, Frame)
    assert exact_equal(frame.control, control) and frame.payload == [Atom("hello")]


@pytest.mark.parametrize("long_atoms", [False, True])
def test_atom_cache_new_entries_then_references(long_atoms: bool) -> None:
    decoder = FrameDecoder()
    long_name = "x" * 255
    header = _cache_header([(1857, "ekka_membership"), (5, long_name), (2047, "true")], long_atoms)
    control = bytes([104, 4, 97, 6]) + term_to_binary(PID)[1:] + _ref(1) + _ref(0)
    payload = bytes([104, 2]) + _ref(2) + _ref(1)
    frame = decoder.receive_data(_frame(bytes([131, 68]) + header + control + payload))[0]
    assert isinstance(frame, Frame)
    assert frame.control == (6, PID, Atom(long_name), Atom("ekka_membership"))
    assert frame.payload == (True, Atom(long_name))
    # later frames may refer to the cached slots without repeating the text
    header2 = _cache_header([(5, None), (1857, None)])
    control2 = bytes([104, 4, 97, 6]) + term_to_binary(PID)[1:] + _ref(0) + _ref(1)
    frame2 = decoder.receive_data(_frame(bytes([131, 68]) + header2 + control2 + _ref(0)))[0]
    assert isinstance(frame2, Frame)
    assert frame2.control[3] == Atom("ekka_membership") and frame2.payload == Atom(long_name)


def _fragments(body_after_header: bytes, header: bytes, seq: int, parts: int) -> list[bytes]:
    """Split a message into ``parts`` fragments the way OTP numbers them."""
    size = -(-len(body_after_header) // parts)
    chunks = [body_after_header[i * size : (i + 1) * size] for i in range(parts)]
    frames = [_frame(bytes([131, 69]) + struct.pack(">QQ", seq, parts) + header + chunks[0])]
    for i, chunk in enumerate(chunks[1:], start=1):
        frames.append(_frame(bytes([131, 70]) + struct.pack(">QQ", seq, parts - i) + chunk))
    return frames


def test_fragmented_messages_reassemble_even_interleaved() -> None:
    header_a = _cache_header([(300, "vec_sink")])
    big = bytes(range(256)) * 40
    body_a = (
        bytes([104, 4, 97, 6])
        + term_to_binary(PID)[1:]
        + encode_term(Atom(""))
        + _ref(0)
        + encode_term(big)
    )
    body_b = encode_term((22, OTHER, PID)) + encode_term([Atom("ok")] * 50)
    frags_a = _fragments(body_a, header_a, seq=77, parts=5)
    frags_b = _fragments(body_b, _cache_header([]), seq=78, parts=3)
    decoder = FrameDecoder()
    order = [frags_a[0], frags_b[0], frags_a[1], frags_b[1], frags_a[2], frags_a[3]]
    for f in order:
        assert decoder.receive_data(f) == []
    assert decoder.pending_sequences == 2
    done_b = decoder.receive_data(frags_b[2])
    done_a = decoder.receive_data(frags_a[4])
    assert decoder.pending_sequences == 0
    assert isinstance(done_a[0], Frame) and isinstance(done_b[0], Frame)
    assert done_a[0].control == (6, PID, Atom(""), Atom("vec_sink"))
    assert done_a[0].payload == big
    assert done_b[0].control == (22, OTHER, PID)
    assert done_b[0].payload == [Atom("ok")] * 50
    # the cache entry made by a fragment header stays for later frames
    later = _cache_header([(300, None)])
    frame = decoder.receive_data(
        _frame(bytes([131, 68]) + later + encode_term((2, Atom(""), PID)) + _ref(0))
    )[0]
    assert isinstance(frame, Frame) and frame.payload == Atom("vec_sink")


def test_single_fragment_and_sequence_zero_are_whole_messages() -> None:
    body = encode_term((19, PID, Atom("net_kernel"), Reference(ME, 7, (1, 2, 3))))
    for seq, frag in ((5, 1), (0, 3)):
        raw = _frame(bytes([131, 69]) + struct.pack(">QQ", seq, frag) + bytes([0]) + body)
        frame = FrameDecoder().receive_data(raw)[0]
        assert isinstance(frame, Frame) and frame.control[0] == 19


# --------------------------------------------------------------- hostile input


def _decode(raw: bytes, decoder: FrameDecoder | None = None) -> list:
    return (decoder or FrameDecoder()).receive_data(raw)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (bytes([113]), "not 112 or 131"),
        (bytes([131]), "not 112 or 131"),
        (bytes([131, 99]), "unknown distribution header tag"),
        (bytes([131, 68]), "truncated before the atom count"),
        (bytes([131, 68, 3, 0x88]), "truncated in the atom cache flags"),
        (bytes([131, 68, 1, 0x08]), "truncated in the atom cache refs"),
        (bytes([131, 68, 1, 0x08, 5]), "truncated in an atom length"),
        (bytes([131, 68, 1, 0x08, 5, 9, 97]), "truncated in an atom's text"),
        (bytes([131, 68, 1, 0x08, 5, 1, 0xFF]), "not UTF-8"),
        (bytes([131, 68, 1, 0x00, 5]), "used before it was set"),
        (bytes([131, 68, 0]) + term_to_binary((2, Atom(""), PID)), "must not have 131"),
        (bytes([131, 68, 0]) + encode_term((2, Atom(""), PID)), "has no payload term"),
        (bytes([131, 68, 0]) + encode_term(Atom("x")), "not a tuple with an op code"),
        (bytes([131, 68, 0]) + encode_term((1, PID, PID)) + b"\x6a", "unexpected bytes"),
        (bytes([131, 68, 0]) + bytes([104, 2, 97, 1, 82, 0]), "bad control term"),
        (bytes([112]) + encode_term((1, PID, PID)), "version byte 131"),
        (bytes([112]) + term_to_binary((1, PID, PID))[:-3], "bad control term"),
        (bytes([131, 69]) + bytes(10), "shorter than its sequence"),
        (bytes([131, 69]) + struct.pack(">QQ", 1, 0) + bytes([0]), "fragment id 0"),
        (bytes([131, 70]) + struct.pack(">QQ", 9, 1), "unknown fragment sequence"),
    ],
)
def test_malformed_frames_raise_protocol_error(body: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        _decode(_frame(body))


def test_oversized_frame_is_refused_before_it_is_buffered() -> None:
    decoder = FrameDecoder(max_frame_size=1000)
    assert decoder.receive_data(struct.pack(">I", 1000)[:3]) == []
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        FrameDecoder(max_frame_size=1000).receive_data(struct.pack(">I", 1001))


def test_fragment_out_of_order_duplicate_and_limits() -> None:
    header = bytes([131, 69]) + struct.pack(">QQ", 4, 3) + bytes([0])
    decoder = FrameDecoder()
    decoder.receive_data(_frame(header + b"ab"))
    with pytest.raises(ProtocolError, match="out of order"):
        decoder.receive_data(_frame(bytes([131, 70]) + struct.pack(">QQ", 4, 1) + b"c"))
    decoder = FrameDecoder()
    decoder.receive_data(_frame(header + b"ab"))
    with pytest.raises(ProtocolError, match="started twice"):
        decoder.receive_data(_frame(header + b"ab"))
    decoder = FrameDecoder(max_sequences=2)
    for seq in (1, 2):
        decoder.receive_data(_frame(bytes([131, 69]) + struct.pack(">QQ", seq, 2) + bytes([0])))
    with pytest.raises(ProtocolError, match="more than 2 fragmented"):
        decoder.receive_data(_frame(bytes([131, 69]) + struct.pack(">QQ", 3, 2) + bytes([0])))
    decoder = FrameDecoder(max_fragmented_bytes=100)
    decoder.receive_data(
        _frame(bytes([131, 69]) + struct.pack(">QQ", 1, 9) + bytes([0]) + b"x" * 60)
    )
    with pytest.raises(ProtocolError, match="exceed 100 buffered bytes"):
        decoder.receive_data(_frame(bytes([131, 70]) + struct.pack(">QQ", 1, 8) + b"y" * 41))


def test_encoders_take_at_most_one_payload() -> None:
    with pytest.raises(TypeError):
        encode_pass_through((2, Atom(""), PID), 1, 2)
    with pytest.raises(TypeError):
        encode_header_frame((2, Atom(""), PID), 1, 2)


# --------------------------------------------------------------- fuzzing

_SEEDS = [
    encode_pass_through((6, PID, Atom(""), Atom("rex")), [1, 2]),
    _frame(bytes([131, 68]) + _cache_header([(1, "a"), (2, None)]) + encode_term((1, PID, PID))),
    _frame(bytes([131, 69]) + struct.pack(">QQ", 3, 2) + bytes([0]) + b"\x68\x03"),
    _frame(bytes([131, 70]) + struct.pack(">QQ", 3, 1) + b"\x61\x01"),
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    st.integers(1, 40),
)
def test_mutated_frames_raise_only_protocol_error(
    seed: bytes, edits: list[tuple[int, int]], chunk: int
) -> None:
    data = bytearray(seed)
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    decoder = FrameDecoder(max_frame_size=4096)
    try:
        for i in range(0, len(data), chunk):
            for event in decoder.receive_data(bytes(data[i : i + chunk])):
                assert isinstance(event, Tick | Frame)
    except ProtocolError:
        pass
