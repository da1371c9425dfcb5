"""``pyekka start | ping | rpc`` as subprocesses, against live OTP 25 and 28 nodes.

Epmd-less here (ekka's port rule, as every node of ``tests.otp_nodes``); with epmd
in ``tests/test_cli_node_epmd.py``; the helpers are in ``tests/cli_nodes.py``. The
temporary nodes of ``ping`` and ``rpc`` must be hidden, outgoing-only and leave
nothing behind; ``start`` must serve OTP nodes and stop cleanly on ``SIGTERM``.
Every subprocess runs in its own session and is killed in teardown.
"""

from __future__ import annotations

import contextlib
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.cli import main
from pyekka.node.cli_support import explain
from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.term import format_term
from pyekka.term.types import Atom
from pyekka.testing.otp_node import OtpNode
from pyekka.testing.processes import Completed, OsProcess, free_port, os_process
from tests.cli_nodes import TIMEOUT, CliEnv, pyekka_argv, q, run
from tests.otp_nodes import COOKIE, HOST, next_number

A = Atom
NODEUP, NODEDOWN, NODE_TYPE = A("nodeup"), A("nodedown"), A("node_type")
HIDDEN, VISIBLE = A("hidden"), A("visible")


def ekka(base: int, cookie: str = COOKIE) -> list[str]:
    return ["--cookie", cookie, "--no-epmd", "--dist-base-port", str(base)]


def start_args(name: str, base: int) -> list[str]:
    """``pyekka start`` of the epmd-less node ``name`` on 127.0.0.1."""
    return ["start", "--name", name, *ekka(base), "--dist-interface", HOST]


async def watch_nodes(node: OtpNode, collector: str) -> None:
    """Make the OTP node's collector ``collector`` get every nodeup/nodedown
    (all node types) from now on."""
    await node.aeval(
        f"pyekka_ctl:collector({collector}), Self = self(), "
        "spawn(fun() -> net_kernel:monitor_nodes(true, [{node_type, all}]), Self ! subscribed, "
        f"F = fun L() -> receive M -> {collector} ! M, L() end end, F() end), "
        "receive subscribed -> ok end"
    )


async def node_events(node: OtpNode, collector: str, count: int) -> list[Any]:
    events = await node.aeval(f"pyekka_ctl:wait_messages({collector}, {count}, 10000)")
    assert type(events) is list, events
    return events


# ------------------------------------------------------------------ epmd-less


async def test_ping_pong_and_pang(erl: OtpNode, ekka_base: int, cli_env: CliEnv) -> None:
    env = cli_env()
    assert await run(env, "ping", *ekka(ekka_base), erl.name) == Completed(0, "pong\n", "")
    nobody = f"nobody{next_number()}@{HOST}"
    assert await run(env, "ping", *ekka(ekka_base), nobody) == Completed(1, "pang\n", "")
    wrong = await run(env, "ping", *ekka(ekka_base, "not-the-cookie"), erl.name)
    assert (wrong.status, wrong.out) == (1, "pang\n")


async def test_rpc_results_in_erlang_syntax(erl: OtpNode, ekka_base: int, cli_env: CliEnv) -> None:
    env = cli_env()
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "erlang", "node", "[]")
    assert got == Completed(0, format_term(erl.atom) + "\n", "")
    assert got.out == q(erl.name) + "\n"
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "lists", "seq", "[1,3]")
    assert got == Completed(0, "[1,2,3]\n", "")
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "lists", "reverse", '["abc"]')
    assert got == Completed(0, '"cba"\n', "")
    args = '[#{a => {1, 2.5, <<"bin">>}}]'
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "erlang", "term_to_binary", args)
    assert got.status == 0
    expected = await erl.aeval(f"term_to_binary({args[1:-1]})")
    assert got.out == format_term(expected, pretty=True) + "\n"


async def test_rpc_badrpc_exits_non_zero(erl: OtpNode, ekka_base: int, cli_env: CliEnv) -> None:
    env = cli_env()
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "nomod", "nofun", "[1]")
    assert got == Completed(1, "{badrpc,{'EXIT',{undef,[{nomod,nofun,[1],[]}]}}}\n", "")
    expected = await erl.aeval("rpc:call(node(), erlang, exit, [bye])")
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "erlang", "exit", "[bye]")
    assert got == Completed(1, format_term(expected) + "\n", "")
    got = await run(
        env, "rpc", "--timeout", "0.2", *ekka(ekka_base), erl.name, "timer", "sleep", "[5000]"
    )
    assert got == Completed(1, "{badrpc,timeout}\n", "")


