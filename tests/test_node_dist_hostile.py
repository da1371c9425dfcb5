"""Peers that break the protocol: the node logs, drops that connection, and keeps
serving everybody else."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import pytest

from pyekka.dist.handshake import LocalNode
from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.connection import HandshakeError, run_initiator
from pyekka.node.node import Node
from pyekka.node.process import Process
from pyekka.term.types import Atom
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import COOKIE, HOST, LogWatch, fake_acceptor, next_number

NODEDOWN = Atom("nodedown")


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    """Everything the node still sends (ticks ...) until it closes the connection."""
    seen = b""
    async with asyncio.timeout(timeout):
        while chunk := await reader.read(65536):
            seen += chunk
    return seen


async def fake_peer(
    node: Node, name: str | None = None, version: int = 6, **kw: Any
) -> tuple[Atom, asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-driven peer that completes the handshake with ``node``."""
    name = name or f"evil{next_number()}@{HOST}"
    reader, writer = await asyncio.open_connection(HOST, node.port)
    local = LocalNode(name, 7, COOKIE, **kw)
    await run_initiator(
        reader,
        writer,
        local,
        node.name.name,
        timeout=5,
        keep_on_alive=lambda: True,
        version=version,
    )
    return Atom(name), reader, writer


async def still_serving(node: Node, make_py: Any) -> None:
    other = await make_py()
    assert await other.ping(node.name)
    assert await other.rpc(node.name, "erlang", "node", []) == node.name


async def watch_nodedown(node: Node, peer: Atom, timeout: float = 10.0) -> Any:
    """Subscribe first, then wait for ``peer``'s nodedown (a helper process)."""
    ready = asyncio.get_running_loop().create_future()

    async def body(proc: Process) -> Any:
        proc.monitor_nodes(True, [Atom("nodedown_reason"), (Atom("node_type"), Atom("all"))])
        ready.set_result(None)
        return await proc.receive(lambda m: m[0] == NODEDOWN and m[1] == peer, timeout=timeout)

    task = asyncio.ensure_future(node.run(body))
    await ready
    return task


async def test_garbage_instead_of_a_handshake(make_py: Any) -> None:
    node = await make_py(handshake_timeout=2.0)
    with LogWatch() as watch:
        reader, writer = await asyncio.open_connection(HOST, node.port)
        writer.write(b"\x00\x05hello")
        assert await closed_by_peer(reader, 5) == b""
        line = await watch.wait("refused", logging.WARNING)
    assert "expected a name message" in line
    writer.close()
    await still_serving(node, make_py)


async def test_slow_loris_is_dropped_at_the_handshake_deadline(make_py: Any) -> None:
    node = await make_py(handshake_timeout=0.5)
    loop = asyncio.get_running_loop()
    with LogWatch() as watch:
        reader, writer = await asyncio.open_connection(HOST, node.port)
        start = loop.time()
        message = struct.pack(">HcQIH", 40, b"N", 0, 1, 20) + b"x" * 20
        closed = False
        for byte in message:  # one byte at a time, while the node lets us
            writer.write(bytes([byte]))
            try:
                assert await asyncio.wait_for(reader.read(100), 0.05) == b""
                closed = True
                break
            except TimeoutError:
                continue
        if not closed:
            await closed_by_peer(reader, 5)
        elapsed = loop.time() - start
        await watch.wait("net_setuptime", logging.WARNING)
    assert 0.4 < elapsed < 3.0
    writer.close()
    await still_serving(node, make_py)


async def dropped_for(node: Node, data: bytes) -> tuple[Atom, str]:
    """A fake peer sends ``data`` after the handshake; the node must log a protocol
    error and drop it (nodedown). The peer's name and the log line."""
    name, reader, writer = await fake_peer(node)
    down = await watch_nodedown(node, name)
    with LogWatch() as watch:
        writer.write(data)
        await closed_by_peer(reader)
        line = await watch.wait("protocol error", logging.ERROR)
    assert (await down)[1] == name
    writer.close()
    return name, line


async def test_oversized_frame_after_the_handshake(make_py: Any) -> None:
    node = await make_py(max_frame_size=1 << 20)
    name, line = await dropped_for(node, struct.pack(">I", 1 << 30))
    assert name.name in line and "exceeds" in line
    await still_serving(node, make_py)


async def test_undecodable_term_after_the_handshake(make_py: Any) -> None:
    node = await make_py()
    body = b"\x70\x83\xff\xff\xff"  # pass-through, then no valid term
    await dropped_for(node, struct.pack(">I", len(body)) + body)
    await still_serving(node, make_py)


