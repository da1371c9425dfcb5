"""The node's connection table: connecting, accepting, and routing signals.

:class:`Distribution` is the runtime's :class:`~pyekka.node.router.RemoteRouter`
and owns every connection of the node:

* **Connect on first send.** A signal to a node without a connection starts an
  attempt and waits in that node's queue; the queue is written, in order, the
  moment the connection is up (or dropped, with ``noconnection`` for the links
  and monitors towards that node, if the attempt fails).
* **Simultaneous connects** are settled as OTP's ``net_kernel`` does: the node
  with the greater name keeps its own attempt and refuses the other (``nok``); the
  other abandons its attempt and accepts (``ok_simultaneous``). Our queued signals
  move to whichever connection wins. A peer that reconnects while we still hold
  a connection to it gets ``alive``; if it insists, the old connection is closed.
* **Inbound signals** are handed to the runtime's entry points in arrival order,
  after ``node_up`` and before ``node_down`` of their connection.
* Each signal is written in the form the connection's flags allow (``SEND`` for
  peers without ``SEND_SENDER``, ``UNLINK`` without ``UNLINK_ID`` ...).
* A failed attempt is a :class:`~pyekka.node.connect_error.ConnectError`:
  :meth:`Distribution.connect_or_raise` raises it, :meth:`Distribution.connect`
  answers ``False``.
* A test hook cuts the link to chosen nodes: :meth:`Distribution.block` closes the
  connection and refuses every connection to and from the node (``not_allowed``;
  signals to it are dropped, as to an unreachable node) until
  :meth:`Distribution.unblock` (see :mod:`pyekka.testing.partition`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyekka.dist import control as c
from pyekka.dist.flags import DFlag
from pyekka.dist.handshake import HandshakeComplete, LocalNode, PeerNamed, simultaneous_status
from pyekka.dist.names import is_node_name
from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.connection import (
    CONNECTION_CLOSED,
    Connection,
    DistSettings,
    HandshakeError,
    run_acceptor,
    run_initiator,
)
from pyekka.node.exits import PYTHON_ERROR
from pyekka.term import EncodeError, encode_term
from pyekka.term.types import Atom, Pid, Reference

if TYPE_CHECKING:
    from pyekka.node.router import RemoteTarget
    from pyekka.node.runtime import ProcessRuntime

__all__ = ["Distribution", "Resolver", "SpawnHandler"]

log = logging.getLogger("pyekka.node.dist")

Resolver = Callable[[str], Awaitable[tuple[str, int]]]
"""``await resolve(node_name)`` -> ``(host, port)`` of the node's distribution listener."""

SpawnHandler = Callable[[c.SpawnRequest | c.SpawnRequestTT], tuple[int, Any]]
"""Runs a ``SPAWN_REQUEST``; returns the ``SPAWN_REPLY`` flags and result (pid or error)."""

NOTSUP = Atom("notsup")
SHUTDOWN = Atom("shutdown")
DISCONNECT = Atom("disconnect")
CONNECTION_SETUP_FAILED = Atom("connection_setup_failed")


@dataclass(eq=False)
class _Peer:
    """What we know of one other node: its connection, or the attempts to get one."""

    name: Atom
    conn: Connection | None = None
    queue: list[c.ControlMessage] = field(default_factory=list)
    attempt: asyncio.Task[None] | None = None
    accepting: int = 0
    waiters: list[asyncio.Future[ConnectError | None]] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.conn is not None:
            return "up"
        return "pending" if self.attempt is not None else "accepting"


