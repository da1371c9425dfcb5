"""EPMDs and epmd-registered OTP nodes for tests, all on 127.0.0.1.

* :func:`real_epmd` runs OTP's own ``epmd`` daemon on a free port,
  :func:`embedded_epmd` pyekka's :class:`~pyekka.node.epmd.EpmdServer`, and
  :func:`live_epmd` either one, as a :class:`LiveEpmd`.
* :func:`run_epmd_cli` runs ``epmd -port P ARGS`` as a client (``-names``, ``-kill``).
* :func:`ping_node` runs a plain OTP node registered with a given epmd, which pings
  the nodes named on its standard input (:meth:`PingNode.ping`).
* :func:`otp_env` is the environment for such children: :func:`clean_env` without
  ``ERL_EPMD_PORT``, so that each child names its epmd explicitly.

No test ever touches the default epmd port 4369. No pytest import.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyekka.node.epmd import ENV_EPMD_PORT, EpmdServer, lookup_node
from pyekka.testing.otp import OtpRuntime, clean_env
from pyekka.testing.processes import DEFAULT_TIMEOUT, OsProcess, free_port, os_process

__all__ = [
    "HOST",
    "LiveEpmd",
    "PingNode",
    "embedded_epmd",
    "epmd_binary",
    "live_epmd",
    "otp_env",
    "ping_node",
    "real_epmd",
    "run_epmd_cli",
]

HOST = "127.0.0.1"


def otp_env(**extra: str) -> dict[str, str]:
    """:func:`~pyekka.testing.otp.clean_env` without ``ERL_EPMD_PORT``, plus ``extra``."""
    env = clean_env()
    env.pop(ENV_EPMD_PORT, None)
    env.update(extra)
    return env


def epmd_binary(runtime: OtpRuntime) -> Path:
    """The ``epmd`` executable of an OTP runtime."""
    return runtime.info.root / "bin" / "epmd"


@dataclass
class LiveEpmd:
    """One epmd under test, listening on ``port``: pyekka's ``server`` or OTP's
    daemon running as ``process``."""

    port: int
    server: EpmdServer | None = None
    process: OsProcess | None = None

    async def stop(self) -> None:
        """Stop it (a daemon is killed)."""
        if self.server is not None:
            await self.server.close()
        if self.process is not None:
            await self.process.kill()

    async def forgot(self, alive: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """Whether ``alive`` is not registered (waits for an embedded server to see
        a node go; OTP's daemon has forgotten it once its registration is closed)."""
        if self.server is not None:
            await self.server.wait_unregistered(alive, timeout)
        return await lookup_node(HOST, alive, epmd_port=self.port) is None


@contextlib.asynccontextmanager
async def real_epmd(runtime: OtpRuntime, port: int | None = None) -> AsyncIterator[LiveEpmd]:
    """OTP's ``epmd`` in the foreground on 127.0.0.1 (``-d -d`` says when it listens)."""
    port = free_port(HOST) if port is None else port
    argv = [str(epmd_binary(runtime)), "-d", "-d", "-address", HOST, "-port", str(port)]
    async with os_process(argv, otp_env()) as proc:
        await proc.expect("entering the main select")
        yield LiveEpmd(port, process=proc)


@contextlib.asynccontextmanager
async def embedded_epmd(**options: Any) -> AsyncIterator[EpmdServer]:
    """pyekka's :class:`EpmdServer` (with ``options``) on a free port of 127.0.0.1."""
    server = EpmdServer(**options)
    await server.start(HOST, 0)
    try:
        yield server
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def live_epmd(runtime: OtpRuntime | None) -> AsyncIterator[LiveEpmd]:
    """OTP's epmd of ``runtime``, or with ``None`` the embedded server."""
    if runtime is None:
        async with embedded_epmd() as server:
            yield LiveEpmd(server.port, server=server)
    else:
        async with real_epmd(runtime) as epmd:
            yield epmd


async def run_epmd_cli(runtime: OtpRuntime, port: int, *args: str) -> tuple[int, str]:
    """Run OTP's ``epmd -port PORT ARGS`` as a client; ``(exit status, output)``."""
    argv = [str(epmd_binary(runtime)), "-port", str(port), *args]
    async with os_process(argv, otp_env()) as proc:
        status = await proc.wait()
        return status, proc.output


_PING_LOOP = (
    'Loop = fun L() -> case io:get_line("") of eof -> halt(); Line -> '
    "N = list_to_atom(string:trim(Line)), "
    'io:format("PING ~s ~p~n", [N, net_adm:ping(N)]), L() end end, '
    "spawn(fun() -> Loop() end), "
    'io:format("READY ~s ~p~n", [node(), erlang:system_info(creation)])'
)


@dataclass
class PingNode:
    """A live OTP node started by :func:`ping_node`."""

    name: str
    process: OsProcess
    creation: int

    async def ping(self, node: str) -> str:
        """``net_adm:ping(Node)`` in the VM: ``"pong"`` or ``"pang"``."""
        mark = len(self.process.lines)
        await self.process.send_line(node)
        match = await self.process.expect(rf"^PING {re.escape(node)} (\w+)$", after=mark)
        return match.group(1)


@contextlib.asynccontextmanager
async def ping_node(
    runtime: OtpRuntime,
    name: str,
    epmd_port: int,
    *args: str,
    cookie: str,
    name_flag: str = "-sname",
) -> AsyncIterator[PingNode]:
    """An OTP node named ``name`` whose epmd is at ``epmd_port`` (``ERL_EPMD_PORT``),
    distribution on 127.0.0.1; ``args`` are extra ``erl`` arguments."""
    argv = [
        str(runtime.erl),
        "-noshell",
        name_flag,
        name,
        "-setcookie",
        cookie,
        "-start_epmd",
        "false",
        "-kernel",
        "inet_dist_use_interface",
        "{127,0,0,1}",
        *args,
        "-eval",
        _PING_LOOP,
    ]
    async with os_process(argv, otp_env(**{ENV_EPMD_PORT: str(epmd_port)})) as proc:
        match = await proc.expect(r"^READY (\S+) (\d+)$")
        if match.group(1) != name:
            raise AssertionError(f"the node runs as {match.group(1)}, not {name}")
        yield PingNode(name, proc, int(match.group(2)))
