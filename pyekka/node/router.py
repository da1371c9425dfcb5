"""The seam between the process runtime and the distribution connections.

Outbound, the runtime calls a :class:`RemoteRouter` for every signal whose target
lives on another node. Inbound, the connection layer calls the runtime's entry
points (``deliver``, ``remote_link``, ``node_down`` ... see
:class:`~pyekka.node.runtime.ProcessRuntime`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pyekka.term.types import Atom, Pid, Reference

__all__ = ["RemoteRouter", "RemoteTarget", "UnreachableRouter"]

RemoteTarget = Pid | tuple[Atom, Atom]
"""A monitored remote process: its pid, or ``(name, node)`` when monitored by name."""


class RemoteRouter(Protocol):
    """Carries signals to processes on other nodes (the connection layer implements it).

    Contract:

    * Methods are called on the event loop's thread and must not block or await:
      they queue the control message (connecting first if need be) and return.
    * Signals from one sender to one receiver must go out in call order: that is
      Erlang's ordering guarantee.
    * When the node cannot be reached (or the connection is lost) the signals are
      dropped and the router calls ``runtime.node_down(node, reason)`` (later, not
      from inside the call), which fires ``noconnection`` for the links and
      monitors that were set up towards that node.
    """

    def send(self, sender: Pid, to: Pid, msg: Any) -> None:
        """``SEND_SENDER`` (or ``SEND``): ``msg`` to the process ``to``."""

    def reg_send(self, sender: Pid, name: Atom, node: Atom, msg: Any) -> None:
        """``REG_SEND``: ``msg`` to the process registered as ``name`` on ``node``."""

    def alias_send(self, sender: Pid, alias: Reference, msg: Any) -> None:
        """``ALIAS_SEND``: ``msg`` to the process alias ``alias`` (node: ``alias.node``)."""

    def link(self, from_pid: Pid, to_pid: Pid) -> None:
        """``LINK``: ``from_pid`` set up a link to ``to_pid``."""

    def unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """``UNLINK_ID``: ``from_pid`` removes its link to ``to_pid``.

        A peer without ``DFLAG_UNLINK_ID`` (pre OTP 26) gets the old ``UNLINK`` and
        the router then acknowledges on its behalf with ``remote_unlink_ack``.
        """

    def unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """``UNLINK_ID_ACK``: ``from_pid`` acknowledges the ``UNLINK_ID`` of ``to_pid``."""

    def exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """``EXIT`` (or ``PAYLOAD_EXIT``): the link ``from_pid``-``to_pid`` broke with
        ``reason`` (``from_pid`` ended, or it does not exist: ``noproc``)."""

    def exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """``EXIT2`` (or ``PAYLOAD_EXIT2``): ``exit(to_pid, reason)`` called by ``from_pid``."""

    def monitor(self, watcher: Pid, target: RemoteTarget, ref: Reference) -> None:
        """``MONITOR_P``: ``watcher`` monitors ``target`` with reference ``ref``."""

    def demonitor(self, watcher: Pid, target: RemoteTarget, ref: Reference) -> None:
        """``DEMONITOR_P``: ``watcher`` drops the monitor ``ref`` of ``target``."""

    def monitor_exit(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        """``MONITOR_P_EXIT`` (or its ``PAYLOAD_`` form): the local process ``target``
        (its name if it was monitored by name) watched by the remote ``watcher``
        ended with ``reason`` (``noproc`` if it did not exist)."""

    def spawn_request(
        self,
        req_id: Reference,
        from_pid: Pid,
        group_leader: Pid,
        node: Atom,
        mfa: tuple[Atom, Atom, int],
        args: list,
        opts: list,
    ) -> None:
        """``SPAWN_REQUEST``: ask ``node`` to spawn ``apply(M, F, args)``.

        The peer answers with ``SPAWN_REPLY``, given to ``runtime.remote_spawn_reply``.
        A node without ``DFLAG_SPAWN`` gets nothing: the router answers on its
        behalf with the error ``notsup``.
        """


class UnreachableRouter:
    """The router of a runtime with no distribution: no other node is reachable.

    Messages to remote processes are dropped; links and monitors towards a remote
    node fire ``noconnection`` soon after they are set up, as on an OTP node that
    cannot connect.
    """

    def __init__(self, on_unreachable: Callable[[Atom], None]) -> None:
        self._on_unreachable = on_unreachable

    def send(self, sender: Pid, to: Pid, msg: Any) -> None:
        """Dropped."""

    def reg_send(self, sender: Pid, name: Atom, node: Atom, msg: Any) -> None:
        """Dropped."""

    def alias_send(self, sender: Pid, alias: Reference, msg: Any) -> None:
        """Dropped."""

    def link(self, from_pid: Pid, to_pid: Pid) -> None:
        """The node is unreachable: the link breaks with ``noconnection``."""
        self._on_unreachable(to_pid.node)

    def unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """The node is unreachable: the link is cleaned up with the node."""
        self._on_unreachable(to_pid.node)

    def unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """Dropped."""

    def exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """Dropped."""

    def exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """Dropped."""

    def monitor(self, watcher: Pid, target: RemoteTarget, ref: Reference) -> None:
        """The node is unreachable: the monitor fires ``noconnection``."""
        self._on_unreachable(target.node if type(target) is Pid else target[1])

    def demonitor(self, watcher: Pid, target: RemoteTarget, ref: Reference) -> None:
        """Dropped."""

    def monitor_exit(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        """Dropped."""

    def spawn_request(
        self,
        req_id: Reference,
        from_pid: Pid,
        group_leader: Pid,
        node: Atom,
        mfa: tuple[Atom, Atom, int],
        args: list,
        opts: list,
    ) -> None:
        """The node is unreachable: the request fails with ``noconnection``."""
        self._on_unreachable(node)
