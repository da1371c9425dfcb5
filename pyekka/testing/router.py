"""A :class:`~pyekka.node.router.RemoteRouter` that records instead of sending.

Give :class:`RecordingRouter` to a :class:`~pyekka.node.runtime.ProcessRuntime` to
test process code without sockets: every signal to another node is recorded as
``(kind, *args)``, ``kind`` being the router method's name. No pytest import.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pyekka.term.types import Atom, Pid, Reference

__all__ = ["RecordingRouter"]


class RecordingRouter:
    """Records every outbound signal as ``(kind, *args)`` in :attr:`calls`."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self._grew = asyncio.Event()

    def take(self) -> list[tuple]:
        """The signals recorded so far, forgotten here."""
        calls, self.calls = self.calls, []
        return calls

    async def wait_calls(self, n: int, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` signals have been recorded (``TimeoutError``)."""
        async with asyncio.timeout(timeout):
            while len(self.calls) < n:
                self._grew.clear()
                await self._grew.wait()

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        self._grew.set()

    def send(self, sender: Pid, to: Pid, msg: Any) -> None:
        self._record("send", sender, to, msg)

    def reg_send(self, sender: Pid, name: Atom, node: Atom, msg: Any) -> None:
        self._record("reg_send", sender, name, node, msg)

    def alias_send(self, sender: Pid, alias: Reference, msg: Any) -> None:
        self._record("alias_send", sender, alias, msg)

    def link(self, from_pid: Pid, to_pid: Pid) -> None:
        self._record("link", from_pid, to_pid)

    def unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        self._record("unlink", from_pid, to_pid, unlink_id)

    def unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        self._record("unlink_ack", from_pid, to_pid, unlink_id)

    def exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        self._record("exit", from_pid, to_pid, reason)

    def exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        self._record("exit2", from_pid, to_pid, reason)

    def monitor(self, watcher: Pid, target: Any, ref: Reference) -> None:
        self._record("monitor", watcher, target, ref)

    def demonitor(self, watcher: Pid, target: Any, ref: Reference) -> None:
        self._record("demonitor", watcher, target, ref)

    def monitor_exit(self, target: Any, watcher: Pid, ref: Reference, reason: Any) -> None:
        self._record("monitor_exit", target, watcher, ref, reason)

    def spawn_request(
        self,
        req_id: Reference,
        from_pid: Pid,
        group_leader: Pid,
        node: Atom,
        mfa: Any,
        args: list,
        opts: list,
    ) -> None:
        self._record("spawn_request", req_id, from_pid, group_leader, node, mfa, args, opts)
