"""Child processes for asyncio tests: started in a session of their own, always ended.

* :func:`os_process` runs a long-lived child (a daemon, a VM, ``pyekka start``)
  whose merged output is collected line by line; :meth:`OsProcess.expect` waits
  for a line (an event, never a sleep) and :meth:`OsProcess.kill` ends the whole
  session.
* :func:`run_process` runs a command to completion (killed with its session if it
  hangs) and returns its status and outputs.
* :func:`free_port` is a TCP port that was free a moment ago.

POSIX only (sessions and process groups). No pytest import.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_TIMEOUT",
    "Completed",
    "OsProcess",
    "free_port",
    "os_process",
    "run_process",
]

#: How long helpers wait for a child (seconds) unless told otherwise.
DEFAULT_TIMEOUT = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def _spawn(
    argv: Sequence[str], env: Mapping[str, str], *, stdin: int, merge_stderr: bool
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )


async def _end_session(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's whole session (if it still runs) and reap the child."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


class OsProcess:
    """A child in its own session; its merged output is collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process, argv: Sequence[str]) -> None:
        self.proc = proc
        self.argv = list(argv)
        self.lines: list[str] = []
        self._grew = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, argv: Sequence[str], env: Mapping[str, str]) -> OsProcess:
        """Start ``argv`` with exactly the environment ``env``."""
        proc = await _spawn(argv, env, stdin=asyncio.subprocess.PIPE, merge_stderr=True)
        return cls(proc, argv)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            async with self._grew:
                self.lines.append(line.decode(errors="replace").rstrip("\r\n"))
                self._grew.notify_all()
        async with self._grew:
            self._grew.notify_all()

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    async def expect(
        self, pattern: str, after: int = 0, timeout: float = DEFAULT_TIMEOUT
    ) -> re.Match:
        """The first output line from index ``after`` on that matches ``pattern``
        (``AssertionError`` with the output if none comes in time)."""
        regex = re.compile(pattern)
        found: list[re.Match] = []

        def seen() -> bool:
            for line in self.lines[after:]:
                if match := regex.search(line):
                    found.append(match)
                    return True
            return self._reader.done()

        try:
            async with asyncio.timeout(timeout), self._grew:
                await self._grew.wait_for(seen)
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} from {self.argv[0]}:\n{self.output}") from None
        if not found:
            raise AssertionError(f"{self.argv[0]} ended without {pattern!r}:\n{self.output}")
        return found[0]

    async def send_line(self, text: str) -> None:
        """Write ``text`` and a newline to the child's standard input."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def wait(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """The exit status, once the child has ended and all its output is read."""
        async with asyncio.timeout(timeout):
            status = await self.proc.wait()
            await self._reader
        return status

    async def kill(self) -> None:
        """SIGKILL the whole session and reap it."""
        await _end_session(self.proc)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        await self._reader


@contextlib.asynccontextmanager
async def os_process(argv: Sequence[str], env: Mapping[str, str]) -> AsyncIterator[OsProcess]:
    """:class:`OsProcess` for the ``async with`` block; killed when it ends."""
    proc = await OsProcess.start(argv, env)
    try:
        yield proc
    finally:
        await proc.kill()


@dataclass
class Completed:
    """How a command run by :func:`run_process` ended."""

    status: int
    out: str
    err: str


async def run_process(
    argv: Sequence[str], env: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> Completed:
    """Run ``argv`` to completion without standard input (killed with its session
    if it takes longer than ``timeout``)."""
    proc = await _spawn(argv, env, stdin=asyncio.subprocess.DEVNULL, merge_stderr=False)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        await _end_session(proc)
    return Completed(proc.returncode or 0, out.decode(), err.decode())
