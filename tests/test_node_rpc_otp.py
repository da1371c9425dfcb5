"""rpc between live OTP 25/28 nodes and a Python node, both directions.

The Python node registers, under ``erlang:error/1``, ``erlang:exit/1`` and
``erlang:throw/1``, functions that raise exactly what those BIFs raise. So the
same ``rpc:call``/``erpc:call`` made once to an OTP node and once to the Python
node must give the same result: that is how the result and error shapes are
checked against OTP itself rather than against a copy of them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pyekka.node.exits import ErlangError, ErlangExit, ErlangThrow
from pyekka.node.rpc import RemoteError
from pyekka.term.types import Atom, Pid, exact_equal
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import next_number

pytestmark = pytest.mark.otp

A = Atom
BADRPC, EXIT_TAG = A("badrpc"), A("EXIT")


def q(node: Any) -> str:
    return f"'{node.name if isinstance(node, Atom) else node}'"


def raise_error(reason: Any) -> None:
    raise ErlangError(reason)


def raise_exit(reason: Any) -> None:
    raise ErlangExit(reason)


def raise_throw(value: Any) -> None:
    raise ErlangThrow(value)


@pytest.fixture
async def pynode(make_py: Any) -> Any:
    node = await make_py()
    node.register_function("erlang", "error", raise_error)
    node.register_function("erlang", "exit", raise_exit)
    node.register_function("erlang", "throw", raise_throw)
    return node


CALLS = [
    "erlang, node, []",
    "erlang, is_alive, []",
    'nomod, nofun, [1, <<"x">>]',
    "erlang, nofun, [1]",
    "erlang, error, [boom]",
    "erlang, error, [{some, [reason]}]",
    "erlang, exit, [bye]",
    "erlang, exit, [{shutdown, x}]",
    "erlang, throw, [ball]",
    "erlang, throw, [{ok, 42}]",
]


@pytest.mark.parametrize("call", CALLS)
async def test_rpc_call_shapes_match_otp(erl: OtpNode, pynode: Any, call: str) -> None:
    """``rpc:call`` (erpc spawn requests underneath) gives OTP's exact result."""
    expr = "rpc:call(NODE, " + call + ")"
    from_otp = await erl.aeval(expr.replace("NODE", q(erl.name)))
    from_py = await erl.aeval(expr.replace("NODE", q(pynode.name)))
    if call.startswith("erlang, node"):
        assert (from_otp, from_py) == (erl.atom, pynode.name)
    else:
        assert exact_equal(from_py, from_otp), (from_py, from_otp)


@pytest.mark.parametrize("call", CALLS[2:])
async def test_erpc_call_shapes_match_otp(erl: OtpNode, pynode: Any, call: str) -> None:
    expr = "try erpc:call(NODE, " + call + ") catch C:R -> {caught, C, R} end"
    from_otp = await erl.aeval(expr.replace("NODE", q(erl.name)))
    from_py = await erl.aeval(expr.replace("NODE", q(pynode.name)))
    assert exact_equal(from_py, from_otp), (from_py, from_otp)


async def test_python_exceptions_and_values(erl: OtpNode, pynode: Any) -> None:
    async def slow_add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    pynode.register_function("demo", "add", slow_add)
    pynode.register_function("demo", "divide", lambda a, b: a / b)
    pynode.register_function("demo", "echo", lambda *args: list(args))
    pynode.register_function("demo", "junk", lambda: object())
    node = q(pynode.name)
    assert await erl.aeval(f"rpc:call({node}, demo, add, [40, 2])") == 42
    assert await erl.aeval(f"rpc:call({node}, demo, echo, [a, <<1>>, 2.5])") == [
        A("a"),
        b"\x01",
        2.5,
    ]
    assert await erl.aeval(f"rpc:call({node}, demo, echo, [])") == []
    # wrong arity is an undefined function, as in Erlang
    assert await erl.aeval(f"rpc:call({node}, demo, add, [1])") == (
        BADRPC,
        (EXIT_TAG, (A("undef"), [(A("demo"), A("add"), [1], [])])),
    )
    bad, (exit_tag, ((kind, text), stack)) = await erl.aeval(
        f"rpc:call({node}, demo, divide, [1, 0])"
    )
    assert (bad, exit_tag, kind) == (BADRPC, EXIT_TAG, A("python_error"))
    assert text.startswith(b"ZeroDivisionError")
    [(m, f, arity, location)] = stack
    assert (m, f, arity) == (A("demo"), A("divide"), 2)
    assert dict(location)[A("line")] > 0
    junk = await erl.aeval(f"rpc:call({node}, demo, junk, [])")
    assert junk[0] == BADRPC and junk[1][1][0][0] == A("python_error")


