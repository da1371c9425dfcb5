"""gen_server call/cast/reply and the GenServer base class."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyekka.node import (
    NOREPLY,
    CallError,
    CallTimeout,
    GenServer,
    ProcessExit,
    ProcessRuntime,
    cast,
    reply,
)
from pyekka.term.types import Atom, ImproperList, Pid, Reference, exact_equal
from pyekka.testing.router import RecordingRouter

NODE = Atom("py@127.0.0.1")
PEER = Atom("erl@127.0.0.1")
R1 = Pid(PEER, 80, 0, 1234)
NOPROC, BOOM = Atom("noproc"), Atom("boom")
GEN_CALL, GEN_CAST = Atom("$gen_call"), Atom("$gen_cast")


class Counter(GenServer):
    def __init__(self) -> None:
        self.count = 0
        self.infos: list = []
        self.deferred: list = []
        self.terminated: list = []
        self.has_deferred = asyncio.Event()
        self.go_on = asyncio.Event()

    async def handle_call(self, request: Any, from_: Any) -> Any:
        if request == Atom("get"):
            return self.count
        if request == Atom("later"):
            self.deferred.append(from_)
            self.has_deferred.set()
            return NOREPLY
        if request == Atom("release"):
            for f in self.deferred:
                reply(self.process, f, Atom("released"))
            return Atom("ok")
        if request == Atom("stop"):
            raise ProcessExit(Atom("stopped"))
        if request == Atom("crash"):
            raise RuntimeError("handler failed")
        if request == Atom("slow"):
            await self.go_on.wait()
            return Atom("too_late")
        return await super().handle_call(request, from_)

    async def handle_cast(self, msg: Any) -> None:
        self.count += msg

    async def handle_info(self, msg: Any) -> None:
        self.infos.append(msg)

    async def terminate(self, reason: Any) -> None:
        self.terminated.append(reason)


@pytest.fixture
def router():
    return RecordingRouter()


@pytest.fixture
async def rt(router):
    runtime = ProcessRuntime(NODE, 3, router=router)
    yield runtime
    await runtime.close()


async def idle(proc):
    await asyncio.get_running_loop().create_future()


async def ended(proc):
    """The exit reason of ``proc``, failing (not hanging) if it does not end."""
    return await asyncio.wait_for(proc.wait(), 5)


async def test_call_cast_info(rt):
    server = Counter()
    sp = server.start(rt, name=Atom("counter"))
    client = rt.spawn(idle)
    client.cast(Atom("counter"), 5)
    cast(rt, sp.pid, 2)
    cast(rt, Atom("nobody"), 1)  # never fails
    rt.send(Atom("counter"), "an info")
    assert await client.call(Atom("counter"), Atom("get")) == 7
    assert await client.call(sp.pid, Atom("get")) == 7
    assert await client.call((Atom("counter"), NODE), Atom("get")) == 7
    assert server.infos == ["an info"]
    assert client.message_queue_len == 0 and client._monitors == {}
    assert sp._monitored_by == {}


async def test_call_leaves_a_backlog_untouched(rt):
    sp = Counter().start(rt)
    client = rt.spawn(idle)
    backlog = [(i, "unrelated") for i in range(10_000)]
    for m in backlog:
        client.deliver(m)
    assert await client.call(sp.pid, Atom("get")) == 0
    assert client.mailbox.snapshot() == backlog


async def test_call_noproc(rt):
    client = rt.spawn(idle)
    with pytest.raises(CallError) as info:
        await client.call(Atom("nobody"), Atom("get"))
    assert info.value.reason == NOPROC
    assert exact_equal(
        info.value.exit_reason,
        (NOPROC, (Atom("gen_server"), Atom("call"), [Atom("nobody"), Atom("get"), 5000])),
    )
    dead = rt.spawn(idle)
    rt.exit(dead.pid, Atom("kill"))
    with pytest.raises(CallError) as info:
        await client.call(dead.pid, Atom("get"), timeout=None)
    assert info.value.reason == NOPROC
    assert info.value.exit_reason[1][2][2] == Atom("infinity")
    assert client.message_queue_len == 0


async def test_call_to_a_server_that_dies(rt):
    server = Counter()
    sp = server.start(rt)
    client = rt.spawn(idle)
    with pytest.raises(CallError) as info:
        await client.call(sp.pid, Atom("stop"))
    assert info.value.reason == Atom("stopped")
    assert server.terminated == [Atom("stopped")]
    server2 = Counter()
    sp2 = server2.start(rt)
    with pytest.raises(CallError) as info:
        await client.call(sp2.pid, Atom("crash"))
    expected = (Atom("python_error"), b"RuntimeError: handler failed")
    assert exact_equal(info.value.reason, expected)
    assert exact_equal(server2.terminated, [expected])
    sp3 = Counter().start(rt)
    with pytest.raises(CallError) as info:
        await client.call(sp3.pid, "unknown request")
    assert exact_equal(info.value.reason, (Atom("bad_call"), "unknown request"))
    assert client.message_queue_len == 0


async def test_call_timeout_cleans_up(rt):
    server = Counter()
    sp = server.start(rt)
    client = rt.spawn(idle)
    with pytest.raises(CallTimeout) as info:
        await client.call(sp.pid, Atom("slow"), timeout=0.02)
    assert isinstance(info.value, TimeoutError)
    assert info.value.reason == Atom("timeout")
    assert client._monitors == {} and sp._monitored_by == {}
    server.go_on.set()
    # With a plain reference tag the late reply still arrives, as in OTP before
    # aliases; it can be told apart and never matches a later call.
    late = await client.receive(timeout=2)
    assert type(late[0]) is Reference and late[1] == Atom("too_late")
    assert await client.call(sp.pid, Atom("get")) == 0


async def test_deferred_reply(rt):
    server = Counter()
    sp = server.start(rt)
    waiter = rt.spawn(idle)
    other = rt.spawn(idle)
    pending = asyncio.ensure_future(waiter.call(sp.pid, Atom("later")))
    await asyncio.wait_for(server.has_deferred.wait(), 5)
    assert not pending.done()
    assert await other.call(sp.pid, Atom("release")) == Atom("ok")
    assert await asyncio.wait_for(pending, 5) == Atom("released")


async def test_calling_self(rt):
    async def body(proc):
        await proc.call(proc.pid, Atom("x"))

    p = rt.spawn(body)
    reason = await ended(p)
    assert reason[0] == Atom("calling_self")


async def test_uncaught_call_error_gives_otp_exit_reason(rt):
    async def body(proc):
        await proc.call(Atom("nobody"), Atom("req"), timeout=1.5)

    reason = await ended(rt.spawn(body))
    assert exact_equal(
        reason, (NOPROC, (Atom("gen_server"), Atom("call"), [Atom("nobody"), Atom("req"), 1500]))
    )


async def test_replies_to_remote_callers(rt, router):
    server = Counter()
    sp = server.start(rt)
    plain_tag = Reference(PEER, 1234, (1, 2, 3))
    alias_ref = Reference(PEER, 1234, (4, 5, 6))
    alias_tag = ImproperList([Atom("alias")], alias_ref)
    rt.deliver(sp.pid, (GEN_CALL, (R1, plain_tag), Atom("get")), R1)
    rt.deliver(sp.pid, (GEN_CALL, (R1, alias_tag), Atom("get")), R1)
    await router.wait_calls(2)
    assert router.take() == [
        ("send", sp.pid, R1, (plain_tag, 0)),
        ("alias_send", sp.pid, alias_ref, (alias_tag, 0)),
    ]


async def test_reply_to_a_local_alias_tag(rt):
    caller = rt.spawn(idle)
    alias = caller.alias()
    tag = ImproperList([Atom("alias")], alias)
    reply(rt, (caller.pid, tag), Atom("hello"))
    assert await caller.receive(timeout=0) == (tag, Atom("hello"))
    caller.unalias(alias)
    reply(rt, (caller.pid, tag), Atom("dropped"))
    assert caller.message_queue_len == 0


async def test_call_to_a_remote_name(rt, router):
    client = rt.spawn(idle)
    pending = asyncio.ensure_future(client.call((Atom("rex"), PEER), "req"))
    await router.wait_calls(2)
    [(kind, watcher, target, mref), sent] = router.take()
    assert (kind, watcher, target) == ("monitor", client.pid, (Atom("rex"), PEER))
    assert sent == (
        "reg_send",
        client.pid,
        Atom("rex"),
        PEER,
        (GEN_CALL, (client.pid, mref), "req"),
    )
    rt.deliver(client.pid, (mref, "answer"), R1)
    assert await asyncio.wait_for(pending, 5) == "answer"
    assert router.take() == [("demonitor", client.pid, (Atom("rex"), PEER), mref)]


async def test_call_to_a_remote_node_that_goes_down(rt, router):
    client = rt.spawn(idle)
    pending = asyncio.ensure_future(client.call(R1, "req"))
    await router.wait_calls(2)
    rt.node_down(PEER)
    with pytest.raises(CallError) as info:
        await asyncio.wait_for(pending, 5)
    assert info.value.reason == (Atom("nodedown"), PEER)
    assert client.message_queue_len == 0


async def test_server_stops_when_its_parent_exits(rt):
    parent = rt.spawn(idle)
    server = Counter()
    sp = server.start(rt, link_to=parent.pid, trap_exit=True)
    rt.exit(parent.pid, Atom("shutdown"))
    assert await ended(sp) == Atom("shutdown")
    assert server.terminated == [Atom("shutdown")]


async def test_exit_from_a_non_parent_is_an_info_message(rt):
    server = Counter()
    sp = server.start(rt, trap_exit=True)
    other = rt.spawn(idle)
    other.link(sp.pid)
    rt.exit(other.pid, BOOM)
    await ended(other)
    client = rt.spawn(idle)
    assert await client.call(sp.pid, Atom("get")) == 0
    assert server.infos == [(Atom("EXIT"), other.pid, BOOM)]
