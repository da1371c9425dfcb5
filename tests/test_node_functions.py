"""Registered functions, spawn requests and the rex/net_kernel/io services, without
sockets: a runtime whose remote side is a recording router."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyekka.dist import control as c
from pyekka.node import ProcessRuntime
from pyekka.node.exits import BadArg, ErlangError, ErlangExit, ErlangThrow
from pyekka.node.functions import FunctionRegistry, Outcome
from pyekka.node.gen_server import call
from pyekka.node.process import Process
from pyekka.node.services import start_services
from pyekka.node.spawn import SpawnService, erpc_exit_reason, process_exit_reason, rpc_result
from pyekka.term.types import Atom, Pid, Reference
from pyekka.testing.router import RecordingRouter

A = Atom
NODE = A("py@127.0.0.1")
PEER = A("erl@127.0.0.1")
RPID = Pid(PEER, 77, 0, 5)
RETURN, THROW, EXIT, ERROR = A("return"), A("throw"), A("exit"), A("error")
M, F = A("demo"), A("f")


@pytest.fixture
def functions() -> FunctionRegistry:
    reg = FunctionRegistry()
    reg.register("demo", "add", lambda a, b: a + b)

    @reg.function("demo")
    async def later(x: Any) -> Any:
        await asyncio.sleep(0)
        return (A("later"), x)

    reg.register("demo", "throws", lambda v: (_ for _ in ()).throw(ErlangThrow(v)))
    reg.register("demo", "exits", lambda v: (_ for _ in ()).throw(ErlangExit(v)))
    reg.register("demo", "errors", lambda v: (_ for _ in ()).throw(ErlangError(v)))
    reg.register("demo", "badarg", lambda: (_ for _ in ()).throw(BadArg("x")))
    reg.register("demo", "crash", lambda: 1 // 0)
    reg.register("demo", "junk", lambda: object())
    reg.register("demo", "varargs", lambda *a: len(a))
    return reg


async def test_outcomes(functions: FunctionRegistry) -> None:
    apply = functions.apply
    assert await apply(M, A("add"), [1, 2]) == Outcome(RETURN, 3)
    assert await apply(M, A("later"), [1]) == Outcome(RETURN, (A("later"), 1))
    assert await apply(M, A("throws"), [A("t")]) == Outcome(THROW, A("t"))
    assert await apply(M, A("exits"), [A("e")]) == Outcome(EXIT, A("e"))
    assert await apply(M, A("errors"), [A("r")]) == Outcome(
        ERROR, A("r"), [(M, A("errors"), [A("r")], [])]
    )
    assert (await apply(M, A("badarg"), [])).value == A("badarg")
    assert await apply(M, A("varargs"), [1, 2, 3]) == Outcome(RETURN, 3)


async def test_undefined_and_wrong_arity(functions: FunctionRegistry) -> None:
    for mod, fun, args in [(M, A("nope"), [1]), (M, A("add"), [1]), (A("x"), A("add"), [])]:
        assert await functions.apply(mod, fun, args) == Outcome(
            ERROR, A("undef"), [(mod, fun, args, [])]
        )
    assert functions.lookup(M, A("add"), 2) is not None
    assert functions.lookup(M, A("add"), 3) is None
    assert functions.unregister("demo", "add")
    assert functions.lookup(M, A("add"), 2) is None


async def test_python_exceptions(functions: FunctionRegistry) -> None:
    crash = await functions.apply(M, A("crash"), [])
    assert crash.kind == ERROR
    kind, text = crash.value
    assert kind == A("python_error") and text.startswith(b"ZeroDivisionError")
    [(mod, fun, arity, location)] = crash.stack
    assert (mod, fun, arity) == (M, A("crash"), 0)
    assert dict(location)[A("line")] > 0
    file = "".join(chr(ch) for ch in dict(location)[A("file")])
    assert file.endswith("test_node_functions.py")
    junk = await functions.apply(M, A("junk"), [])
    assert junk.kind == ERROR and junk.value[1].startswith(b"EncodeError")


def test_result_shapes() -> None:
    ref = Reference(PEER, 5, (1, 2, 3))
    assert erpc_exit_reason(ref, Outcome(RETURN, 1)) == (ref, RETURN, 1)
    assert erpc_exit_reason(ref, Outcome(ERROR, A("r"), ["s"])) == (ref, ERROR, A("r"), ["s"])
    badrpc, exit_ = A("badrpc"), A("EXIT")
    assert rpc_result(Outcome(THROW, 7)) == 7
    assert rpc_result(Outcome(EXIT, A("e"))) == (badrpc, (exit_, A("e")))
    assert rpc_result(Outcome(ERROR, A("r"), ["s"])) == (badrpc, (exit_, (A("r"), ["s"])))
    assert process_exit_reason(Outcome(RETURN, 1), M, F, 0) == A("normal")
    assert process_exit_reason(Outcome(THROW, 1), M, F, 0) == ((A("nocatch"), 1), [(M, F, 0, [])])


@pytest.fixture
async def rt() -> Any:
    router = RecordingRouter()
    runtime = ProcessRuntime(NODE, 9, router=router)
    yield runtime, router
    await runtime.close()


async def test_spawn_request_execute_call(rt: Any, functions: FunctionRegistry) -> None:
    runtime, router = rt
    service = SpawnService(runtime, functions)
    req_id, ref = Reference(PEER, 5, (1, 1, 1)), Reference(PEER, 5, (2, 2, 2))
    req = c.SpawnRequest(
        req_id,
        RPID,
        RPID,
        (A("erpc"), A("execute_call"), 4),
        [A("monitor")],
        [ref, M, A("add"), [2, 3]],
    )
    flags, pid = service.handle(req)
    assert flags == 2 and type(pid) is Pid and pid.node == NODE
    await router.wait_calls(1)
    assert router.take() == [("monitor_exit", pid, RPID, req_id, (ref, RETURN, 5))]


async def test_spawn_request_of_undefined_function(rt: Any, functions: FunctionRegistry) -> None:
    runtime, router = rt
    service = SpawnService(runtime, functions)
    req_id = Reference(PEER, 5, (1, 1, 1))
    req = c.SpawnRequest(req_id, RPID, RPID, (A("no"), A("f"), 1), [A("link")], [1])
    flags, pid = service.handle(req)
    assert flags == 1
    await router.wait_calls(1)
    assert router.take() == [("exit", pid, RPID, (A("undef"), [(A("no"), A("f"), [1], [])]))]
    assert service.handle(c.SpawnRequest(req_id, RPID, RPID, (M, F, 2), [], [1]))[1] == A("badarg")


async def test_runtime_spawn_request_bookkeeping(rt: Any) -> None:
    runtime, router = rt
    got: asyncio.Queue[Any] = asyncio.Queue()

    async def requester(proc: Process) -> None:
        proc.trap_exit = True
        req = runtime.spawn_request(proc, PEER, M, F, [1], link=True, monitor=True)
        await got.put(req)
        while True:
            await got.put(await proc.receive())

    proc = runtime.spawn(requester)
    req_id = await got.get()
    [call_] = router.take()
    assert call_ == (
        "spawn_request",
        req_id,
        proc.pid,
        proc.pid,
        PEER,
        (M, F, 1),
        [1],
        [A("link"), A("monitor")],
    )
    runtime.remote_spawn_reply(req_id, proc.pid, 3, RPID)
    assert await got.get() == (A("spawn_reply"), req_id, A("ok"), RPID)
    assert RPID in proc.links
    runtime.remote_monitor_exit(RPID, proc.pid, req_id, A("done"))
    assert await got.get() == (A("DOWN"), req_id, A("process"), RPID, A("done"))
    # a pending request fails with noconnection when the node goes down
    req2 = runtime.spawn_request(proc, PEER, M, F, [])
    runtime.node_down(PEER)
    assert await got.get() == (A("spawn_reply"), req2, A("error"), A("noconnection"))
    assert await got.get() == (A("EXIT"), RPID, A("noconnection"))  # the link broke too
    # an abandoned request: no reply, the late process is told to go
    req3 = runtime.spawn_request(proc, PEER, M, F, [])
    assert runtime.spawn_request_abandon(req3) and not runtime.spawn_request_abandon(req3)
    router.take()
    runtime.remote_spawn_reply(req3, proc.pid, 0, RPID)
    assert router.take() == [("exit2", proc.pid, RPID, A("abandoned"))]
    assert got.empty()


async def test_services(rt: Any, functions: FunctionRegistry) -> None:
    runtime, _ = rt
    start_services(runtime, functions)

    async def body(proc: Process) -> Any:
        auth = await call(proc, A("net_kernel"), (A("is_auth"), PEER))
        via_rex = await call(proc, A("rex"), (A("call"), M, A("add"), [1, 2], proc.pid))
        failed = await call(proc, A("rex"), (A("call"), M, A("exits"), [A("x")], proc.pid))
        proc.send(A("rex"), (proc.pid, A("features_request")))
        features = await proc.receive()
        proc.send(
            A("user"), (A("io_request"), proc.pid, A("ra"), (A("put_chars"), A("unicode"), b"hi"))
        )
        io = await proc.receive()
        proc.send(
            A("user"), (A("io_request"), proc.pid, A("rb"), (A("get_line"), A("unicode"), b""))
        )
        no_input = await proc.receive()
        return auth, via_rex, failed, features, io, no_input

    result = await asyncio.wait_for(_run(runtime, body), 10)
    assert result == (
        A("yes"),
        3,
        (A("badrpc"), (A("EXIT"), A("x"))),
        (A("features_reply"), NODE, [A("erpc")]),
        (A("io_reply"), A("ra"), A("ok")),
        (A("io_reply"), A("rb"), (A("error"), A("enotsup"))),
    )
    assert runtime.group_leader == runtime.whereis(A("user"))


async def _run(runtime: ProcessRuntime, body: Any) -> Any:
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def wrapper(proc: Process) -> None:
        done.set_result(await body(proc))

    runtime.spawn(wrapper)
    return await done