async def test_default_functions(erl: OtpNode, pynode: Any) -> None:
    node = q(pynode.name)
    assert await erl.aeval(f"rpc:call({node}, erlang, node, [])") == pynode.name
    assert await erl.aeval(f"rpc:call({node}, erlang, is_alive, [])") is True
    assert await erl.aeval(f"rpc:call({node}, erlang, nodes, [])") == [erl.atom]
    assert await erl.aeval(f"rpc:call({node}, erlang, nodes, [hidden])") == []
    assert await erl.aeval(f"rpc:call({node}, erlang, nodes, [[this, visible]])") == [
        pynode.name,
        erl.atom,
    ]
    bad = await erl.aeval(f"rpc:call({node}, erlang, nodes, [bogus])")
    assert bad[0] == BADRPC and bad[1][1][0] == A("badarg")


async def test_multicall_and_casts(erl: OtpNode, pynode: Any) -> None:
    node = q(pynode.name)
    got = await erl.aeval(f"rpc:multicall([{node}, node()], erlang, node, [])")
    assert sorted(got[0], key=lambda a: a.name) == sorted([erl.atom, pynode.name], key=str)
    assert got[1] == []
    got = await erl.aeval(f"rpc:multicall([{node}, node()], erlang, error, [x])")
    assert got[0][0] == got[0][1] and got[0][0][0] == BADRPC
    assert await erl.aeval(f"rpc:multicall([{node}], nomod, f, [], 5000)") == (
        [(BADRPC, (EXIT_TAG, (A("undef"), [(A("nomod"), A("f"), [], [])])))],
        [],
    )
    seen: asyncio.Queue[Any] = asyncio.Queue()
    pynode.register_function("demo", "note", seen.put_nowait)
    assert await erl.aeval(f"rpc:cast({node}, demo, note, [via_rpc_cast])") is True
    assert await erl.aeval(f"erpc:cast({node}, demo, note, [via_erpc_cast])") == A("ok")
    got = {await asyncio.wait_for(seen.get(), 10), await asyncio.wait_for(seen.get(), 10)}
    assert got == {A("via_rpc_cast"), A("via_erpc_cast")}


async def test_classic_rex_requests(erl: OtpNode, pynode: Any) -> None:
    """What OTP 22-24 callers (or nodes without spawn support) send to rex."""
    node = q(pynode.name)
    call = f"gen_server:call({{rex, {node}}}, {{call, erlang, node, [], user}})"
    assert await erl.aeval(call) == pynode.name
    call = f"gen_server:call({{rex, {node}}}, {{call, erlang, throw, [t], user}})"
    assert await erl.aeval(call) == A("t")
    call = f"gen_server:call({{rex, {node}}}, {{call, erlang, exit, [e], user}})"
    assert await erl.aeval(call) == (BADRPC, (EXIT_TAG, A("e")))
    got = await erl.aeval(
        f"{{rex, {node}}} ! {{self(), features_request}}, "
        "receive {features_reply, N, F} -> {N, F} after 5000 -> timeout end"
    )
    assert got == (pynode.name, [A("erpc")])
    got = await erl.aeval(
        f"{{rex, {node}}} ! {{self(), {{call, erlang, node, [], user}}}}, "
        "receive {rex, R} -> R after 5000 -> timeout end"
    )
    assert got == pynode.name


async def test_spawn_of_undefined_function_is_refused_like_otp(erl: OtpNode, pynode: Any) -> None:
    expr = (
        "{P, R} = spawn_monitor({node}, nomod, nofun, [1]), "
        "receive {'DOWN', R, process, P, Why} -> Why after 5000 -> timeout end"
    )
    from_otp = await erl.aeval(expr.replace("{node}", q(erl.name)))
    from_py = await erl.aeval(expr.replace("{node}", q(pynode.name)))
    assert exact_equal(from_py, from_otp)
    assert from_py == (A("undef"), [(A("nomod"), A("nofun"), [1], [])])