def _adapt(msg: c.ControlMessage, conn: Connection) -> c.ControlMessage | None:
    """``msg`` in the form ``conn``'s flags allow; ``None`` if it cannot be sent."""
    kind = type(msg)
    if kind is c.SendSender and not conn.has(DFlag.SEND_SENDER):
        return c.Send(msg.to_pid, msg.message)  # type: ignore[attr-defined]
    if kind is c.PayloadExit and not conn.has(DFlag.EXIT_PAYLOAD):
        return c.Exit(msg.from_pid, msg.to_pid, msg.reason)  # type: ignore[attr-defined]
    if kind is c.PayloadExit2 and not conn.has(DFlag.EXIT_PAYLOAD):
        return c.Exit2(msg.from_pid, msg.to_pid, msg.reason)  # type: ignore[attr-defined]
    if kind is c.PayloadMonitorPExit and not conn.has(DFlag.EXIT_PAYLOAD):
        m: Any = msg
        return c.MonitorPExit(m.from_proc, m.to_pid, m.ref, m.reason)
    if kind is c.AliasSend and not conn.has(DFlag.ALIAS):
        return None
    if kind is c.UnlinkId and not conn.has(DFlag.UNLINK_ID):
        return None
    if kind is c.SpawnRequest and not conn.has(DFlag.SPAWN):
        return None
    if kind in (c.MonitorP, c.DemonitorP, c.PayloadMonitorPExit) and not conn.has(
        DFlag.DIST_MONITOR
    ):
        return None
    return msg


_EXIT_KINDS = (
    c.PayloadExit,
    c.PayloadExit2,
    c.PayloadMonitorPExit,
    c.Exit,
    c.Exit2,
    c.MonitorPExit,
)


