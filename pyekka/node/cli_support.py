"""What the ``pyekka`` node commands do: serve a node until stopped, ping, rpc.

The command line (:mod:`pyekka.cli_node`) only parses options into a
:class:`NodeSpec` and prints; everything that runs a node is here.

* :func:`serve` runs a visible node until ``SIGINT``/``SIGTERM`` (or an event),
  reporting its name and port, then every peer coming and going.
* :func:`ping` and :func:`call` run a *temporary* node: hidden (as ``erl_call`` and
  remote shells are), so it never appears in a cluster's ``nodes()`` nor starts its
  node-up handling, and stopped (connections closed, epmd entry removed) before
  they return. Its default name is ``remsh-pyekka-<random>`` on the target's host:
  ekka's epmd-less rule gives ``remsh*`` names no port, so peers never try to
  connect back, and the node listens on a port of its own choosing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from pyekka.dist.names import EKKA_BASE_PORT, split_node
from pyekka.node.node import Node
from pyekka.node.resolve import own_node_name
from pyekka.term import format_term
from pyekka.term.types import Atom

__all__ = [
    "ConnectFailed",
    "NodeSpec",
    "call",
    "connect_or_raise",
    "ping",
    "serve",
    "target_name",
    "temporary_spec",
]

Report = Callable[[str], None]

#: Messages of the node layer (logger ``pyekka.node.dist``) for a failed connection.
_DIST_LOGGER = "pyekka.node.dist"
_CONNECT_FAILED = "cannot connect to %s: %s"
_TEMPORARY_PREFIX = "remsh-pyekka-"
_NODEUP, _NODEDOWN = Atom("nodeup"), Atom("nodedown")
_MONITOR_OPTIONS = [Atom("nodedown_reason"), (Atom("node_type"), Atom("all"))]


def _is_long_host(host: str) -> bool:
    return "." in host or ":" in host


@dataclass(frozen=True)
class NodeSpec:
    """A node as the command line describes it (``--name``/``--sname``, ...).

    ``name`` may lack ``@host`` (completed as OTP does); ``long_names`` says
    whether it was given with ``--name``. ``epmd=False`` is ``--no-epmd``.
    """

    name: str
    cookie: str
    long_names: bool = False
    epmd: bool = True
    dist_base_port: int = EKKA_BASE_PORT
    dist_interface: str | None = None
    net_ticktime: float = 60.0
    hidden: bool = False

    def node(self) -> Node:
        """A (not yet started) :class:`Node` with these settings."""
        return Node(
            self.name,
            self.cookie,
            long_names=self.long_names,
            hidden=self.hidden,
            epmd=self.epmd,
            dist_base_port=self.dist_base_port,
            dist_interface=self.dist_interface,
            net_ticktime=self.net_ticktime,
        )


def target_name(target: str, *, long_names: bool) -> str:
    """A peer's full name: ``alive`` alone is completed with this host, as ``erl_call``
    completes ``-sname``/``-name`` (``ValueError`` for an invalid name)."""
    if "@" not in target:
        return own_node_name(target, long_names=long_names)
    split_node(target)
    return target


def temporary_spec(spec: NodeSpec, target: str, *, name_given: bool) -> NodeSpec:
    """``spec`` made hidden; without ``name_given``, named ``remsh-pyekka-<random>@``
    the target's host, with long names if that host is long (has a dot, or is IPv6)."""
    if name_given:
        return replace(spec, hidden=True)
    host = target.split("@", 1)[1]
    name = f"{_TEMPORARY_PREFIX}{secrets.token_hex(6)}@{host}"
    return replace(spec, name=name, long_names=_is_long_host(host), hidden=True)