async def test_rpc_refused_or_unreachable(erl: OtpNode, ekka_base: int, cli_env: CliEnv) -> None:
    env = cli_env()
    got = await run(env, "rpc", *ekka(ekka_base, "wrong"), erl.name, "erlang", "node", "[]")
    assert (got.status, got.out) == (3, "")
    assert f"connection to {erl.name} refused: wrong cookie?" in got.err
    nobody = f"nobody{next_number()}@{HOST}"
    got = await run(env, "rpc", *ekka(ekka_base), nobody, "erlang", "node", "[]")
    assert (got.status, got.out) == (3, "")
    assert f"cannot connect to {nobody}: " in got.err


async def test_temporary_nodes_are_hidden_and_leave_no_trace(
    make_otp: Any, ekka_base: int, cli_env: CliEnv
) -> None:
    node = make_otp()
    env = cli_env()
    await watch_nodes(node, "events")
    got = await run(env, "rpc", *ekka(ekka_base), node.name, "erlang", "nodes", "[]")
    assert got == Completed(0, "[]\n", "")
    got = await run(env, "rpc", *ekka(ekka_base), node.name, "erlang", "nodes", "[hidden]")
    assert got.status == 0
    found = re.fullmatch(r"\['(remsh-pyekka-[0-9a-f]+@127\.0\.0\.1)'\]\n", got.out)
    assert found, got
    temp = found.group(1)
    assert await run(env, "ping", *ekka(ekka_base), node.name) == Completed(0, "pong\n", "")
    events = await node_events(node, "events", 6)
    kinds = [(tag, info) for tag, _, info in events]
    assert kinds == [(NODEUP, [(NODE_TYPE, HIDDEN)]), (NODEDOWN, [(NODE_TYPE, HIDDEN)])] * 3
    names = [peer for _, peer, _ in events]
    assert names[2] == names[3] == A(temp)
    assert len(set(names)) == 3  # a new random name each time
    assert await node.aeval("nodes(connected)") == []
    assert await node.aeval("global:registered_names()") == []
    assert node.log_events() == []


async def test_temporary_nodes_take_no_port_and_need_no_epmd(
    erl: OtpNode, ekka_base: int, cli_env: CliEnv
) -> None:
    """Outgoing-only, as ``erl_call``: a temporary node whose name gives it, by ekka's
    rule, the very port ``erl`` listens on still works; no epmd anywhere."""
    number = erl.name.split("@")[0].removeprefix("erl")
    env = cli_env(ERL_EPMD_PORT=str(free_port()))
    opts = ["--name", f"ctl{number}@{HOST}", *ekka(ekka_base)]
    assert await run(env, "ping", *opts, erl.name) == Completed(0, "pong\n", "")
    got = await run(env, "rpc", *opts, erl.name, "erlang", "nodes", "[hidden]")
    assert got == Completed(0, f"['ctl{number}@127.0.0.1']\n", "")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (ConnectFailure.WRONG_COOKIE, "connection to a@h refused: wrong cookie? (why)"),
        (ConnectFailure.NOT_ALLOWED, "connection to a@h refused: not allowed (why)"),
        (ConnectFailure.REFUSED, "cannot connect to a@h: why"),
        (ConnectFailure.NO_EPMD, "cannot connect to a@h: why"),
    ],
)
def test_connect_errors_are_explained(reason: ConnectFailure, expected: str) -> None:
    assert explain(ConnectError(reason, "why", "a@h")) == expected


# ------------------------------------------------------------------ pyekka start


