"""A Python :class:`~pyekka.node.node.Node` against live OTP 25 and 28 nodes.

Each test runs once per OTP runtime found (``otp25``, ``otp28``). Nodes run
epmd-less with ekka's port rule (``pyekka_epmd``/``pyekka_dist`` on the OTP side)
unless the test is about epmd.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.exits import ProcessExit
from pyekka.node.process import Process
from pyekka.term.types import Atom, Pid, exact_equal
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode, epmd_less_args
from tests.otp_nodes import COOKIE, HOST, LogWatch, next_number

pytestmark = pytest.mark.otp

A = Atom
EXIT, DOWN, PROCESS = A("EXIT"), A("DOWN"), A("process")
NOCONNECTION = A("noconnection")


def q(node: Any) -> str:
    """A node name as an Erlang atom literal."""
    return f"'{node.name if isinstance(node, Atom) else node}'"


# ------------------------------------------------------------------ connecting


async def test_ping_both_ways(erl: OtpNode, py: Any) -> None:
    assert await py.ping(erl.name)
    assert await erl.aeval(f"net_adm:ping({q(py.name)})") == A("pong")
    assert erl.atom in py.nodes()
    assert py.name in await erl.aeval("nodes()")
    assert await erl.aeval(f"erlang:disconnect_node({q(py.name)})") is True
    assert await erl.aeval(f"net_adm:ping({q(py.name)})") == A("pong")


async def test_otp_connects_first(erl: OtpNode, py: Any) -> None:
    """The acceptor role: the VM connects, then both sides use the connection."""
    assert await erl.aeval(f"net_kernel:connect_node({q(py.name)})") is True
    assert erl.atom in py.nodes()
    assert await py.rpc(erl.name, "erlang", "node", []) == erl.atom


async def test_hidden_python_node(erl: OtpNode, make_py: Any) -> None:
    hidden = await make_py(hidden=True)
    assert await hidden.ping(erl.name)
    assert erl.atom in hidden.nodes("hidden") and hidden.nodes() == []
    assert hidden.name not in await erl.aeval("nodes()")
    assert hidden.name in await erl.aeval("nodes(hidden)")
    assert await hidden.rpc(erl.name, "erlang", "node", []) == erl.atom


async def test_hidden_otp_node(make_otp: Any, py: Any) -> None:
    vm = make_otp("-hidden")
    assert await vm.aeval(f"net_adm:ping({q(py.name)})") == A("pong")
    assert vm.atom in py.nodes("hidden") and vm.atom not in py.nodes()
    # a hidden peer is no member: global does not try to sync with it
    assert await vm.aeval(f"rpc:call({q(py.name)}, erlang, nodes, [hidden])") == [vm.atom]


async def test_wrong_cookie_python_connects(make_otp: Any, make_py: Any) -> None:
    vm = make_otp()
    stranger = await make_py(cookie="not-the-cookie")
    with LogWatch() as watch:
        assert not await stranger.ping(vm.name)
        line = await watch.wait("different cookie", logging.ERROR)
    assert vm.name in line
    with pytest.raises(ConnectError) as info:
        await stranger.connect_or_raise(vm.name)
    assert info.value.reason is ConnectFailure.WRONG_COOKIE and info.value.node == vm.name
    events = await vm.aeval("pyekka_ctl:log_events()")
    texts = [text.decode() for _, text in events]
    assert any(stranger.name.name in t and "rejected" in t for t in texts), texts


async def test_wrong_cookie_otp_connects(make_otp: Any, make_py: Any) -> None:
    vm = make_otp(cookie="not-the-cookie")
    node = await make_py()
    with LogWatch() as watch:
        assert await vm.aeval(f"net_adm:ping({q(node.name)})") == A("pang")
        line = await watch.wait("different cookie", logging.ERROR)
    assert vm.name in line and "refused" in line
    assert node.nodes("connected") == []


async def test_outgoing_only_hidden_node(make_otp: Any, make_py: Any) -> None:
    """As ``erl_call``: a hidden node that does not listen reaches OTP nodes, which
    cannot reach it."""
    out = await make_py(prefix="out", listen=False, hidden=True)
    vm = make_otp()
    assert await vm.aeval(f"net_adm:ping({q(out.name)})") == A("pang")
    assert await out.rpc(vm.name, "erlang", "nodes", [A("hidden")]) == [out.name]
    assert await out.ping(vm.name)
    assert await vm.aeval("nodes()") == []
    assert vm.log_events() == []


async def test_short_names(
    otp: OtpRuntime, interop_ebin: Any, ekka_base: int, make_py: Any
) -> None:
    vm = OtpNode(
        otp,
        interop_ebin,
        f"erls{next_number()}@localhost",
        COOKIE,
        long_names=False,
        args=epmd_less_args(ekka_base, HOST),
    )
    try:
        node = await make_py(long_names=False, prefix="pys", host="localhost")
        assert node.name.name.endswith("@localhost") and not node.long_names
        assert await node.ping(vm.name)
        assert await vm.aeval(f"rpc:call({q(node.name)}, erlang, node, [])") == node.name
        assert await node.rpc(vm.name, "erlang", "node", []) == vm.atom
    finally:
        vm.close()


@pytest.fixture
def real_epmd() -> Iterator[int]:
    """A real ``epmd`` on a free port of 127.0.0.1, stopped afterwards."""
    binary = shutil.which("epmd")
    if binary is None:
        pytest.skip("no epmd on PATH")
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "-d", "-port", str(port), "-address", HOST],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # it says so once it listens
            if b"epmd running" in line:
                break
        else:
            pytest.fail("epmd did not start")
        yield port
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


async def test_epmd_mode(otp: OtpRuntime, interop_ebin: Any, real_epmd: int) -> None:
    from pyekka.node.node import Node

    env = {"ERL_EPMD_PORT": str(real_epmd)}
    vm = OtpNode(
        otp,
        interop_ebin,
        f"erle{next_number()}@{HOST}",
        COOKIE,
        args=["-kernel", "inet_dist_use_interface", "{127,0,0,1}"],
        env=env,
    )
    try:
        async with Node(
            f"pye{next_number()}@{HOST}", COOKIE, epmd_port=real_epmd, dist_interface=HOST
        ) as node:
            names = await vm.aeval("element(2, net_adm:names())")
            alive = node.name.name.split("@")[0]
            assert ([ord(c) for c in alive], node.port) in names
            assert await node.ping(vm.name)
            assert await vm.aeval(f"net_adm:ping({q(node.name)})") == A("pong")
            assert await vm.aeval(f"rpc:call({q(node.name)}, erlang, node, [])") == node.name
    finally:
        vm.close()


# ------------------------------------------------------------------ messages


async def test_messages_both_ways_in_order(erl: OtpNode, py: Any) -> None:
    n = 5000
    inbox = f"inbox{next_number()}"
    done: asyncio.Future[list] = asyncio.get_running_loop().create_future()

    async def collect(proc: Process) -> None:
        done.set_result([await proc.receive() for _ in range(n)])

    py.spawn(collect, name=A(inbox))
    await erl.aeval(
        f'[{{{inbox}, {q(py.name)}}} ! {{seq, I, <<"payload">>}} || I <- lists:seq(1, {n})], ok'
    )
    got = await asyncio.wait_for(done, 60)
    assert [m[1] for m in got] == list(range(1, n + 1))
    assert all(m[0] == A("seq") and m[2] == b"payload" for m in got)

    coll = f"coll{next_number()}"
    await erl.aeval(f"pyekka_ctl:collector({coll})")

    async def blast(proc: Process) -> None:
        for i in range(1, n + 1):
            proc.send((A(coll), erl.atom), (A("seq"), i, [1.5, "text"]))

    await py.run(blast)
    msgs = await erl.aeval(f"pyekka_ctl:wait_messages({coll}, {n}, 30000)", timeout=60)
    assert [m[1] for m in msgs] == list(range(1, n + 1))
    assert exact_equal(msgs[0][2], [1.5, b"text"])


async def test_big_fragmented_messages_both_ways(erl: OtpNode, py: Any) -> None:
    """OTP fragments messages over 64 KiB when FRAGMENTS is negotiated."""
    name = f"echo{next_number()}"

    async def echo(proc: Process) -> None:
        while True:
            sender, payload = await proc.receive()
            proc.send(sender, (A("echo"), payload))

    py.spawn(echo, name=A(name))
    size = 3_000_000
    got = await erl.aeval(
        f"B = crypto:strong_rand_bytes({size}), "
        f"{{{name}, {q(py.name)}}} ! {{self(), {{B, [a, b]}}}}, "
        f"receive {{echo, {{B2, L}}}} -> {{B2 =:= B, L}} after 20000 -> timeout end",
        timeout=40,
    )
    assert got == (True, [A("a"), A("b")])
    conn = py.distribution.connection(erl.atom)
    assert conn is not None and conn.has(0x800000)  # DFLAG_FRAGMENTS


# ------------------------------------------------------------------ links and monitors


async def test_otp_links_and_monitors_python_process(erl: OtpNode, py: Any) -> None:
    watch = f"watch{next_number()}"
    await erl.aeval(f"pyekka_ctl:collector({watch})")

    async def victim(proc: Process) -> None:
        proc.send((A(watch), erl.atom), (A("hello"), proc.pid))
        msg = await proc.receive()
        raise ProcessExit((A("shutdown"), msg))

    p = py.spawn(victim)
    await erl.aeval(
        f"[{{hello, Pid}}] = pyekka_ctl:wait_messages({watch}, 1, 10000), W = whereis({watch}), "
        "spawn(fun() -> process_flag(trap_exit, true), link(Pid), R = monitor(process, Pid), "
        "W ! {monitor, R}, Pid ! go, (fun L() -> receive X -> W ! X, L() end end)() end), ok"
    )
    assert await p.wait() == (A("shutdown"), A("go"))
    msgs = await erl.aeval(f"pyekka_ctl:wait_messages({watch}, 4, 10000)")
    kinds = {m[0]: m for m in msgs}
    reason = (A("shutdown"), A("go"))
    assert kinds[EXIT] == (EXIT, p.pid, reason)
    assert kinds[DOWN][2:] == (PROCESS, p.pid, reason)
    assert kinds[DOWN][1] == kinds[A("monitor")][1]


async def test_otp_monitors_unknown_and_kills(erl: OtpNode, py: Any) -> None:
    async def sleeper(proc: Process) -> None:
        await proc.receive()

    p = py.spawn(sleeper, name=A(f"sleeper{next_number()}"))
    name = p.name.name
    got = await erl.aeval(
        f"R = monitor(process, {{nosuch, {q(py.name)}}}), "
        "receive {'DOWN', R, process, Item, Why} -> {Item, Why} after 5000 -> timeout end"
    )
    assert got == ((A("nosuch"), py.name), A("noproc"))
    # exit(Pid, kill) from the VM, seen through a monitor by name
    await erl.aeval(f"pyekka_ctl:collector(k{name})")

    async def hello(proc: Process) -> None:
        proc.send((A(f"k{name}"), erl.atom), p.pid)

    await py.run(hello)
    down = await erl.aeval(
        f"[Pid] = pyekka_ctl:wait_messages(k{name}, 1, 5000), "
        f"R = monitor(process, {{{name}, {q(py.name)}}}), exit(Pid, kill), "
        "receive {'DOWN', R, process, Item, Why} -> {Item, Why} after 5000 -> timeout end"
    )
    assert down == ((A(name), py.name), A("killed"))
    assert await p.wait() == A("killed")


async def test_python_links_and_monitors_otp_process(erl: OtpNode, py: Any) -> None:
    target = f"target{next_number()}"
    pid = await erl.aeval(
        f"P = spawn(fun() -> receive {{die, R}} -> exit(R) end end), register({target}, P), P"
    )

    async def watcher(proc: Process) -> Any:
        proc.trap_exit = True
        proc.link(pid)
        ref = proc.monitor(pid)
        ref_name = proc.monitor((A(target), erl.atom))
        proc.send(pid, (A("die"), A("boom")))
        got = [await proc.receive() for _ in range(3)]
        return ref, ref_name, got

    ref, ref_name, got = await py.run(watcher)
    assert (EXIT, pid, A("boom")) in got
    assert (DOWN, ref, PROCESS, pid, A("boom")) in got
    assert (DOWN, ref_name, PROCESS, (A(target), erl.atom), A("boom")) in got


async def test_python_unlink_from_otp_process(erl: OtpNode, py: Any) -> None:
    pid = await erl.aeval("spawn(fun() -> receive {die, R} -> exit(R) end end)")

    async def body(proc: Process) -> Any:
        proc.link(pid)
        proc.unlink(pid)
        ref = proc.monitor(pid)
        proc.send(pid, (A("die"), A("boom")))
        return await proc.receive(proc.is_down_of(ref), timeout=10)

    down = await py.run(body)  # the process survives the death of its ex-link
    assert down[4] == A("boom")


async def test_noconnection_when_python_node_stops(erl: OtpNode, make_py: Any) -> None:
    node = await make_py()
    watch = f"nc{next_number()}"
    await erl.aeval(f"pyekka_ctl:collector({watch})")

    async def victim(proc: Process) -> None:
        proc.send((A(watch), erl.atom), proc.pid)
        await proc.receive()

    node.spawn(victim)
    await erl.aeval(
        f"[Pid] = pyekka_ctl:wait_messages({watch}, 1, 10000), W = whereis({watch}), "
        "spawn(fun() -> process_flag(trap_exit, true), link(Pid), monitor(process, Pid), "
        "W ! linked, (fun L() -> receive X -> W ! X, L() end end)() end), "
        f"pyekka_ctl:wait_messages({watch}, 2, 10000)"
    )
    # Signals from the linker went out before 'linked': make sure they arrived.
    assert await node.rpc(erl.name, "erlang", "node", []) == erl.atom
    await node.stop()
    msgs = await erl.aeval(f"pyekka_ctl:wait_messages({watch}, 4, 10000)")
    reasons = {m[0]: m[-1] for m in msgs[2:]}
    assert reasons == {EXIT: NOCONNECTION, DOWN: NOCONNECTION}


async def test_python_sees_noconnection(erl: OtpNode, py: Any) -> None:
    pid = await erl.aeval("spawn(fun() -> receive stop -> ok end end)")

    async def body(proc: Process) -> Any:
        ref = proc.monitor(pid)
        request = (A("call"), A("erlang"), A("node"), [], proc.pid)
        assert await proc.call((A("rex"), erl.atom), request) == erl.atom
        proc.monitor_nodes(True)
        return ref

    ref = await py.run(body)

    async def watch(proc: Process) -> Any:
        ref = proc.monitor(pid)
        proc.monitor_nodes(True)
        await erl.aeval(f"erlang:disconnect_node({q(py.name)})")
        down = await proc.receive(proc.is_down_of(ref), timeout=10)
        nodedown = await proc.receive(lambda m: m == (A("nodedown"), erl.atom), timeout=10)
        return down, nodedown

    down, _ = await py.run(watch)
    assert down[4] == NOCONNECTION
    assert ref is not None


async def test_idle_connection_ticks_both_ways(make_otp: Any, make_py: Any) -> None:
    vm = make_otp("-kernel", "net_ticktime", "1")
    node = await make_py(net_ticktime=1.0)

    async def body(proc: Process) -> None:
        proc.monitor_nodes(True)
        assert await node.ping(vm.name)
        with pytest.raises(TimeoutError):  # no nodedown for 3 tick periods
            await proc.receive(lambda m: m[0] == A("nodedown"), timeout=3.0)

    await node.run(body)
    assert vm.atom in node.nodes()
    assert node.name in await vm.aeval("nodes()")


async def test_global_sync_and_register_with_python_member(make_otp: Any, make_py: Any) -> None:
    a, b = make_otp(), make_otp()
    assert await a.aeval(f"net_adm:ping({q(b.name)})") == A("pong")
    node = await make_py()
    assert await node.ping(a.name) and await node.ping(b.name)
    for vm in (a, b):
        assert await vm.aeval("global:sync()") == A("ok")
    register = "global:register_name(gname, spawn(fun() -> receive _ -> ok end end))"
    assert await a.aeval(register) == A("yes")
    pid = await b.aeval("global:whereis_name(gname)")
    assert type(pid) is Pid
    assert node.global_server is not None and node.global_server.whereis(A("gname")) == pid
    assert sorted(n.name for n in node.nodes()) == sorted([a.name, b.name])
    assert await b.aeval("global:unregister_name(gname)") == A("ok")
    assert await a.aeval("global:whereis_name(gname)") == A("undefined")
    for vm in (a, b):
        assert await vm.aeval("pyekka_ctl:log_events()") == []


async def test_the_shared_vm_logged_no_errors(erl: OtpNode) -> None:
    """Runs last: nothing above made the shared VM log an error."""
    events = await erl.aeval("pyekka_ctl:log_events()")
    assert [e for e in events if e[0] == Atom("error")] == []
