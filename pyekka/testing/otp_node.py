"""Live distributed OTP nodes for tests, controlled through ``pyekka_ctl``.

:class:`OtpNode` starts ``erl -noshell`` with a node name and cookie, loads the
``erl_interop`` beams and runs ``pyekka_ctl``, which evaluates Erlang expressions
sent on the VM's standard input and prints the results on its standard output.
Control therefore never goes through the Erlang distribution under test, so a
test can ask a VM what it saw even when the distribution misbehaves.

The VM runs in its own session and is killed with its whole process group by
:meth:`OtpNode.close` (it also halts by itself when its standard input closes).

:func:`epmd_less_args` are the ``erl`` arguments of an epmd-less node that follows
ekka's port rule, with ``erl_interop``'s ``pyekka_dist`` and ``pyekka_epmd``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pyekka.term import binary_to_term
from pyekka.term.types import Atom
from pyekka.testing.otp import OtpError, OtpRuntime, clean_env

__all__ = ["OtpEvalError", "OtpNode", "epmd_less_args"]

_PREFIX = "PYEKKA_CTL "
_READY = "ready"


def epmd_less_args(base_port: int, interface: str = "127.0.0.1") -> list[str]:
    """``erl`` arguments for epmd-less distribution with ekka's port rule: no epmd,
    port ``base_port`` + the name's trailing digits, bound to the IPv4 ``interface``
    (the ``erl_interop`` beams must be on the code path)."""
    address = "{" + interface.replace(".", ",") + "}"
    return [
        "-proto_dist",
        "pyekka",
        "-start_epmd",
        "false",
        "-epmd_module",
        "pyekka_epmd",
        "-kernel",
        "inet_dist_base_port",
        str(base_port),
        "-kernel",
        "inet_dist_use_interface",
        address,
    ]


class OtpEvalError(OtpError):
    """The expressions raised in the VM: ``cls`` and ``reason`` as Erlang saw them."""

    def __init__(self, cls: Any, reason: Any, text: str) -> None:
        super().__init__(f"{text!r} raised {cls}:{reason!r}")
        self.cls = cls
        self.reason = reason


class OtpNode:
    """One VM started with ``-name``/``-sname`` ``name`` and ``cookie``.

    ``args`` are extra ``erl`` arguments (e.g. ``-proto_dist``, ``-kernel ...``);
    ``env`` extra environment variables (e.g. ``ERL_EPMD_PORT``).
    """

    def __init__(
        self,
        runtime: OtpRuntime,
        ebin: Path,
        name: str,
        cookie: str,
        *,
        long_names: bool = True,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.atom = Atom(name)
        self.cookie = cookie
        self.output: list[str] = []
        self._answers: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._eof = False
        environ = clean_env()
        environ.update(env or {})
        argv = runtime.command(
            "-noshell",
            "-pa",
            str(ebin),
            "-name" if long_names else "-sname",
            name,
            "-setcookie",
            cookie,
            *args,
            "-s",
            "pyekka_ctl",
            "main",
        )
        argv.remove("-noinput")  # pyekka_ctl reads its standard input
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._wait(_READY, start_timeout)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<OtpNode {self.name} ({self.runtime.name})>"

    @property
    def os_pid(self) -> int | None:
        """The OS process id of the VM (``None`` once closed)."""
        return None if self._proc is None else self._proc.pid

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                if line.startswith(_PREFIX):
                    parts = line[len(_PREFIX) :].split(" ")
                    value = bytes.fromhex(parts[1]) if len(parts) == 2 else b""
                    self._answers[parts[0]] = value
                    self._cond.notify_all()
                else:
                    self.output.append(line)
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _wait(self, key: str, timeout: float) -> bytes:
        with self._cond:
            done = self._cond.wait_for(lambda: key in self._answers or self._eof, timeout)
            if key in self._answers:
                return self._answers.pop(key)
        tail = "\n".join(self.output[-30:])
        if not done:
            raise OtpError(f"{self}: no answer within {timeout} s; output:\n{tail}")
        raise OtpError(f"{self}: the VM exited; output:\n{tail}")

    def eval(self, text: str, timeout: float = 30.0) -> Any:
        """Evaluate Erlang expressions (``"A = 1, A + 1"``; no final dot) in a new
        process of the VM; their value. Raises :class:`OtpEvalError`."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise OtpError(f"{self} is closed")
        key = str(next(self._ids))
        body = text.rstrip().rstrip(".") + "."
        proc.stdin.write(f"{key} {body.encode('utf-8').hex()}\n".encode())
        proc.stdin.flush()
        result = binary_to_term(self._wait(key, timeout))
        if result[0] == Atom("ok"):
            return result[1]
        cls, reason = result[1]
        raise OtpEvalError(cls, reason, text)

    async def aeval(self, text: str, timeout: float = 30.0) -> Any:
        """:meth:`eval` without blocking the event loop (the VM may need it)."""
        return await asyncio.get_running_loop().run_in_executor(None, self.eval, text, timeout)

    def log_events(self) -> list[tuple[Atom, str]]:
        """Warnings and errors the VM logged: ``[(level, text)]``."""
        return [(level, text.decode()) for level, text in self.eval("pyekka_ctl:log_events()")]

    def close(self) -> None:
        """Stop the VM: close its standard input, then kill its process group."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
