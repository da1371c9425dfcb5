"""EPMD messages against the captured OTP 25 traffic, the embedded server's
behaviour, and the ekka port rule."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyekka.dist import epmd
from pyekka.dist.epmd import Alive2Response, NodeInfo, Port2Response
from pyekka.dist.epmd_server import (
    CloseConnection,
    EpmdRegistry,
    EpmdServerConnection,
    StopServer,
)
from pyekka.dist.errors import ProtocolError
from pyekka.dist.events import SendBytes
from pyekka.dist.names import ekka_port, is_node_name, split_node, validate_own_name
from tests.vectors import records, requires_vectors


def _node(fields: dict) -> NodeInfo:
    return NodeInfo(
        name=fields["name"],
        port=fields["port"],
        node_type=fields["node_type"],
        protocol=fields["protocol"],
        highest_version=fields["highest_version"],
        lowest_version=fields["lowest_version"],
        extra=fields["extra"].encode(),
    )


# --------------------------------------------------------------- vectors


@requires_vectors
@pytest.mark.parametrize("r", records("dist", type="epmd"))
def test_epmd_vector(r: dict) -> None:
    raw = bytes.fromhex(r["bytes"])
    fields = r["fields"]
    msg = r["msg"]
    if msg == "ALIVE2_REQ":
        node = _node(fields)
        assert epmd.encode_alive2_req(node) == raw
        assert epmd.parse_alive2_req(raw[2:]) == node
    elif msg == "ALIVE2_RESP":
        assert fields["tag"] == "ALIVE2_X_RESP"
        expected = Alive2Response(fields["result"], fields["creation"], True)
        assert epmd.read_alive2_resp(raw) == expected
        assert epmd.encode_alive2_resp(fields["result"], fields["creation"]) == raw
    elif msg == "PORT_PLEASE2_REQ":
        assert epmd.encode_port_please2_req(fields["name"]) == raw
    elif msg == "PORT2_RESP":
        assert epmd.read_port2_resp(raw) == Port2Response(fields["result"], _node(fields))
        assert epmd.encode_port2_resp(_node(fields)) == raw
    else:  # pragma: no cover - the vectors hold only these four
        pytest.fail(f"unknown epmd message {msg}")


@requires_vectors
@pytest.mark.parametrize("r", records("dist", type="epmd", msg="ALIVE2_REQ"))
def test_embedded_server_answers_like_the_real_epmd(r: dict) -> None:
    """The captured ALIVE2_REQ and PORT_PLEASE2_REQ, served by our epmd."""
    node = _node(r["fields"])
    registry = EpmdRegistry(clock=lambda: 1795304350.0)
    conn = EpmdServerConnection(registry, local_peer=True)
    events = conn.receive_data(bytes.fromhex(r["bytes"]))
    assert len(events) == 1 and isinstance(events[0], SendBytes)
    response = epmd.read_alive2_resp(events[0].data)
    assert response is not None and response.result == 0 and response.extended
    # creations come from the clock: the capture's epmd started at that second
    assert response.creation == 1795304351
    lookup = EpmdServerConnection(registry, local_peer=False)
    events = lookup.receive_data(epmd.encode_port_please2_req(node.name))
    assert isinstance(events[0], SendBytes) and isinstance(events[1], CloseConnection)
    assert epmd.read_port2_resp(events[0].data) == Port2Response(0, node)


# --------------------------------------------------------------- client parsing


def test_partial_replies_wait_for_more() -> None:
    full = epmd.encode_alive2_resp(0, 0x12345678)
    for i in range(len(full)):
        assert epmd.read_alive2_resp(full[:i]) is None
    assert epmd.read_alive2_resp(full) == Alive2Response(0, 0x12345678, True)
    old = epmd.encode_alive2_resp(0, 3, extended=False)
    assert old == b"y\x00\x00\x03"
    assert epmd.read_alive2_resp(old[:3]) is None
    assert epmd.read_alive2_resp(old) == Alive2Response(0, 3, False)
    reply = epmd.encode_port2_resp(NodeInfo("node", 4370, extra=b"xyz"))
    for i in range(len(reply)):
        assert epmd.read_port2_resp(reply[:i]) is None
    assert epmd.read_port2_resp(reply) == Port2Response(0, NodeInfo("node", 4370, extra=b"xyz"))
    assert epmd.read_port2_resp(b"w\x01") == Port2Response(1, None)


@pytest.mark.parametrize(
    ("reader", "data"),
    [
        (epmd.read_alive2_resp, b"w\x00\x00\x00"),
        (epmd.read_port2_resp, b"v\x00"),
        (
            epmd.read_port2_resp,
            b"w\x00" + struct.pack(">HBBHHH", 1, 77, 0, 6, 5, 1) + b"\xff\x00\x00",
        ),
        (epmd.read_kill_resp, b"??"),
        (epmd.read_names_resp, b"\x00\x00"),
    ],
)
def test_garbage_replies_raise(reader, data: bytes) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError):
        reader(data)


def test_names_reply_parses_like_erl_epmd() -> None:
    nodes = [NodeInfo("a1", 40157), NodeInfo("b1", 42537)]
    raw = epmd.encode_names_resp(4369, nodes)
    assert raw == b"\x00\x00\x11\x11name a1 at port 40157\nname b1 at port 42537\n"
    assert epmd.read_names_resp(raw) == (4369, [("a1", 40157), ("b1", 42537)])
    # unparsable lines and an unterminated last line are skipped
    assert epmd.read_names_resp(raw + b"junk\nname c at port 1") == (
        4369,
        [("a1", 40157), ("b1", 42537)],
    )


def test_request_encodings() -> None:
    assert epmd.encode_names_req() == b"\x00\x01n"
    assert epmd.encode_dump_req() == b"\x00\x01d"
    assert epmd.encode_kill_req() == b"\x00\x01k"
    assert epmd.read_kill_resp(b"O") is None
    assert epmd.read_kill_resp(b"OK") is True
    assert epmd.read_kill_resp(b"NO") is False
    with pytest.raises(ValueError):
        epmd.encode_port_please2_req("x" * 70000)


# --------------------------------------------------------------- embedded server


def _register(registry: EpmdRegistry, node: NodeInfo) -> tuple[EpmdServerConnection, list]:
    conn = EpmdServerConnection(registry, local_peer=True)
    return conn, conn.receive_data(epmd.encode_alive2_req(node))


def _creation(events: list) -> int | None:
    response = epmd.read_alive2_resp(events[0].data)
    assert response is not None
    return response.creation if response.result == 0 else None


def test_registration_lives_as_long_as_its_connection() -> None:
    registry = EpmdRegistry(clock=lambda: 1000.0)
    conn, events = _register(registry, NodeInfo("py", 5000))
    assert _creation(events) == 1001
    assert registry.lookup("py") == NodeInfo("py", 5000)
    assert registry.creation_of("py") == 1001
    # a second node cannot take the name while the first holds it
    _, events = _register(registry, NodeInfo("py", 5001))
    assert events == [SendBytes(b"v\x01\x00\x00\x00\x63")]  # result 1, creation 99
    conn.connection_closed()
    assert registry.lookup("py") is None
    # registering the name again bumps the creation
    _, events = _register(registry, NodeInfo("py", 5002))
    assert _creation(events) == 1002


def test_old_nodes_get_small_creations_and_the_short_reply() -> None:
    registry = EpmdRegistry(clock=lambda: 1000.0)
    _, events = _register(registry, NodeInfo("old", 5000, highest_version=5))
    # counter 1001 -> 1001 % 3 + 1
    assert events == [SendBytes(b"y\x00\x00\x03")]


def test_data_on_a_registration_connection_unregisters() -> None:
    registry = EpmdRegistry()
    conn, _ = _register(registry, NodeInfo("py", 5000))
    assert conn.receive_data(b"x") == [CloseConnection("data on a registration connection")]
    assert registry.lookup("py") is None
    assert conn.receive_data(b"more") == []


def test_only_local_peers_may_register_dump_or_kill() -> None:
    registry = EpmdRegistry()
    for request in (
        epmd.encode_alive2_req(NodeInfo("x", 1)),
        epmd.encode_dump_req(),
        epmd.encode_kill_req(),
    ):
        events = EpmdServerConnection(registry, local_peer=False).receive_data(request)
        assert len(events) == 1 and isinstance(events[0], CloseConnection)
    assert registry.nodes() == []


def test_names_and_dump() -> None:
    registry = EpmdRegistry(epmd_port=4369)
    conn_a, _ = _register(registry, NodeInfo("a", 1111))
    _register(registry, NodeInfo("b", 2222))
    conn_a.connection_closed()
    events = EpmdServerConnection(registry, local_peer=False).receive_data(epmd.encode_names_req())
    assert events[0] == SendBytes(b"\x00\x00\x11\x11name b at port 2222\n")
    assert isinstance(events[1], CloseConnection)
    events = EpmdServerConnection(registry, local_peer=True).receive_data(epmd.encode_dump_req())
    dump = events[0].data
    assert dump.startswith(b"\x00\x00\x11\x11active name     <b> at port 2222, fd = ")
    assert b"old/unused name <a>, port = 1111, fd = " in dump
    assert dump.endswith(b"\n\0")


def test_kill() -> None:
    registry = EpmdRegistry()
    conn, _ = _register(registry, NodeInfo("a", 1111))
    events = EpmdServerConnection(registry, local_peer=True).receive_data(epmd.encode_kill_req())
    assert events[0] == SendBytes(b"NO")
    conn.connection_closed()
    events = EpmdServerConnection(registry, local_peer=True).receive_data(epmd.encode_kill_req())
    assert events[0] == SendBytes(b"OK") and events[-1] == StopServer()
    relaxed = EpmdRegistry(relaxed_command_check=True)
    _register(relaxed, NodeInfo("a", 1111))
    events = EpmdServerConnection(relaxed, local_peer=True).receive_data(epmd.encode_kill_req())
    assert events[0] == SendBytes(b"OK")


def test_port_please_for_unknown_and_nul_terminated_names() -> None:
    registry = EpmdRegistry()
    _register(registry, NodeInfo("a", 1111))
    conn = EpmdServerConnection(registry, local_peer=False)
    assert conn.receive_data(epmd.encode_port_please2_req("zz"))[0] == SendBytes(b"w\x01")
    conn = EpmdServerConnection(registry, local_peer=False)
    events = conn.receive_data(b"\x00\x03za\x00")
    assert epmd.read_port2_resp(events[0].data) == Port2Response(0, NodeInfo("a", 1111))


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"\x00\x00",  # empty packet
        b"\x0c\x00" + b"x" * 3072,  # too big for epmd's buffer
        b"\x00\x01n!",  # more than one packet
        b"\x00\x01?",  # unknown request
        b"\x00\x01z",  # PORT_PLEASE2 without a name
        b"\x00\x04za\x00b",  # NUL inside the name
        b"\x00\x03z\xff\xfe",  # not UTF-8
        b"\x00\x05x\x00\x00\x00\x00",  # ALIVE2 too short
        b"\x00\x0fx" + struct.pack(">HBBHHH", 1, 77, 0, 6, 5, 40) + b"ab\x00\x00",  # name too long
        b"\x00\x0fx" + struct.pack(">HBBHHH", 1, 77, 0, 6, 5, 2) + b"ab\x00\x09",  # extra too long
        b"\x00\x0fx" + struct.pack(">HBBHHH", 1, 77, 0, 6, 5, 2) + b"a\x00\x00\x00",  # NUL in name
    ],
)
def test_bad_requests_close_the_connection_without_reply(request_bytes: bytes) -> None:
    registry = EpmdRegistry()
    conn = EpmdServerConnection(registry, local_peer=True)
    events = conn.receive_data(request_bytes)
    assert len(events) == 1 and isinstance(events[0], CloseConnection)
    assert registry.nodes() == []


def test_long_port_please_name_and_partial_packets() -> None:
    registry = EpmdRegistry()
    conn = EpmdServerConnection(registry, local_peer=True)
    request = epmd.encode_port_please2_req("é" * 256)
    assert conn.receive_data(request[:1]) == []
    assert conn.receive_data(request[1:5]) == []
    assert isinstance(conn.receive_data(request[5:])[0], CloseConnection)


def test_registration_rejects_bad_names() -> None:
    registry = EpmdRegistry()
    for node in (NodeInfo("", 1), NodeInfo("x" * 256, 1), NodeInfo("x", 1, extra=b"e" * 1021)):
        assert registry.register(node, registry.new_connection_id()) is None


def test_creation_counter_never_goes_below_4() -> None:
    registry = EpmdRegistry(clock=lambda: 0xFFFFFFFF)
    _, events = _register(registry, NodeInfo("w", 1))
    assert _creation(events) == 4


# --------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "port"),
    [
        # the table of spec section 12.2, observed on OTP 25 with genuine ekka
        ("emqx@127.0.0.1", 4370),
        ("emqx1@host", 4371),
        ("node2@h", 4372),
        ("a1b2@h", 4372),
        ("n007@h", 4377),
        ("node12345@h", 16715),
        ("n60000@h", 4370),
        ("n99999@h", 44369),
        ("n123456789012@h", 13382),
        ("remsh_emqx@h", 0),
        ("node3", 4373),
        ("x@h1", 4370),
    ],
)
def test_ekka_port(name: str, port: int) -> None:
    assert ekka_port(name) == port


def test_ekka_port_with_another_base() -> None:
    assert ekka_port("emqx1@h", base=5370) == 5371
    assert ekka_port("n59999@h", base=10000) == 69999  # not bounded, like ekka


def test_node_names() -> None:
    assert split_node("a1@127.0.0.1") == ("a1", "127.0.0.1")
    for bad in ("a", "@h", "a@", "a@b@c", ""):
        assert not is_node_name(bad)
        with pytest.raises(ValueError):
            split_node(bad)
    assert validate_own_name("emqx@127.0.0.1", long_names=True) == ("emqx", "127.0.0.1")
    assert validate_own_name("emqx-1_a@host", long_names=False) == ("emqx-1_a", "host")
    with pytest.raises(ValueError, match="short node names"):
        validate_own_name("emqx@127.0.0.1", long_names=False)
    with pytest.raises(ValueError, match="alive part"):
        validate_own_name("em.qx@h", long_names=True)
    with pytest.raises(ValueError, match="host part"):
        validate_own_name("emqx@h st", long_names=True)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60), st.booleans())
def test_random_requests_never_crash_the_server(data: bytes, local: bool) -> None:
    registry = EpmdRegistry()
    conn = EpmdServerConnection(registry, local_peer=local)
    for event in conn.receive_data(data):
        assert isinstance(event, SendBytes | CloseConnection | StopServer)