async def test_start_serves_otp_until_sigterm(
    make_otp: Any, ekka_base: int, cli_env: CliEnv
) -> None:
    erl = make_otp()
    n = next_number()
    name = f"py{n}@{HOST}"
    argv = pyekka_argv(*start_args(name, ekka_base))
    async with os_process(argv, cli_env()) as node:
        found = await node.expect(rf"node {re.escape(name)} listening on 127\.0\.0\.1:(\d+) ")
        assert int(found.group(1)) == ekka_base + n
        await watch_nodes(erl, "events")
        assert await erl.aeval(f"net_adm:ping({q(name)})") == A("pong")
        await node.expect(rf"nodeup {re.escape(erl.name)} \(visible\)$")
        for call, expected in [
            ("erlang, node, []", A(name)),
            ("erlang, nodes, []", [erl.atom]),
            ("erlang, nodes, [hidden]", []),
            ("erlang, is_alive, []", True),
        ]:
            assert await erl.aeval(f"rpc:call({q(name)}, {call})") == expected, call

        mark = len(node.lines)
        assert await erl.aeval(f"erlang:disconnect_node({q(name)})") is True
        await node.expect(rf"nodedown {re.escape(erl.name)} \(visible, \w+\)$", after=mark)
        mark = len(node.lines)
        assert await erl.aeval(f"net_adm:ping({q(name)})") == A("pong")
        await node.expect(rf"nodeup {re.escape(erl.name)} \(visible\)$", after=mark)

        node.proc.send_signal(signal.SIGTERM)
        assert await node.wait(TIMEOUT) == 0
        await node.expect(rf"node {re.escape(name)} stopped$", after=mark)
    events = await node_events(erl, "events", 4)
    up = (NODEUP, A(name), [(NODE_TYPE, VISIBLE)])
    down = (NODEDOWN, A(name), [(NODE_TYPE, VISIBLE)])
    assert events == [up, down, up, down]
    assert await erl.aeval("nodes()") == []


@contextlib.asynccontextmanager
async def started(env: dict[str, str], name: str, base: int) -> AsyncIterator[OsProcess]:
    """``pyekka start`` of ``name`` (epmd-less, on 127.0.0.1), once it listens."""
    async with os_process(pyekka_argv(*start_args(name, base)), env) as node:
        await node.expect(r"listening on ")
        yield node


async def test_start_sees_hidden_rpc_nodes(ekka_base: int, cli_env: CliEnv) -> None:
    """A Python-only pair: ``pyekka rpc`` into ``pyekka start``."""
    name = f"py{next_number()}@{HOST}"
    env = cli_env()
    async with started(env, name, ekka_base) as node:
        got = await run(env, "rpc", *ekka(ekka_base), name, "erlang", "nodes", "[hidden]")
        found = re.fullmatch(r"\['(remsh-pyekka-\w+@127\.0\.0\.1)'\]\n", got.out)
        assert found, got
        temp = found.group(1)
        await node.expect(rf"nodeup {re.escape(temp)} \(hidden\)$")
        await node.expect(rf"nodedown {re.escape(temp)} \(hidden, \w+\)$")
        assert await run(env, "rpc", *ekka(ekka_base), name, "erlang", "nodes", "[]") == Completed(
            0, "[]\n", ""
        )
        node.proc.send_signal(signal.SIGINT)
        assert await node.wait(TIMEOUT) == 0


async def test_start_refuses_a_taken_port(ekka_base: int, cli_env: CliEnv) -> None:
    name = f"py{next_number()}@{HOST}"
    env = cli_env()
    async with started(env, name, ekka_base):
        got = await run(env, *start_args(name, ekka_base))
        assert got.status == 3 and "cannot start the node" in got.err


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rpc", "--cookie", "c", "a@127.0.0.1", "m", "f", "{1, 2}"], "ARGS must be a list"),
        (["rpc", "--cookie", "c", "a@127.0.0.1", "m", "f", "[1,"], "ARGS: "),
        (["rpc", "--cookie", "c", "a@b@c", "m", "f", "[]"], "bad node name"),
        (["ping", "--cookie", "c", "a@b.c", "--sname", "x@h.i"], "short node names"),
    ],
)
def test_bad_input_is_refused_before_any_connection(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["start", "--cookie", "c"],  # no name
        ["start", "--name", "a@127.0.0.1", "--sname", "b"],
        ["ping", "--timeout", "0", "a@127.0.0.1"],
        ["ping", "--timeout", "soon", "a@127.0.0.1"],
    ],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


async def test_cookie_from_the_cookie_file(
    erl: OtpNode, ekka_base: int, cli_env: CliEnv, tmp_path: Path
) -> None:
    """Without ``--cookie`` the cookie of ``$HOME/.erlang.cookie`` is used."""
    env = cli_env()
    opts = ["--no-epmd", "--dist-base-port", str(ekka_base)]
    cookie_file = tmp_path / ".erlang.cookie"
    cookie_file.write_text(COOKIE + "\n")
    cookie_file.chmod(0o400)
    assert await run(env, "ping", *opts, erl.name) == Completed(0, "pong\n", "")
    cookie_file.chmod(0o644)  # OTP refuses a file others may read
    got = await run(env, "ping", *opts, erl.name)
    assert got.status == 2 and "accessible by owner only" in got.err