async def test_spawn_of_registered_function(erl: OtpNode, pynode: Any) -> None:
    started: asyncio.Queue[Any] = asyncio.Queue()
    pynode.register_function("demo", "worker", started.put_nowait)
    got = await erl.aeval(
        f"{{P, R}} = spawn_monitor({q(pynode.name)}, demo, worker, [hi]), "
        "receive {'DOWN', R, process, P, Why} -> {node(P), Why} after 5000 -> timeout end"
    )
    assert got == (pynode.name, A("normal"))
    assert await asyncio.wait_for(started.get(), 5) == A("hi")


# ------------------------------------------------------------------ Python -> OTP


async def test_python_rpc_into_otp(erl: OtpNode, pynode: Any) -> None:
    target = erl.name
    assert await pynode.rpc(target, "erlang", "node", []) == erl.atom
    assert await pynode.rpc(target, "lists", "seq", [1, 3]) == [1, 2, 3]
    assert await pynode.rpc(target, "erlang", "throw", [A("ball")]) == A("ball")
    assert await pynode.rpc(target, "erlang", "exit", [A("bye")]) == (BADRPC, (EXIT_TAG, A("bye")))
    assert await pynode.rpc(target, "nomod", "nofun", [1]) == (
        BADRPC,
        (EXIT_TAG, (A("undef"), [(A("nomod"), A("nofun"), [1], [])])),
    )
    assert await pynode.rpc(target, "erlang", "error", [A("boom")]) == (
        BADRPC,
        (EXIT_TAG, (A("boom"), [(A("erlang"), A("error"), [A("boom")], [])])),
    )
    assert await pynode.rpc(target, "timer", "sleep", [2000], timeout=0.2) == (BADRPC, A("timeout"))
    # io from the remote function goes to our group leader and does not block it
    assert await pynode.rpc(target, "io", "format", ["hello ~p~n", [A("world")]]) == A("ok")
    with pytest.raises(RemoteError) as info:
        await pynode.erpc(target, "erlang", "error", [A("boom")])
    assert (info.value.kind, info.value.reason) == (A("error"), A("boom"))
    assert await pynode.erpc(target, "erlang", "abs", [-3]) == 3


async def test_python_rpc_to_unreachable_node(pynode: Any) -> None:
    nobody = f"nobody{next_number()}@127.0.0.1"
    assert await pynode.rpc(nobody, "erlang", "node", []) == (BADRPC, A("nodedown"))


async def test_python_rpc_falls_back_to_rex(make_py: Any) -> None:
    """A peer without spawn support is asked through its rex server."""
    from pyekka.dist import flags as df

    old = await make_py(flags=(df.DEFAULT_FLAGS | df.HEADER_FLAGS) & ~df.DFlag.SPAWN)
    old.register_function("demo", "pid_node", lambda pid: pid.node)
    caller = await make_py()
    assert await caller.rpc(old.name, "erlang", "node", []) == old.name
    assert await caller.rpc(old.name, "nomod", "f", []) == (
        BADRPC,
        (EXIT_TAG, (A("undef"), [(A("nomod"), A("f"), [], [])])),
    )
    pid = Pid(caller.name, 1, 0, caller.creation)
    assert await caller.rpc(old.name, "demo", "pid_node", [pid]) == caller.name
    with pytest.raises(RemoteError) as info:
        await caller.erpc(old.name, "erlang", "node", [])
    assert info.value.reason == A("notsup")


async def test_the_shared_vm_logged_no_errors(erl: OtpNode) -> None:
    """Runs last: nothing above made the shared VM log an error, but for the
    undefined function it was asked to spawn on itself, for comparison."""
    events = await erl.aeval("pyekka_ctl:log_events()")
    errors = [text for level, text in events if level == Atom("error")]
    assert [t for t in errors if b"{undef,[{nomod,nofun,[1],[]}]}" not in t] == []
    assert len(errors) == 1