class ConnectFailed(Exception):
    """A node could not connect to ``target``; ``reason`` is what the node layer said."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(target, reason)
        self.target = target
        self.reason = reason

    @property
    def refused(self) -> bool:
        """Whether the peer refused the handshake, most likely for the cookie."""
        return "cookie" in self.reason

    def __str__(self) -> str:
        if self.refused:
            return f"connection to {self.target} refused: wrong cookie? ({self.reason})"
        return f"cannot connect to {self.target}: {self.reason}"


@contextlib.contextmanager
def _connect_failures(target: str) -> Iterator[list[str]]:
    """Collects the reasons the node layer logs for failed connections to ``target``."""
    reasons: list[str] = []
    handler = logging.Handler(logging.DEBUG)

    def emit(record: logging.LogRecord) -> None:
        args = record.args
        if record.msg == _CONNECT_FAILED and isinstance(args, tuple) and args[:1] == (target,):
            reasons.append(str(args[1]))

    handler.emit = emit  # type: ignore[method-assign]
    logger = logging.getLogger(_DIST_LOGGER)
    logger.addHandler(handler)
    try:
        yield reasons
    finally:
        logger.removeHandler(handler)


async def connect_or_raise(node: Node, target: str) -> None:
    """Connect ``node`` to ``target``, or raise :class:`ConnectFailed` saying why.

    The reason comes from the node layer's log records, which must reach the
    ``pyekka.node.dist`` logger (its effective level at most ``WARNING``).
    """
    with _connect_failures(target) as reasons:
        if await node.connect(target):
            return
    raise ConnectFailed(target, reasons[-1] if reasons else "the connection could not be set up")


async def ping(spec: NodeSpec, target: str, *, timeout: float | None = 30.0) -> bool:
    """``net_adm:ping(Target) =:= pong`` from a node started with ``spec`` for the call."""
    async with spec.node() as node:
        return await node.ping(target, timeout)


async def call(
    spec: NodeSpec,
    target: str,
    module: str,
    function: str,
    args: list,
    *,
    timeout: float | None = 30.0,
) -> Any:
    """``rpc:call(Target, Module, Function, Args, Timeout)`` from a node started with
    ``spec`` for the call: the result or ``{badrpc, Reason}``; raises
    :class:`ConnectFailed` when no connection can be made."""
    async with spec.node() as node:
        await connect_or_raise(node, target)
        return await node.rpc(target, module, function, args, timeout)


def _describe(msg: Any) -> str | None:
    if type(msg) is not tuple or len(msg) != 3 or msg[0] not in (_NODEUP, _NODEDOWN):
        return None
    tag, peer, info = msg
    details = dict(info)
    kind = details.get(Atom("node_type"), Atom("visible"))
    text = f"{tag.name} {peer.name} ({kind.name}"
    if tag == _NODEDOWN:
        text += f", {format_term(details.get(Atom('nodedown_reason')))}"
    return text + ")"


async def _watch_peers(proc: Any, report: Report) -> None:
    proc.monitor_nodes(True, _MONITOR_OPTIONS)
    while True:
        line = _describe(await proc.receive())
        if line is not None:
            report(line)


def _listening(node: Node) -> str:
    where = f"{node.settings.interface or '*'}:{node.port}"
    if node.use_epmd:
        how = f"registered with epmd on port {node.epmd_port}"
    else:
        how = f"epmd-less, ekka port rule with base {node.dist_base_port}"
    return f"node {node.name.name} listening on {where} ({how}, creation {node.creation})"


async def serve(
    spec: NodeSpec,
    report: Report,
    *,
    stop: asyncio.Event | None = None,
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Run a node until one of ``stop_signals`` arrives (or ``stop`` is set).

    ``report`` gets a first line with the node's name and listening port, one line
    per peer coming (``nodeup NAME (visible|hidden)``) and going (``nodedown NAME
    (kind, reason)``), and ``node NAME stopped`` once everything is closed.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in stop_signals:
        loop.add_signal_handler(sig, stop.set)
        installed.append(sig)
    try:
        node = spec.node()
        await node.start()
        try:
            node.spawn(_watch_peers, report)
            report(_listening(node))
            await stop.wait()
        finally:
            await node.stop()
        report(f"node {node.name.name} stopped")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