class Distribution:
    """Connections of one node, and the router its runtime sends through."""

    def __init__(
        self,
        runtime: ProcessRuntime,
        local: LocalNode,
        settings: DistSettings,
        *,
        resolve: Resolver,
        spawn: SpawnHandler,
    ) -> None:
        self.runtime = runtime
        self.local = local
        self.name = Atom(local.name)
        self.settings = settings
        self._resolve = resolve
        self._spawn = spawn
        self._peers: dict[Atom, _Peer] = {}
        self._conn_ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._handshakes: set[asyncio.StreamWriter] = set()
        self._closed_conns: list[Connection] = []
        self._closing = False
        self._blocked: set[Atom] = set()
        self._handlers: dict[type, Callable[[Connection, Any], None]] = self._make_handlers()

    # -- listening -----------------------------------------------------------------

    async def listen(self, sock: socket.socket) -> None:
        """Accept connections on the listening socket ``sock``."""
        self._server = await asyncio.start_server(self._on_accept, sock=sock)

    async def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.close()
            return
        address = writer.get_extra_info("peername")
        peer: _Peer | None = None

        def decide(named: PeerNamed) -> str:
            nonlocal peer
            name = Atom(named.name)
            if self._closing or name == self.name or name in self._blocked:
                return "not_allowed"
            known = self._peers.get(name)
            state = "none" if known is None else known.state
            if state == "accepting":
                return "nok"  # another connection from it is being set up
            status = simultaneous_status(self.name.name, named.name, state)  # type: ignore[arg-type]
            if status in ("ok", "ok_simultaneous", "alive"):
                if known is None:
                    known = self._peers[name] = _Peer(name)
                if status == "ok_simultaneous" and known.attempt is not None:
                    log.debug("simultaneous connect with %s: accepting its attempt", name.name)
                    known.attempt.cancel()
                    known.attempt = None
                known.accepting += 1
                peer = known
            return status

        async def close_old(name: str) -> None:
            known = self._peers.get(Atom(name))
            if known is not None and known.conn is not None:
                log.info("%s reconnected: closing the old connection", name)
                old = known.conn
                old.close(CONNECTION_CLOSED)
                await old.wait_closed()

        self._handshakes.add(writer)
        try:
            done = await run_acceptor(
                reader,
                writer,
                self.local,
                timeout=self.settings.handshake_timeout,
                decide=decide,
                close_old=close_old,
            )
        except HandshakeError as exc:
            writer.close()
            who = exc.node or f"an unnamed peer at {address}"
            # a simultaneous connect settled as OTP settles it is no news
            level = logging.DEBUG if exc.reason is ConnectFailure.SIMULTANEOUS else _log_level(exc)
            log.log(level, "connection attempt from %s refused: %s", who, exc.detail)
            if peer is not None:
                peer.accepting -= 1
                self._settle(peer, CONNECTION_SETUP_FAILED, exc)
            return
        except asyncio.CancelledError:
            writer.close()
            raise
        finally:
            self._handshakes.discard(writer)
        assert peer is not None
        peer.accepting -= 1
        self._established(peer, done, reader, writer)

    # -- connecting ----------------------------------------------------------------

    def connection(self, node: Atom) -> Connection | None:
        """The established connection to ``node``, if any."""
        peer = self._peers.get(node)
        return peer.conn if peer is not None else None

    async def connect(self, node: Atom) -> bool:
        """``net_kernel:connect_node(Node)``: whether a connection is (now) up."""
        try:
            await self.connect_or_raise(node)
        except ConnectError:
            return False
        return True

    async def connect_or_raise(self, node: Atom) -> None:
        """Return once a connection to ``node`` is up (made now if need be), or raise
        :class:`~pyekka.node.connect_error.ConnectError` saying why there is none."""
        if node == self.name:
            return
        peer = self._peers.get(node) or self._start(node)
        if isinstance(peer, ConnectError):
            raise peer
        if peer.conn is not None:
            return
        waiter: asyncio.Future[ConnectError | None] = asyncio.get_running_loop().create_future()
        peer.waiters.append(waiter)
        failure = await waiter
        if failure is not None:
            raise failure

    def disconnect(self, node: Atom) -> bool:
        """``erlang:disconnect_node(Node)``: whether there was a connection."""
        peer = self._peers.get(node)
        if peer is None or peer.conn is None:
            return False
        peer.conn.close(DISCONNECT)
        return True

    # -- the partition test hook ---------------------------------------------------------

    def block(self, node: Atom) -> None:
        """Cut the link to ``node`` (a test hook): close the connection, refuse every
        connection to and from it, drop signals to it, until :meth:`unblock`."""
        self._blocked.add(node)
        self.disconnect(node)

    def unblock(self, node: Atom) -> None:
        """Allow connections to and from ``node`` again (they are made on demand)."""
        self._blocked.discard(node)

    @property
    def blocked(self) -> frozenset[Atom]:
        """The nodes :meth:`block` cut off."""
        return frozenset(self._blocked)

    def _start(self, node: Atom) -> _Peer | ConnectError:
        """A new attempt to connect to ``node``, or why none can be made (then the
        runtime hears ``node_down`` soon, as for a failed attempt)."""
        refusal = self._refusal(node)
        if refusal is not None:
            asyncio.get_running_loop().call_soon(self.runtime.node_down, node)
            return refusal
        peer = self._peers[node] = _Peer(node)
        peer.attempt = asyncio.get_running_loop().create_task(
            self._connect(peer), name=f"pyekka connect {node.name}"
        )
        return peer

    def _refusal(self, node: Atom) -> ConnectError | None:
        if self._closing:
            return ConnectError(ConnectFailure.SHUTDOWN, "this node is stopping", str(node))
        if type(node) is not Atom or not is_node_name(node.name):
            return ConnectError(ConnectFailure.BAD_NAME, f"not a node name: {node!r}", str(node))
        if node in self._blocked:
            return ConnectError(ConnectFailure.NOT_ALLOWED, "blocked (test partition)", node.name)
        return None

    async def _connect(self, peer: _Peer) -> None:
        name = peer.name.name
        timeout = self.settings.handshake_timeout
        try:
            host, port = await self._resolve(name)
            local_addr = (self.settings.interface, 0) if self.settings.interface else None
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, local_addr=local_addr)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failure = _setup_error(name, exc, timeout)
            log.warning("cannot connect to %s: %s", name, failure.detail)
            self._attempt_failed(peer, failure)
            return
        try:
            done = await run_initiator(
                reader,
                writer,
                self.local,
                name,
                timeout=timeout,
                keep_on_alive=lambda: peer.conn is None,
            )
        except HandshakeError as exc:
            writer.close()
            if exc.reason is ConnectFailure.SIMULTANEOUS and peer.conn is None:
                # Simultaneous connect and the peer's attempt wins: it is coming in.
                log.debug("simultaneous connect with %s: waiting for its attempt", name)
                await asyncio.sleep(timeout)
                text = f"{exc.detail}; it never connected itself within {timeout:g} s"
                exc = HandshakeError(exc.reason, text, name)
            log.log(_log_level(exc), "cannot connect to %s: %s", name, exc.detail)
            self._attempt_failed(peer, exc)
            return
        except asyncio.CancelledError:
            writer.close()
            raise
        if peer.attempt is asyncio.current_task():
            peer.attempt = None
        self._established(peer, done, reader, writer)

    def _attempt_failed(self, peer: _Peer, failure: ConnectError) -> None:
        if peer.attempt is asyncio.current_task():
            peer.attempt = None
        self._settle(peer, CONNECTION_SETUP_FAILED, failure)

    def _settle(self, peer: _Peer, reason: Any, failure: ConnectError) -> None:
        """Forget ``peer`` if nothing is under way for it any more; its waiters get
        ``failure``."""
        if peer.conn is not None or peer.attempt is not None or peer.accepting > 0:
            return
        if self._peers.get(peer.name) is peer:
            del self._peers[peer.name]
        peer.queue.clear()
        _wake(peer, failure)
        self.runtime.node_down(peer.name, reason)

    def _established(
        self,
        peer: _Peer,
        done: HandshakeComplete,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if self._closing or self._peers.get(peer.name) is not peer or peer.conn is not None:
            writer.close()
            return
        if peer.name in self._blocked:  # blocked during the handshake
            writer.close()
            blocked = ConnectError(ConnectFailure.NOT_ALLOWED, "blocked (test partition)")
            self._settle(peer, CONNECTION_SETUP_FAILED, blocked)
            return
        conn = Connection(
            peer.name,
            done,
            reader,
            writer,
            conn_id=next(self._conn_ids),
            settings=self.settings,
            dispatch=self._dispatch,
            closed=self._conn_closed,
        )
        peer.conn = conn
        if peer.attempt is not None:
            peer.attempt.cancel()
            peer.attempt = None
        log.info(
            "connected to %s (%s, creation %d)",
            peer.name.name,
            "hidden" if conn.hidden else "visible",
            done.peer_creation,
        )
        self.runtime.node_up(peer.name, hidden=conn.hidden, connection_id=conn.conn_id)
        queue, peer.queue = peer.queue, []
        for msg in queue:
            self._write(conn, msg, queued=True)
        _wake(peer, None)
        conn.start()

    def _conn_closed(self, conn: Connection, reason: Any) -> None:
        self._closed_conns = [old for old in self._closed_conns if not old.finished]
        self._closed_conns.append(conn)
        peer = self._peers.get(conn.peer)
        if peer is None or peer.conn is not conn:
            return
        peer.conn = None
        log.info("connection to %s is down (%s)", conn.peer.name, reason)
        if peer.attempt is None and peer.accepting == 0 and self._peers.get(conn.peer) is peer:
            del self._peers[conn.peer]
        self.runtime.node_down(conn.peer, reason)

    async def close(self) -> None:
        """Stop listening and close every connection and attempt."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for writer in list(self._handshakes):
            writer.close()
        tasks = []
        stopping = ConnectError(ConnectFailure.SHUTDOWN, "this node is stopping")
        for peer in list(self._peers.values()):
            _wake(peer, stopping)
            if peer.attempt is not None:
                peer.attempt.cancel()
                tasks.append(peer.attempt)
                peer.attempt = None
            if peer.conn is not None:
                peer.conn.close(SHUTDOWN)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for conn in self._closed_conns:
            await conn.wait_closed()
        self._closed_conns.clear()
        if self._server is not None:
            await self._server.wait_closed()

    # -- outbound (the RemoteRouter) -----------------------------------------------------

    def _signal(self, node: Atom, msg: c.ControlMessage, *, strict: bool = False) -> None:
        """Send ``msg`` to ``node`` now, or queue it behind a connection attempt.

        ``strict``: the term comes from a user's send, whose encoding errors are
        raised to the sender (checked when queued, too)."""
        if self._closing:
            return
        peer = self._peers.get(node)
        if peer is None:
            peer = self._start(node)
            if isinstance(peer, ConnectError):
                return
        if peer.conn is not None:
            self._write(peer.conn, msg)
            return
        if strict:
            encode_term(msg.payload())
        peer.queue.append(msg)

    def _write(self, conn: Connection, msg: c.ControlMessage, *, queued: bool = False) -> None:
        adapted = _adapt(msg, conn)
        if adapted is None:
            self._not_sendable(conn, msg)
            return
        try:
            conn.send(adapted)
        except EncodeError as exc:
            if not isinstance(adapted, _EXIT_KINDS):
                if queued:
                    log.error("dropped a message to %s: %s", conn.peer.name, exc)
                    return
                raise
            # An exit reason must reach the peer, even if Python put junk in it.
            fields: Any = adapted
            text = f"unencodable exit reason: {fields.reason!r}"[:1000]
            reason = (PYTHON_ERROR, text.encode("utf-8", "replace"))
            conn.send(type(adapted)(**{**_fields(adapted), "reason": reason}))

    def _not_sendable(self, conn: Connection, msg: c.ControlMessage) -> None:
        if type(msg) is c.UnlinkId:
            # A peer without UNLINK_ID gets the old UNLINK, acknowledged on its behalf.
            conn.send(c.Unlink(msg.from_pid, msg.to_pid))
            asyncio.get_running_loop().call_soon(
                self.runtime.remote_unlink_ack, msg.to_pid, msg.from_pid, msg.id
            )
        elif type(msg) is c.SpawnRequest:
            asyncio.get_running_loop().call_soon(
                self.runtime.remote_spawn_reply, msg.req_id, msg.from_pid, 0, NOTSUP
            )
        else:
            log.debug("%s cannot carry %s: dropped", conn, type(msg).__name__)

    def send(self, sender: Pid, to: Pid, msg: Any) -> None:
        """``SEND_SENDER`` (``SEND`` for old peers)."""
        self._signal(to.node, c.SendSender(sender, to, msg), strict=True)

    def reg_send(self, sender: Pid, name: Atom, node: Atom, msg: Any) -> None:
        """``REG_SEND``."""
        self._signal(node, c.RegSend(sender, name, msg), strict=True)

    def alias_send(self, sender: Pid, alias: Reference, msg: Any) -> None:
        """``ALIAS_SEND`` (dropped for peers without aliases)."""
        self._signal(alias.node, c.AliasSend(sender, alias, msg), strict=True)

    def link(self, from_pid: Pid, to_pid: Pid) -> None:
        """``LINK``."""
        self._signal(to_pid.node, c.Link(from_pid, to_pid))

    def unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """``UNLINK_ID`` (``UNLINK`` for old peers)."""
        self._signal(to_pid.node, c.UnlinkId(unlink_id, from_pid, to_pid))

    def unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """``UNLINK_ID_ACK``."""
        self._signal(to_pid.node, c.UnlinkIdAck(unlink_id, from_pid, to_pid))

    def exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """``PAYLOAD_EXIT`` (``EXIT`` for old peers)."""
        self._signal(to_pid.node, c.PayloadExit(from_pid, to_pid, reason))

    def exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """``PAYLOAD_EXIT2`` (``EXIT2`` for old peers)."""
        self._signal(to_pid.node, c.PayloadExit2(from_pid, to_pid, reason))

    def monitor(self, watcher: Pid, target: RemoteTarget, ref: Reference) -> None:
        """``MONITOR_P``."""
        node, proc = _split_target(target)
        self._signal(node, c.MonitorP(watcher, proc, ref))

    def demonitor(self, watcher: Pid, target: RemoteTarget, ref: Reference) -> None:
        """``DEMONITOR_P``."""
        node, proc = _split_target(target)
        self._signal(node, c.DemonitorP(watcher, proc, ref))

    def monitor_exit(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        """``PAYLOAD_MONITOR_P_EXIT`` (``MONITOR_P_EXIT`` for old peers)."""
        self._signal(watcher.node, c.PayloadMonitorPExit(target, watcher, ref, reason))

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
        """``SPAWN_REQUEST`` (answered ``notsup`` for peers without spawn support)."""
        self._signal(node, c.SpawnRequest(req_id, from_pid, group_leader, mfa, opts, args))

    # -- inbound ---------------------------------------------------------------------

    def _dispatch(self, conn: Connection, msg: c.ControlMessage) -> None:
        handler = self._handlers.get(type(msg))
        if handler is None:
            log.debug("ignored %s from %s", type(msg).__name__, conn.peer.name)
            return
        try:
            handler(conn, msg)
        except Exception:
            log.exception("failed to handle %s from %s", type(msg).__name__, conn.peer.name)

    def _make_handlers(self) -> dict[type, Callable[[Connection, Any], None]]:
        rt = self.runtime

        def send(_: Connection, m: Any) -> None:
            rt.deliver(m.to_pid, m.message)

        def send_sender(_: Connection, m: Any) -> None:
            rt.deliver(m.to_pid, m.message, m.from_pid)

        def reg_send(_: Connection, m: Any) -> None:
            rt.deliver_reg(m.to_name, m.message, m.from_pid)

        def alias_send(_: Connection, m: Any) -> None:
            rt.deliver_alias(m.alias, m.message, m.from_pid)

        def link(_: Connection, m: Any) -> None:
            rt.remote_link(m.from_pid, m.to_pid)

        def unlink(_: Connection, m: Any) -> None:
            rt.remote_unlink(m.from_pid, m.to_pid, None)

        def unlink_id(_: Connection, m: Any) -> None:
            rt.remote_unlink(m.from_pid, m.to_pid, m.id)

        def unlink_id_ack(_: Connection, m: Any) -> None:
            rt.remote_unlink_ack(m.from_pid, m.to_pid, m.id)

        def exit_(_: Connection, m: Any) -> None:
            rt.remote_exit(m.from_pid, m.to_pid, m.reason)

        def exit2(_: Connection, m: Any) -> None:
            rt.remote_exit2(m.from_pid, m.to_pid, m.reason)

        def monitor(_: Connection, m: Any) -> None:
            rt.remote_monitor(m.from_pid, m.to_proc, m.ref)

        def demonitor(_: Connection, m: Any) -> None:
            rt.remote_demonitor(m.from_pid, m.to_proc, m.ref)

        def monitor_exit(_: Connection, m: Any) -> None:
            rt.remote_monitor_exit(m.from_proc, m.to_pid, m.ref, m.reason)

        def spawn_request(conn: Connection, m: Any) -> None:
            flags, result = self._spawn(m)
            conn.send(c.SpawnReply(m.req_id, m.from_pid, flags, result))

        def spawn_reply(_: Connection, m: Any) -> None:
            rt.remote_spawn_reply(m.req_id, m.to_pid, m.flags, m.result)

        return {
            c.Send: send,
            c.SendTT: send,
            c.SendSender: send_sender,
            c.SendSenderTT: send_sender,
            c.RegSend: reg_send,
            c.RegSendTT: reg_send,
            c.AliasSend: alias_send,
            c.AliasSendTT: alias_send,
            c.Link: link,
            c.Unlink: unlink,
            c.UnlinkId: unlink_id,
            c.UnlinkIdAck: unlink_id_ack,
            c.Exit: exit_,
            c.ExitTT: exit_,
            c.PayloadExit: exit_,
            c.PayloadExitTT: exit_,
            c.Exit2: exit2,
            c.Exit2TT: exit2,
            c.PayloadExit2: exit2,
            c.PayloadExit2TT: exit2,
            c.MonitorP: monitor,
            c.DemonitorP: demonitor,
            c.MonitorPExit: monitor_exit,
            c.PayloadMonitorPExit: monitor_exit,
            c.SpawnRequest: spawn_request,
            c.SpawnRequestTT: spawn_request,
            c.SpawnReply: spawn_reply,
            c.SpawnReplyTT: spawn_reply,
        }


def _wake(peer: _Peer, failure: ConnectError | None) -> None:
    """Answer everyone waiting for a connection to ``peer``."""
    for waiter in peer.waiters:
        if not waiter.done():
            waiter.set_result(failure)
    peer.waiters.clear()


def _log_level(error: ConnectError) -> int:
    return logging.ERROR if error.reason is ConnectFailure.WRONG_COOKIE else logging.WARNING


def _setup_error(node: str, exc: Exception, timeout: float) -> ConnectError:
    """What a failure before the handshake (lookup, TCP connect) means."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, TimeoutError):
        return ConnectError(ConnectFailure.TIMEOUT, f"no connection within {timeout:g} s", node)
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(ConnectFailure.REFUSED, f"connection refused: {exc}", node)
    return ConnectError(ConnectFailure.UNREACHABLE, str(exc) or type(exc).__name__, node)


def _split_target(target: RemoteTarget) -> tuple[Atom, Pid | Atom]:
    if type(target) is Pid:
        return target.node, target
    name, node = target  # type: ignore[misc]
    return node, name


def _fields(msg: c.ControlMessage) -> dict[str, Any]:
    return {name: getattr(msg, name) for name in msg.__dataclass_fields__}  # type: ignore[attr-defined]
