# ruff: noqa: F811 - test parameters are the fixtures imported from tests.otp_nodes
"""Two Python nodes over real sockets: connecting, simultaneous connects,
connect on first send, ordering under load, links, monitors and reconnects."""

from __future__ import annotations

import asyncio
from typing import Any

from pyekka.node.exits import ProcessExit
from pyekka.node.process import Process
from pyekka.term.types import Atom
from tests.otp_nodes import LogWatch, ekka_base, make_py  # noqa: F401 - fixtures

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