async def test_truncated_frame_then_eof(make_py: Any) -> None:
    node = await make_py()
    name, _reader, writer = await fake_peer(node)
    down = await watch_nodedown(node, name)
    writer.write(struct.pack(">I", 100) + b"\x70" * 10)
    writer.write_eof()
    msg = await down
    assert msg[1] == name
    assert name not in node.nodes("connected")
    writer.close()
    await still_serving(node, make_py)


async def test_silent_peer_is_declared_dead(make_py: Any) -> None:
    node = await make_py(net_ticktime=1.0)
    name, reader, writer = await fake_peer(node)
    loop = asyncio.get_running_loop()
    start = loop.time()
    down = await watch_nodedown(node, name)
    msg = await down  # we never tick back
    assert 0.7 < loop.time() - start < 3.0
    assert dict(msg[2])[Atom("nodedown_reason")] == Atom("net_tick_timeout")
    seen = await closed_by_peer(reader)
    assert b"\x00\x00\x00\x00" in seen  # the node ticked while waiting
    writer.close()


async def test_silent_acceptor_fails_the_connection_attempt(make_py: Any) -> None:
    node = await make_py(handshake_timeout=0.5, prefix="loner")
    async with fake_acceptor(node.dist_base_port, prefix="mute") as mute:
        with LogWatch() as watch:
            assert not await node.ping(mute.name)
            await watch.wait("net_setuptime", logging.WARNING)
        with pytest.raises(ConnectError) as info:
            await node.connect_or_raise(mute.name)
        assert info.value.reason is ConnectFailure.TIMEOUT
        assert "net_setuptime" in info.value.detail


async def test_garbage_from_an_acceptor_is_a_protocol_error(make_py: Any) -> None:
    node = await make_py(prefix="loner")
    async with fake_acceptor(node.dist_base_port, b"\x00\x05hello", "babble") as babble:
        with pytest.raises(ConnectError) as info:
            await node.connect_or_raise(babble.name)
        assert info.value.reason is ConnectFailure.PROTOCOL_ERROR
        assert "expected a status message" in info.value.detail


async def test_peer_lacking_required_flags_is_refused(make_py: Any) -> None:
    node = await make_py()
    reader, writer = await asyncio.open_connection(HOST, node.port)
    local = LocalNode(f"old{next_number()}@{HOST}", 7, COOKIE, flags=0x4, required_flags=0)
    with LogWatch() as watch, pytest.raises(HandshakeError, match="not_allowed") as info:
        await run_initiator(
            reader, writer, local, node.name.name, timeout=5, keep_on_alive=lambda: True
        )
    assert info.value.reason is ConnectFailure.NOT_ALLOWED
    assert any("lacks required flags" in t for t in watch.texts(logging.WARNING))
    writer.close()


@pytest.mark.otp
async def test_a_hostile_peer_does_not_disturb_an_otp_peer(erl: OtpNode, make_py: Any) -> None:
    node = await make_py()
    assert await node.ping(erl.name)
    down = await watch_nodedown(node, erl.atom, timeout=1.0)
    for body in (b"\x70\x83\xff", b"\x83\x44\x01\xff"):
        _name, reader, writer = await fake_peer(node)
        writer.write(struct.pack(">I", len(body)) + body)
        await closed_by_peer(reader)
        writer.close()
    reader, writer = await asyncio.open_connection(HOST, node.port)
    writer.write(b"\x00\x01Z")
    await closed_by_peer(reader)
    writer.close()
    assert await erl.aeval(f"net_adm:ping('{node.name.name}')") == Atom("pong")
    assert await node.rpc(erl.name, "erlang", "node", []) == erl.atom
    with pytest.raises(TimeoutError):  # the OTP connection never went down
        await down


async def test_old_style_v5_handshake(make_py: Any) -> None:
    """OTP 23/24 open with the old 'n' message towards ekka nodes (version 5)."""
    node = await make_py()
    name, reader, writer = await fake_peer(node, version=5)
    assert name in node.nodes()
    conn = node.distribution.connection(name)
    assert conn is not None and conn.peer_creation == 7
    writer.close()
    await closed_by_peer(reader)


async def test_a_reconnecting_peer_replaces_its_old_connection(make_py: Any) -> None:
    """Status ``alive``: the peer restarted while we still hold its old connection."""
    node = await make_py()
    name, old_reader, old_writer = await fake_peer(node)
    first = node.distribution.connection(name)
    down = await watch_nodedown(node, name)
    _, _reader, writer = await fake_peer(node, name=name.name)  # answers "true" to alive
    assert (await down)[1] == name
    await closed_by_peer(old_reader)
    assert name in node.nodes()
    assert node.distribution.connection(name) not in (None, first)
    for w in (old_writer, writer):
        w.close()
