# ruff: noqa: F811 - test parameters are the fixtures imported from tests.otp_nodes
"""``pyekka start | ping | rpc`` as subprocesses, against live OTP 25 and 28 nodes.

Epmd-less here (ekka's port rule, as every node of ``tests.otp_nodes``); with epmd
in ``tests/test_cli_node_epmd.py``, which shares the helpers below. The temporary
nodes of ``ping`` and ``rpc`` must be hidden and leave nothing behind; ``start``
must serve OTP nodes and stop cleanly on ``SIGTERM``. Every subprocess runs in its
own session and is killed in teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyekka.cli import main
from pyekka.term import format_term
from pyekka.term.types import Atom
from pyekka.testing.otp import clean_env
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import (  # noqa: F401 - fixtures
    COOKIE,
    HOST,
    ekka_base,
    erl,
    make_otp,
    next_number,
)
from tests.test_node_epmd import os_process

A = Atom
REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0
NODEUP, NODEDOWN, NODE_TYPE = A("nodeup"), A("nodedown"), A("node_type")
HIDDEN, VISIBLE = A("hidden"), A("visible")


@dataclass
class Run:
    status: int
    out: str
    err: str


CliEnv = Callable[..., dict[str, str]]


@pytest.fixture
def cli_env(tmp_path: Path) -> CliEnv:
    """The environment of a ``pyekka`` subprocess: this repository's package, a
    ``HOME`` of its own (no cookie file written to the real one), no ``ERL_EPMD_PORT``
    unless given."""

    def env(**extra: str) -> dict[str, str]:
        environ = clean_env()
        environ.pop("ERL_EPMD_PORT", None)
        path = environ.get("PYTHONPATH")
        environ["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
        environ["HOME"] = str(tmp_path)
        environ.update(extra)
        return environ

    return env


def pyekka_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyekka", *args]


async def run(env: dict[str, str], *args: str) -> Run:
    """Run ``pyekka ARGS`` to completion (killed with its session if it hangs)."""
    proc = await asyncio.create_subprocess_exec(
        *pyekka_argv(*args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    return Run(proc.returncode or 0, out.decode(), err.decode())


def ekka(base: int, cookie: str = COOKIE) -> list[str]:
    return ["--cookie", cookie, "--no-epmd", "--dist-base-port", str(base)]


def q(name: str) -> str:
    return f"'{name}'"


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
    assert await run(env, "ping", *ekka(ekka_base), erl.name) == Run(0, "pong\n", "")
    nobody = f"nobody{next_number()}@{HOST}"
    assert await run(env, "ping", *ekka(ekka_base), nobody) == Run(1, "pang\n", "")
    wrong = await run(env, "ping", *ekka(ekka_base, "not-the-cookie"), erl.name)
    assert (wrong.status, wrong.out) == (1, "pang\n")


async def test_rpc_results_in_erlang_syntax(erl: OtpNode, ekka_base: int, cli_env: CliEnv) -> None:
    env = cli_env()
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "erlang", "node", "[]")
    assert got == Run(0, format_term(erl.atom) + "\n", "")
    assert got.out == q(erl.name) + "\n"
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "lists", "seq", "[1,3]")
    assert got == Run(0, "[1,2,3]\n", "")
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "lists", "reverse", '["abc"]')
    assert got == Run(0, '"cba"\n', "")
    args = '[#{a => {1, 2.5, <<"bin">>}}]'
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "erlang", "term_to_binary", args)
    assert got.status == 0
    expected = await erl.aeval(f"term_to_binary({args[1:-1]})")
    assert got.out == format_term(expected, pretty=True) + "\n"


async def test_rpc_badrpc_exits_non_zero(erl: OtpNode, ekka_base: int, cli_env: CliEnv) -> None:
    env = cli_env()
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "nomod", "nofun", "[1]")
    assert got == Run(1, "{badrpc,{'EXIT',{undef,[{nomod,nofun,[1],[]}]}}}\n", "")
    expected = await erl.aeval("rpc:call(node(), erlang, exit, [bye])")
    got = await run(env, "rpc", *ekka(ekka_base), erl.name, "erlang", "exit", "[bye]")
    assert got == Run(1, format_term(expected) + "\n", "")
    got = await run(
        env, "rpc", "--timeout", "0.2", *ekka(ekka_base), erl.name, "timer", "sleep", "[5000]"
    )
    assert got == Run(1, "{badrpc,timeout}\n", "")


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
    assert got == Run(0, "[]\n", "")
    got = await run(env, "rpc", *ekka(ekka_base), node.name, "erlang", "nodes", "[hidden]")
    assert got.status == 0
    found = re.fullmatch(r"\['(remsh-pyekka-[0-9a-f]+@127\.0\.0\.1)'\]\n", got.out)
    assert found, got
    temp = found.group(1)
    assert await run(env, "ping", *ekka(ekka_base), node.name) == Run(0, "pong\n", "")
    events = await node_events(node, "events", 6)
    kinds = [(tag, info) for tag, _, info in events]
    assert kinds == [(NODEUP, [(NODE_TYPE, HIDDEN)]), (NODEDOWN, [(NODE_TYPE, HIDDEN)])] * 3
    names = [peer for _, peer, _ in events]
    assert names[2] == names[3] == A(temp)
    assert len(set(names)) == 3  # a new random name each time
    assert await node.aeval("nodes(connected)") == []
    assert await node.aeval("global:registered_names()") == []
    assert node.log_events() == []


# ------------------------------------------------------------------ pyekka start


async def test_start_serves_otp_until_sigterm(
    make_otp: Any, ekka_base: int, cli_env: CliEnv
) -> None:
    erl = make_otp()
    n = next_number()
    name = f"py{n}@{HOST}"
    argv = pyekka_argv("start", "--name", name, *ekka(ekka_base), "--dist-interface", HOST)
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
        async with asyncio.timeout(TIMEOUT):
            assert await node.proc.wait() == 0
        await node.expect(rf"node {re.escape(name)} stopped$", after=mark)
    events = await node_events(erl, "events", 4)
    up = (NODEUP, A(name), [(NODE_TYPE, VISIBLE)])
    down = (NODEDOWN, A(name), [(NODE_TYPE, VISIBLE)])
    assert events == [up, down, up, down]
    assert await erl.aeval("nodes()") == []


async def test_start_sees_hidden_rpc_nodes(ekka_base: int, cli_env: CliEnv) -> None:
    """A Python-only pair: ``pyekka rpc`` into ``pyekka start``."""
    name = f"py{next_number()}@{HOST}"
    env = cli_env()
    argv = pyekka_argv("start", "--name", name, *ekka(ekka_base), "--dist-interface", HOST)
    async with os_process(argv, env) as node:
        await node.expect(r"listening on ")
        got = await run(env, "rpc", *ekka(ekka_base), name, "erlang", "nodes", "[hidden]")
        found = re.fullmatch(r"\['(remsh-pyekka-\w+@127\.0\.0\.1)'\]\n", got.out)
        assert found, got
        temp = found.group(1)
        await node.expect(rf"nodeup {re.escape(temp)} \(hidden\)$")
        await node.expect(rf"nodedown {re.escape(temp)} \(hidden, \w+\)$")
        assert await run(env, "rpc", *ekka(ekka_base), name, "erlang", "nodes", "[]") == Run(
            0, "[]\n", ""
        )
        node.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(TIMEOUT):
            assert await node.proc.wait() == 0


async def test_start_refuses_a_taken_port(ekka_base: int, cli_env: CliEnv) -> None:
    name = f"py{next_number()}@{HOST}"
    env = cli_env()
    argv = pyekka_argv("start", "--name", name, *ekka(ekka_base), "--dist-interface", HOST)
    async with os_process(argv, env) as first:
        await first.expect(r"listening on ")
        got = await run(env, "start", "--name", name, *ekka(ekka_base), "--dist-interface", HOST)
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
    assert await run(env, "ping", *opts, erl.name) == Run(0, "pong\n", "")
    cookie_file.chmod(0o644)  # OTP refuses a file others may read
    got = await run(env, "ping", *opts, erl.name)
    assert got.status == 2 and "accessible by owner only" in got.err
