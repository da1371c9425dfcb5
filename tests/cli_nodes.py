"""Running the ``pyekka`` command line in tests: a plugin of ``tests/conftest.py``.

* ``cli_env`` (fixture): the environment of a ``pyekka`` subprocess.
* :func:`run` runs ``pyekka ARGS`` to completion; :func:`pyekka_argv` is the
  command line for a long-running one (``pyekka start``, with
  :func:`~pyekka.testing.processes.os_process`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pyekka.testing.epmd import otp_env
from pyekka.testing.processes import Completed, run_process

__all__ = ["TIMEOUT", "CliEnv", "Completed", "cli_env", "pyekka_argv", "q", "run"]

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0

CliEnv = Callable[..., dict[str, str]]


@pytest.fixture
def cli_env(tmp_path: Path) -> CliEnv:
    """The environment of a ``pyekka`` subprocess: this repository's package, a
    ``HOME`` of its own (no cookie file written to the real one), no ``ERL_EPMD_PORT``
    unless given."""

    def env(**extra: str) -> dict[str, str]:
        environ = otp_env()
        path = environ.get("PYTHONPATH")
        environ["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
        environ["HOME"] = str(tmp_path)
        environ.update(extra)
        return environ

    return env


def pyekka_argv(*args: str) -> list[str]:
    """The command line of ``python -m pyekka ARGS``."""
    return [sys.executable, "-m", "pyekka", *args]


async def run(env: dict[str, str], *args: str) -> Completed:
    """Run ``pyekka ARGS`` to completion (killed with its session if it hangs)."""
    return await run_process(pyekka_argv(*args), env, timeout=TIMEOUT)


def q(name: str) -> str:
    """A node name as an Erlang atom literal."""
    return f"'{name}'"
