"""Two Python nodes over real sockets: connecting, simultaneous connects,
connect on first send, ordering under load, links, monitors and reconnects; why a
connection fails (:class:`ConnectError`), and outgoing-only nodes (``listen=False``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyekka.node import ConnectError, ConnectFailure, Node
from pyekka.node.epmd import EpmdServer, EpmdUnavailable
from pyekka.node.exits import ProcessExit
from pyekka.node.process import Process
from pyekka.term.types import Atom
from pyekka.testing.processes import free_port
from tests.otp_nodes import COOKIE, HOST, LogWatch, fake_acceptor, next_number

A = Atom


async def inbox(node: Any, name: str, count: int) -> asyncio.Future[list]:
    """A process registered as ``name`` that collects ``count`` messages."""
    done: asyncio.Future[list] = asyncio.get_running_loop().create_future()

    async def collect(proc: Process) -> None:
        done.set_result([await proc.receive() for _ in range(count)])

    node.spawn(collect, name=A(name))
    return done


async def test_connect_on_first_send_keeps_order(make_py: Any) -> None:
    a, b = await make_py(), await make_py()
    n = 20000
    got = await inbox(b, "sink", n)

    async def blast(proc: Process) -> None:
        for i in range(n):
            proc.send((A("sink"), b.name), (i, b"x" * (i % 50)))

    await a.run(blast)  # all queued before the connection is up, then written in order
    msgs = await asyncio.wait_for(got, 60)
    assert [m[0] for m in msgs] == list(range(n))
    assert a.nodes() == [b.name] and b.nodes() == [a.name]


async def test_simultaneous_connect(make_py: Any) -> None:
    with LogWatch() as watch:
        for _ in range(5):
            await _connect_both_ways_at_once(make_py)
    # at least one round was a real race, settled as OTP does
    assert any("simultaneous connect" in t for t in watch.texts())


async def _connect_both_ways_at_once(make_py: Any) -> None:
    a, b = await make_py(), await make_py()
    got_a, got_b = await inbox(a, "box", 100), await inbox(b, "box", 100)

    async def to(proc: Process, node: Any) -> None:
        for i in range(100):
            proc.send((A("box"), node.name), i)

    # both sides send (and so connect) at once
    await asyncio.gather(a.run(to, b), b.run(to, a))
    assert await asyncio.wait_for(got_a, 10) == list(range(100))
    assert await asyncio.wait_for(got_b, 10) == list(range(100))
    assert a.nodes() == [b.name] and b.nodes() == [a.name]
    assert a.distribution.connection(b.name) is not None
    await a.stop()
    await b.stop()


async def test_links_monitors_and_exits(make_py: Any) -> None:
    a, b = await make_py(), await make_py()
    started = asyncio.get_running_loop().create_future()

    async def target(proc: Process) -> None:
        started.set_result(proc.pid)
        msg = await proc.receive()
        raise ProcessExit(msg)

    b.spawn(target)
    pid = await started

    async def watcher(proc: Process) -> Any:
        proc.trap_exit = True
        proc.link(pid)
        ref = proc.monitor(pid)
        proc.send(pid, A("bye"))
        return ref, [await proc.receive(timeout=10) for _ in range(2)]

    ref, got = await a.run(watcher)
    assert (A("EXIT"), pid, A("bye")) in got
    assert (A("DOWN"), ref, A("process"), pid, A("bye")) in got


async def test_reconnect_after_disconnect(make_py: Any) -> None:
    a, b = await make_py(), await make_py()
    assert await a.ping(b.name)

    async def watch(proc: Process) -> Any:
        proc.monitor_nodes(True, [A("nodedown_reason")])
        assert a.disconnect(b.name)
        return await proc.receive(lambda m: m[0] == A("nodedown"), timeout=10)

    down = await a.run(watch)
    assert down[1] == b.name and down[2] == [(A("nodedown_reason"), A("disconnect"))]
    assert await a.rpc(b.name, "erlang", "node", []) == b.name
    assert a.nodes() == [b.name]


async def test_peer_stop_gives_noconnection(make_py: Any) -> None:
    a, b = await make_py(), await make_py()
    started = asyncio.get_running_loop().create_future()

    async def target(proc: Process) -> None:
        started.set_result(proc.pid)
        await proc.receive()

    b.spawn(target)
    pid = await started

    async def watcher(proc: Process) -> Any:
        ref = proc.monitor(pid)
        assert await a.rpc(b.name, "erlang", "node", []) == b.name
        await b.stop()
        return ref, await proc.receive(proc.is_down_of(ref), timeout=10)

    ref, down = await a.run(watcher)
    assert down == (A("DOWN"), ref, A("process"), pid, A("noconnection"))


# ------------------------------------------------------------------ why a connect fails


async def connect_failure(node: Node, peer: Any) -> ConnectError:
    """The error ``connect_or_raise`` raises (``connect`` says ``False`` as well)."""
    with pytest.raises(ConnectError) as info:
        await node.connect_or_raise(peer)
    assert not await node.connect(peer)
    return info.value


async def test_connect_failures_say_why(make_py: Any) -> None:
    a, stranger = await make_py(), await make_py(cookie="not-the-cookie")
    with LogWatch() as watch:
        error = await connect_failure(a, stranger.name)
    assert error.reason is ConnectFailure.WRONG_COOKIE and error.node == stranger.name.name
    assert "different cookie" in str(error)
    assert any("cannot connect to" in t for t in watch.texts())
    nobody = f"nobody{next_number()}@{HOST}"  # its ekka port: nobody listens there
    assert (await connect_failure(a, nobody)).reason is ConnectFailure.REFUSED
    remsh = f"remsh{next_number()}@{HOST}"  # ekka's rule gives it no port
    assert (await connect_failure(a, remsh)).reason is ConnectFailure.UNKNOWN_NODE
    for bad in ("nohost", f"short{next_number()}@localhost"):  # a is a long-names node
        assert (await connect_failure(a, bad)).reason is ConnectFailure.BAD_NAME
    error = await connect_failure(a, "someone@no-such-host.invalid")
    assert error.reason is ConnectFailure.UNKNOWN_HOST
    assert await a.connect_or_raise(a.name) is None  # itself: always connected
    await a.stop()
    assert (await connect_failure(a, stranger.name)).reason is ConnectFailure.SHUTDOWN


async def test_waiters_hear_why_and_stop_ends_their_wait(make_py: Any) -> None:
    a, stranger = await make_py(), await make_py(cookie="not-the-cookie")
    errors = await asyncio.gather(
        *(a.connect_or_raise(stranger.name) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(e, ConnectError) for e in errors), errors
    assert {e.reason for e in errors} == {ConnectFailure.WRONG_COOKIE}  # type: ignore[union-attr]

    # an attempt under way when the node stops: its waiter gets SHUTDOWN, not silence
    async with fake_acceptor(a.dist_base_port, prefix="mute") as mute:
        waiting = asyncio.ensure_future(a.connect_or_raise(mute.name))
        await asyncio.wait_for(mute.connected.wait(), 5)  # the handshake is under way
        await a.stop()
        with pytest.raises(ConnectError) as info:
            await asyncio.wait_for(waiting, 5)
        assert info.value.reason is ConnectFailure.SHUTDOWN


# ------------------------------------------------------------------ outgoing-only nodes


async def test_an_outgoing_only_node_takes_no_ekka_port(make_py: Any) -> None:
    served = await make_py()
    out = await make_py(prefix="out", listen=False, hidden=True)
    assert out.port == 0
    assert await out.rpc(served.name, "erlang", "node", []) == served.name
    assert served.nodes("hidden") == [out.name] and served.nodes() == []
    third = await make_py()  # nothing listens on the port ekka's rule gives ``out``
    assert (await connect_failure(third, out.name)).reason is ConnectFailure.REFUSED


async def test_an_outgoing_only_node_needs_no_epmd_registration(
    epmd_server: EpmdServer,
) -> None:
    port = epmd_server.port
    async with (
        Node(f"reg{next_number()}@{HOST}", COOKIE, epmd_port=port, dist_interface=HOST) as served,
        Node(f"out{next_number()}@{HOST}", COOKIE, epmd_port=port, listen=False) as out,
    ):
        assert [info.name for info in epmd_server.nodes()] == [served.name.name.split("@")[0]]
        error = await connect_failure(served, out.name)  # epmd does not know it
        assert error.reason is ConnectFailure.UNKNOWN_NODE
        assert await out.rpc(served.name, "erlang", "node", []) == served.name
        assert served.nodes() == [out.name]  # a visible node may be outgoing-only too


async def test_without_any_epmd_only_outgoing_only_nodes_start() -> None:
    no_epmd = free_port()
    with pytest.raises(EpmdUnavailable):
        await Node(f"reg{next_number()}@{HOST}", COOKIE, epmd_port=no_epmd).start()
    async with Node(f"out{next_number()}@{HOST}", COOKIE, epmd_port=no_epmd, listen=False) as out:
        error = await connect_failure(out, f"peer{next_number()}@{HOST}")
    assert error.reason is ConnectFailure.NO_EPMD and "epmd" in error.detail
