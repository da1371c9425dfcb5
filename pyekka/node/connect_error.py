"""Why a distribution connection could not be set up, as data.

:class:`ConnectError` is what :meth:`pyekka.node.Node.connect_or_raise` raises
(and what the handshake runners and the peer resolver raise on their own); its
``reason`` is a :class:`ConnectFailure` to act on, its ``detail`` the words for a
log line or a user.
"""

from __future__ import annotations

from enum import StrEnum

from pyekka.dist.handshake import FailureKind

__all__ = ["ConnectError", "ConnectFailure", "failure_of_handshake"]


class ConnectFailure(StrEnum):
    """The reason of a :class:`ConnectError`."""

    WRONG_COOKIE = "wrong_cookie"
    """The peer has another cookie: a bad digest, or it hung up after our challenge reply."""
    NOT_ALLOWED = "not_allowed"
    """Refused for its flags or name: status ``not_allowed``, or required flags lacking."""
    SIMULTANEOUS = "simultaneous"
    """Another connection between the two nodes won (status ``nok`` and the peer never
    connected itself, or a reconnect that was given up after status ``alive``)."""
    REFUSED = "refused"
    """Nothing listens on the peer's distribution port."""
    NO_EPMD = "no_epmd"
    """The epmd on the peer's host does not answer, so its port cannot be looked up."""
    UNKNOWN_NODE = "unknown_node"
    """No port for that name: epmd does not know it, or ekka's rule gives it none."""
    UNKNOWN_HOST = "unknown_host"
    """The host part of the name does not resolve."""
    BAD_NAME = "bad_name"
    """Not a node name this node can reach (syntax, or long versus short names)."""
    TIMEOUT = "timeout"
    """No connection or no complete handshake within ``net_setuptime``."""
    UNREACHABLE = "unreachable"
    """Another socket error: no route, reset, closed during the handshake."""
    PROTOCOL_ERROR = "protocol_error"
    """The peer broke the handshake protocol (or is not an Erlang node)."""
    SHUTDOWN = "shutdown"
    """This node is stopping."""


_BY_HANDSHAKE = {
    FailureKind.PROTOCOL: ConnectFailure.PROTOCOL_ERROR,
    FailureKind.NOK: ConnectFailure.SIMULTANEOUS,
    FailureKind.NOT_ALLOWED: ConnectFailure.NOT_ALLOWED,
    FailureKind.FLAGS: ConnectFailure.NOT_ALLOWED,
    FailureKind.COOKIE: ConnectFailure.WRONG_COOKIE,
    FailureKind.ALIVE_DROPPED: ConnectFailure.SIMULTANEOUS,
}


def failure_of_handshake(kind: FailureKind) -> ConnectFailure:
    """The :class:`ConnectFailure` a failed handshake of ``kind`` stands for."""
    return _BY_HANDSHAKE[kind]


class ConnectError(Exception):
    """No connection to ``node`` (``None`` if the peer never said its name).

    ``reason`` says why, ``detail`` (also ``str()``) says it for humans.
    """

    def __init__(self, reason: ConnectFailure, detail: str, node: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.node = node

    def __str__(self) -> str:
        return self.detail
