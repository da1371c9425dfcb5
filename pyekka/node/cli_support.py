"""What the ``pyekka`` node commands do: serve a node until stopped, ping, rpc.

The command line (:mod:`pyekka.cli_node`) only parses options into a
:class:`NodeSpec` and prints; everything that runs a node is here.

* :func:`serve` runs a visible node until ``SIGINT``/``SIGTERM`` (or an event),
  reporting its name and port, then every peer coming and going.
* :func:`ping` and :func:`call` run a *temporary* node: hidden (as ``erl_call`` and
  remote shells are), so it never appears in a cluster's ``nodes()`` nor starts its
  node-up handling, and outgoing-only (``listen=False``): like ``erl_call`` it
  neither listens nor registers with epmd, so it needs no local epmd, takes no
  ekka port, and leaves nothing behind once stopped (before they return). Its
  default name is ``remsh-pyekka-<random>`` on the target's host (ekka's rule
  gives ``remsh*`` names no port: peers never try to connect back).
* :func:`explain` words a :class:`~pyekka.node.connect_error.ConnectError` for the
  command line.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

from pyekka.dist.names import EKKA_BASE_PORT, split_node
from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.node import Node
from pyekka.node.resolve import own_node_name
from pyekka.term import format_term
from pyekka.term.types import Atom

__all__ = [
    "NodeSpec",
    "call",
    "explain",
    "ping",
    "serve",
    "target_name",
    "temporary_spec",
]

Report = Callable[[str], None]

_TEMPORARY_PREFIX = "remsh-pyekka-"
_NODEUP, _NODEDOWN = Atom("nodeup"), Atom("nodedown")
_MONITOR_OPTIONS = [Atom("nodedown_reason"), (Atom("node_type"), Atom("all"))]


def _is_long_host(host: str) -> bool:
    return "." in host or ":" in host


@dataclass(frozen=True)
class NodeSpec:
    """A node as the command line describes it (``--name``/``--sname``, ...).

    ``name`` may lack ``@host`` (completed as OTP does); ``long_names`` says
    whether it was given with ``--name``. ``epmd=False`` is ``--no-epmd``;
    ``listen=False`` makes the node outgoing-only (see :class:`Node`).
    """

    name: str
    cookie: str
    long_names: bool = False
    epmd: bool = True
    dist_base_port: int = EKKA_BASE_PORT
    dist_interface: str | None = None
    net_ticktime: float = 60.0
    hidden: bool = False
    listen: bool = True
    port: int = 0  # added for `pyekka start -c` (node.dist_port): the port with epmd

    def node(self) -> Node:
        """A (not yet started) :class:`Node` with these settings."""
        return Node(
            self.name,
            self.cookie,
            long_names=self.long_names,
            hidden=self.hidden,
            epmd=self.epmd,
            listen=self.listen,
            port=self.port,
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
    """``spec`` made hidden and outgoing-only; without ``name_given``, named
    ``remsh-pyekka-<random>@`` the target's host, with long names if that host is
    long (has a dot, or is IPv6)."""
    if name_given:
        return replace(spec, hidden=True, listen=False)
    host = target.split("@", 1)[1]
    name = f"{_TEMPORARY_PREFIX}{secrets.token_hex(6)}@{host}"
    return replace(spec, name=name, long_names=_is_long_host(host), hidden=True, listen=False)


def explain(error: ConnectError) -> str:
    """One line for a user: why no connection to ``error.node`` could be made."""
    target = error.node or "the peer"
    if error.reason is ConnectFailure.WRONG_COOKIE:
        return f"connection to {target} refused: wrong cookie? ({error.detail})"
    if error.reason is ConnectFailure.NOT_ALLOWED:
        return f"connection to {target} refused: not allowed ({error.detail})"
    return f"cannot connect to {target}: {error.detail}"


async def ping(spec: NodeSpec, target: str, *, timeout: float | None = 30.0) -> bool:
    """``net_adm:ping(Target) =:= pong`` from a node started with ``spec`` for the call.

    Raises :class:`~pyekka.node.connect_error.ConnectError` (reason ``no_epmd``)
    when the target's port cannot even be looked up: that is no answer of the target.
    """
    async with spec.node() as node:
        try:
            await node.connect_or_raise(target)
        except ConnectError as exc:
            if exc.reason is ConnectFailure.NO_EPMD:
                raise
            return False
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
    :class:`~pyekka.node.connect_error.ConnectError` when no connection can be made."""
    async with spec.node() as node:
        await node.connect_or_raise(target)
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
    attach: Callable[[Node], AbstractAsyncContextManager[Any]] | None = None,
) -> None:
    """Run a node until one of ``stop_signals`` arrives (or ``stop`` is set).

    ``report`` gets a first line with the node's name and listening port, one line
    per peer coming (``nodeup NAME (visible|hidden)``) and going (``nodedown NAME
    (kind, reason)``), and ``node NAME stopped`` once everything is closed.
    ``attach(node)``, if given, is entered once the node has started and exited
    before it stops (``pyekka start`` runs the cluster member in it).
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
            async with AsyncExitStack() as attached:
                if attach is not None:
                    await attached.enter_async_context(attach(node))
                await stop.wait()
        finally:
            await node.stop()
        report(f"node {node.name.name} stopped")
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
