"""``pyekka start | ping | rpc`` with epmd, against live OTP 25 and 28 nodes.

The epmd is OTP's own or our embedded server, on a free port that ``ERL_EPMD_PORT``
names for every node, OTP or Python; long and short names. See
``tests/test_cli_node.py`` for the epmd-less cases, ``tests/cli_nodes.py`` for the
helpers.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.node.epmd import lookup_node, register
from pyekka.term.types import Atom
from pyekka.testing.epmd import LiveEpmd, live_epmd
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode
from pyekka.testing.processes import Completed, free_port, os_process
from tests.cli_nodes import TIMEOUT, CliEnv, pyekka_argv, q, run
from tests.otp_nodes import COOKIE, HOST, closing_all, next_number

pytestmark = pytest.mark.otp

A = Atom


@pytest.fixture(params=["epmd", "embedded"])
async def epmd(request: pytest.FixtureRequest, otp: OtpRuntime) -> AsyncIterator[LiveEpmd]:
    """OTP's epmd of the runtime under test, or our embedded server, on a free port."""
    async with live_epmd(otp if request.param == "epmd" else None) as running:
        yield running


@pytest.fixture
async def otp_with_epmd(
    otp: OtpRuntime, interop_ebin: Path, epmd: LiveEpmd
) -> AsyncIterator[Callable[..., Any]]:
    """Start OTP nodes registered with ``epmd`` (off the event loop, which may
    be serving it); all killed afterwards."""
    with closing_all() as started:

        async def start(name: str, *, long_names: bool = True) -> OtpNode:
            node = await asyncio.to_thread(
                OtpNode,
                otp,
                interop_ebin,
                name,
                COOKIE,
                long_names=long_names,
                args=["-start_epmd", "false", "-kernel", "inet_dist_use_interface", "{127,0,0,1}"],
                env={"ERL_EPMD_PORT": str(epmd.port)},
            )
            started.append(node)
            return node

        yield start


@pytest.mark.parametrize("host", [HOST, "localhost"], ids=["long", "short"])
async def test_ping_and_rpc_through_epmd(
    otp_with_epmd: Any, epmd: LiveEpmd, cli_env: CliEnv, host: str
) -> None:
    erl = await otp_with_epmd(f"erl{next_number()}@{host}", long_names=host == HOST)
    env = cli_env(ERL_EPMD_PORT=str(epmd.port))
    opts = ["--cookie", COOKIE]
    assert await run(env, "ping", *opts, erl.name) == Completed(0, "pong\n", "")
    got = await run(env, "rpc", *opts, erl.name, "erlang", "nodes", "[hidden]")
    found = re.fullmatch(rf"\['?(remsh-pyekka-\w+)@{re.escape(host)}'?\]\n", got.out)
    assert found, got
    assert await epmd.forgot(found.group(1), TIMEOUT)
    got = await run(env, "rpc", *opts, erl.name, "erlang", "nodes", "[]")
    assert got == Completed(0, "[]\n", "")
    nobody = f"nobody{next_number()}@{host}"
    assert await run(env, "ping", *opts, nobody) == Completed(1, "pang\n", "")
    got = await run(env, "rpc", *opts, nobody, "erlang", "node", "[]")
    assert got.status == 3 and "does not know 'nobody" in got.err
    # the epmd port comes from ERL_EPMD_PORT, as for OTP: without it, no epmd there
    wrong_port = cli_env(ERL_EPMD_PORT=str(epmd.port + 1 if epmd.port < 65535 else 1))
    got = await run(wrong_port, "ping", *opts, erl.name)
    assert got.status == 3 and "epmd" in got.err


async def test_temporary_nodes_do_not_register(
    otp_with_epmd: Any, epmd: LiveEpmd, cli_env: CliEnv
) -> None:
    """As ``erl_call``: a temporary node never registers, so even a name epmd holds
    for another node serves it, and that registration stays untouched."""
    erl = await otp_with_epmd(f"erl{next_number()}@{HOST}")
    env = cli_env(ERL_EPMD_PORT=str(epmd.port))
    alive, port = f"taken{next_number()}", free_port()
    async with await register(alive, port, epmd_port=epmd.port):
        opts = ["--name", f"{alive}@{HOST}", "--cookie", COOKIE]
        assert await run(env, "ping", *opts, erl.name) == Completed(0, "pong\n", "")
        got = await run(env, "rpc", *opts, erl.name, "erlang", "nodes", "[hidden]")
        assert got == Completed(0, f"['{alive}@127.0.0.1']\n", "")
        info = await lookup_node(HOST, alive, epmd_port=epmd.port)
        assert info is not None and info.port == port


async def test_start_registers_with_epmd(
    otp_with_epmd: Any, epmd: LiveEpmd, cli_env: CliEnv
) -> None:
    alive = f"py{next_number()}"
    name = f"{alive}@{HOST}"
    env = cli_env(ERL_EPMD_PORT=str(epmd.port))
    argv = pyekka_argv("start", "--name", name, "--cookie", COOKIE, "--dist-interface", HOST)
    async with os_process(argv, env) as node:
        found = await node.expect(
            rf"listening on 127\.0\.0\.1:(\d+) \(registered with epmd on port {epmd.port},"
        )
        info = await lookup_node(HOST, alive, epmd_port=epmd.port)
        assert info is not None and info.port == int(found.group(1))
        erl = await otp_with_epmd(f"erl{next_number()}@{HOST}")
        assert await erl.aeval(f"net_adm:ping({q(name)})") == A("pong")
        assert await erl.aeval(f"rpc:call({q(name)}, erlang, node, [])") == A(name)
        await node.expect(rf"nodeup {re.escape(erl.name)} \(visible\)$")
        node.proc.send_signal(signal.SIGTERM)
        assert await node.wait(TIMEOUT) == 0
    assert await epmd.forgot(alive, TIMEOUT)
