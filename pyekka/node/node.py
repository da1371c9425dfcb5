"""The public :class:`Node`: a Python process that real Erlang nodes accept as a peer.

::

    async with Node("py@127.0.0.1", "secret", epmd=False) as node:
        node.register_function("demo", "add", lambda a, b: a + b)
        await node.ping("erl1@127.0.0.1")                      # True
        await node.rpc("erl1@127.0.0.1", "erlang", "node", [])  # Atom('erl1@127.0.0.1')

A node listens for distribution connections, registers with EPMD (or, with
``epmd=False``, follows ekka's port rule: port = ``dist_base_port`` + the trailing
digits of the short name), unless it is made outgoing-only with ``listen=False``,
and runs the services OTP peers expect:
``net_kernel`` (ping), ``rex`` (classic rpc), spawn requests (``erpc``/``rpc`` of
OTP 23+) against the Python functions registered with :meth:`Node.register_function`,
and, out of the box, ``erlang:node/0``, ``erlang:nodes/0,1`` and ``erlang:is_alive/0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from pyekka.dist import flags as df
from pyekka.dist.framing import DEFAULT_MAX_FRAME_SIZE
from pyekka.dist.handshake import LocalNode
from pyekka.dist.names import EKKA_BASE_PORT
from pyekka.node import epmd
from pyekka.node.connection import DistSettings
from pyekka.node.distribution import Distribution
from pyekka.node.epmd import configured_epmd_port
from pyekka.node.exits import BadArg, CallError, ProcessExit, crash_reason
from pyekka.node.functions import FunctionRegistry, as_atom
from pyekka.node.gen_server import call as gen_call
from pyekka.node.global_server import GLOBAL_NAME_SERVER, GlobalServer
from pyekka.node.process import Process, ProcessFn
from pyekka.node.resolve import PeerResolver, own_node_name
from pyekka.node.rpc import erpc_call, rpc_call
from pyekka.node.runtime import ProcessRuntime
from pyekka.node.services import start_services
from pyekka.node.spawn import SpawnService
from pyekka.term.types import Atom

__all__ = ["Node"]

log = logging.getLogger("pyekka.node")

NET_KERNEL = Atom("net_kernel")
IS_AUTH = Atom("is_auth")
YES = Atom("yes")
ERLANG = Atom("erlang")
_NODE_KINDS = {"visible", "hidden", "connected", "this", "known"}


def _is_long(host: str) -> bool:
    return "." in host or ":" in host


class Node:
    """A distributed Erlang node in Python; use as ``async with Node(...) as node``.

    ``name`` is ``alive@host``, or a bare ``alive`` completed with this machine's
    host name; ``long_names`` (default: a host with a dot or an IPv6 colon) says
    whether it is a ``-name`` or an ``-sname`` node, which also decides which peer
    names it can reach.
    ``hidden`` connects as a hidden node (as ``erl -hidden``, ``erl_call`` and
    remote shells do). ``epmd=False`` selects ekka's epmd-less port rule with
    ``dist_base_port``; otherwise the node registers with the EPMD on
    ``epmd_port`` (``ERL_EPMD_PORT`` or 4369) and listens on ``port`` (0: any).
    ``dist_interface`` binds the listening and the outgoing sockets to that
    address. ``listen=False`` makes an outgoing-only node, as ``erl_call`` is: it
    neither listens nor registers with EPMD (nor takes its ekka port), so it needs
    no local EPMD, but no peer can connect to it; it suits hidden temporary nodes,
    whose peers never connect back. Its creation is random, as in epmd-less mode.
    ``net_ticktime`` (seconds) and ``handshake_timeout`` (OTP's
    ``net_setuptime``) are OTP's settings; ``max_frame_size`` bounds one frame
    from a peer (bigger ones drop the connection). ``global_sync`` runs the
    ``global_name_server`` OTP's ``global`` expects of a visible node (see
    :mod:`pyekka.node.global_server`).
    """

    def __init__(
        self,
        name: str,
        cookie: str,
        *,
        hidden: bool = False,
        epmd: bool = True,
        listen: bool = True,
        dist_base_port: int = EKKA_BASE_PORT,
        port: int = 0,
        dist_interface: str | None = None,
        net_ticktime: float = 60.0,
        handshake_timeout: float = 7.0,
        epmd_port: int | None = None,
        long_names: bool | None = None,
        creation: int | None = None,
        flags: int | None = None,
        global_sync: bool = True,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        if long_names is None:
            long_names = "@" in name and _is_long(name.split("@", 1)[1])
        self.long_names = long_names
        self.name = Atom(own_node_name(name, long_names=long_names))
        self.cookie = cookie
        self.hidden = hidden
        self.use_epmd = epmd
        self.listens = listen
        self.dist_base_port = dist_base_port
        self.epmd_port = epmd_port if epmd_port is not None else configured_epmd_port()
        self.settings = DistSettings(
            net_ticktime=net_ticktime,
            handshake_timeout=handshake_timeout,
            max_frame_size=max_frame_size,
            interface=dist_interface,
        )
        self.global_sync = global_sync and not hidden
        self.global_server: GlobalServer | None = None
        self._resolver = PeerResolver(
            long_names=self.long_names,
            use_epmd=epmd,
            dist_base_port=dist_base_port,
            epmd_port=self.epmd_port,
            timeout=handshake_timeout,
        )
        self._wanted_port = port
        self._wanted_creation = creation
        base_flags = df.DEFAULT_FLAGS | df.HEADER_FLAGS if flags is None else flags
        self.flags = base_flags & ~df.DFlag.PUBLISHED if hidden else base_flags
        self.functions = FunctionRegistry()
        self._register_defaults()
        self.port = 0
        self.creation = 0
        self._runtime: ProcessRuntime | None = None
        self._dist: Distribution | None = None
        self._registration: Any = None
        self._started = False

    def __repr__(self) -> str:
        return f"<Node {self.name.name} {'up' if self._started else 'down'}>"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def runtime(self) -> ProcessRuntime:
        """The process runtime (after :meth:`start`)."""
        if self._runtime is None:
            raise RuntimeError("the node is not started")
        return self._runtime

    @property
    def distribution(self) -> Distribution:
        """The connection table (after :meth:`start`)."""
        if self._dist is None:
            raise RuntimeError("the node is not started")
        return self._dist

    async def start(self) -> None:
        """Listen, register (EPMD) or take the ekka port, start the services."""
        if self._started:
            raise RuntimeError("the node is already started")
        sock = self._listen_socket() if self.listens else None
        runtime: ProcessRuntime | None = None
        try:
            if sock is not None:
                self.port = sock.getsockname()[1]
            if sock is not None and self.use_epmd:
                alive = self.name.name.split("@", 1)[0]
                self._registration = await epmd.register(
                    alive, self.port, epmd_port=self.epmd_port, hidden=self.hidden
                )
                self.creation = self._registration.creation
            else:
                self.creation = self._wanted_creation or secrets.randbelow(0xFFFFFFFE) + 1
            runtime = ProcessRuntime(self.name, self.creation)
            local = LocalNode(self.name.name, self.creation, self.cookie, flags=self.flags)
            spawner = SpawnService(runtime, self.functions)
            dist = Distribution(
                runtime, local, self.settings, resolve=self._resolve, spawn=spawner.handle
            )
            runtime.router = dist
            start_services(runtime, self.functions)
            if self.global_sync:
                self.global_server = GlobalServer(dist)
                runtime.spawn(self.global_server.run, name=GLOBAL_NAME_SERVER)
            if sock is not None:
                await dist.listen(sock)
        except BaseException:
            if sock is not None:
                sock.close()
            if runtime is not None:
                await runtime.close()
            if self._registration is not None:
                await self._registration.close()
                self._registration = None
            raise
        self._runtime, self._dist = runtime, dist
        self._started = True
        log.info(
            "node %s up: %s, creation %d, %s",
            self.name.name,
            f"port {self.port}" if self.listens else "outgoing connections only",
            self.creation,
            f"epmd on port {self.epmd_port}" if self.use_epmd else "epmd-less (ekka port rule)",
        )

    async def stop(self) -> None:
        """Kill every process, close every connection, unregister from EPMD."""
        if not self._started:
            return
        self._started = False
        assert self._runtime is not None and self._dist is not None
        await self._runtime.close()
        await self._dist.close()
        if self._registration is not None:
            await self._registration.close()
            self._registration = None
        log.info("node %s stopped", self.name.name)

    def _listen_socket(self) -> socket.socket:
        name = self.name.name
        port = self._wanted_port if self.use_epmd else self._resolver.listen_port(name)
        return _listen_socket(self.settings.interface, port)

    async def _resolve(self, node: str) -> tuple[str, int]:
        address = await self._resolver.resolve(node)
        return address.ip, address.port

    # -- functions Erlang can call -----------------------------------------------------------

    def register_function(
        self, module: str | Atom, function: str | Atom, fn: Callable[..., Any]
    ) -> None:
        """Make ``fn`` (plain or ``async``) callable as ``module:function`` by
        ``rpc:call``, ``erpc:call``, ``rpc:cast``, ``spawn`` ... from other nodes.

        Raise :class:`~pyekka.node.exits.ErlangThrow`, ``ErlangExit`` or
        ``ErlangError`` for the ``throw``, ``exit`` and ``error`` classes; any other
        exception is an ``error`` with reason ``{python_error, <<"Type: msg">>}``.
        """
        self.functions.register(module, function, fn)

    def function(
        self, module: str | Atom, name: str | Atom | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of :meth:`register_function`."""
        return self.functions.function(module, name)

    def _register_defaults(self) -> None:
        reg = self.functions.register
        reg(ERLANG, "node", lambda: self.name)
        reg(ERLANG, "nodes", self._nodes_bif)
        reg(ERLANG, "is_alive", lambda: True)

    def _nodes_bif(self, arg: Any = None) -> list[Atom]:
        if arg is None:
            return self.nodes()
        kinds = arg if type(arg) is list else [arg]
        if not all(type(k) is Atom and k.name in _NODE_KINDS for k in kinds):
            raise BadArg(f"bad argument to nodes/1: {arg!r}")
        names = [k.name for k in kinds]
        out: list[Atom] = []
        if "this" in names:
            out.append(self.name)
        if "connected" in names:
            return out + self.nodes("connected")
        for kind in ("visible", "hidden"):
            if kind in names or "known" in names:
                out += self.nodes(kind)
        return out

    # -- processes and messages ------------------------------------------------------------

    def spawn(self, fn: ProcessFn, *args: Any, **opts: Any) -> Process:
        """Start ``fn(proc, *args)`` as a process (see ``ProcessRuntime.spawn``)."""
        return self.runtime.spawn(fn, *args, **opts)

    def send(self, dest: Any, msg: Any) -> None:
        """``Dest ! Msg`` from no process: a pid, a name, ``(name, node)`` or an alias;
        connects to a remote node first if need be."""
        self.runtime.send(_dest(dest), msg)

    def whereis(self, name: str | Atom) -> Any:
        """The pid registered as ``name`` here, or ``None``."""
        return self.runtime.whereis(as_atom(name))

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``fn(proc, *args)`` in a new process and return what it returns.

        An exception ``fn`` raises is raised here (the process ends with its
        crash reason); if the process is killed (an exit signal, a link) or ends
        with an exit, :class:`~pyekka.node.exits.ProcessExit` is raised with its
        reason.
        """
        result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def body(proc: Process) -> None:
            try:
                value = await fn(proc, *args)
            except ProcessExit:
                raise
            except Exception as exc:
                # The caller gets the exception; links see the crash reason.
                result.set_exception(exc)
                raise ProcessExit(crash_reason(exc)) from None
            if not result.done():
                result.set_result(value)

        proc = self.runtime.spawn(body)
        reason = await proc.wait()
        if result.done():
            return result.result()
        raise ProcessExit(reason)

    # -- nodes ------------------------------------------------------------------------------

    def nodes(self, kind: str = "visible") -> list[Atom]:
        """``nodes(visible | hidden | connected)``."""
        return self.runtime.nodes(kind)

    async def connect(self, node: str | Atom) -> bool:
        """``net_kernel:connect_node(Node)``: whether a connection is (now) up."""
        return await self.distribution.connect(as_atom(node))

    async def connect_or_raise(self, node: str | Atom) -> None:
        """Make sure a connection to ``node`` is up, or raise
        :class:`~pyekka.node.connect_error.ConnectError`, whose ``reason`` says why
        there is none (wrong cookie, not allowed, no epmd, unknown node, refused,
        timeout ...)."""
        await self.distribution.connect_or_raise(as_atom(node))

    def disconnect(self, node: str | Atom) -> bool:
        """``erlang:disconnect_node(Node)``."""
        return self.distribution.disconnect(as_atom(node))

    async def ping(self, node: str | Atom, timeout: float | None = None) -> bool:
        """``net_adm:ping(Node) =:= pong``: connect, then ask its ``net_kernel``."""
        target = as_atom(node)
        if not await self.connect(target):
            return False

        async def ask(proc: Process) -> Any:
            return await gen_call(proc, (NET_KERNEL, target), (IS_AUTH, self.name), timeout)

        try:
            answer = await self.run(ask)
        except (CallError, ProcessExit):
            answer = None
        if answer != YES:
            self.disconnect(target)
            return False
        return True

    # -- calling other nodes ------------------------------------------------------------------

    async def rpc(
        self,
        node: str | Atom,
        module: str | Atom,
        function: str | Atom,
        args: list,
        timeout: float | None = None,
    ) -> Any:
        """``rpc:call(Node, M, F, Args, Timeout)``: the result, or ``{badrpc, Reason}``
        exactly as ``rpc:call`` gives it. ``timeout`` in seconds (``None``: forever)."""
        return await self._call(rpc_call, node, module, function, args, timeout)

    async def erpc(
        self,
        node: str | Atom,
        module: str | Atom,
        function: str | Atom,
        args: list,
        timeout: float | None = None,
    ) -> Any:
        """``erpc:call(Node, M, F, Args, Timeout)``: the result, or
        :class:`~pyekka.node.rpc.RemoteError` with the remote class and reason."""
        return await self._call(erpc_call, node, module, function, args, timeout)

    async def _call(
        self,
        caller: Callable[..., Awaitable[Any]],
        node: str | Atom,
        module: str | Atom,
        function: str | Atom,
        args: list,
        timeout: float | None,
    ) -> Any:
        """``caller`` (:func:`rpc_call` or :func:`erpc_call`) in a new process."""
        target, m, f = as_atom(node), as_atom(module), as_atom(function)

        async def body(proc: Process) -> Any:
            dist, functions = self.distribution, self.functions
            return await caller(proc, dist, functions, target, m, f, args, timeout)

        return await self.run(body)


def _dest(dest: Any) -> Any:
    if isinstance(dest, str):
        return Atom(dest)
    if type(dest) is tuple and len(dest) == 2 and all(isinstance(x, str) for x in dest):
        return (as_atom(dest[0]), as_atom(dest[1]))
    return dest


def _listen_socket(interface: str | None, port: int) -> socket.socket:
    host = interface or ""
    family = socket.AF_INET6 if interface and ":" in interface else socket.AF_INET
    # IPPROTO_TCP (not 0): asyncio then sets TCP_NODELAY on every accepted
    # connection, as OTP does for distribution sockets; without it Nagle's
    # algorithm delays small replies by tens of milliseconds.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
