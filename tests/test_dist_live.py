"""The dist state machines against live OTP nodes, over real sockets on 127.0.0.1.

A real VM registers with *our* embedded epmd (run by a small thread harness here),
we look its port up with our epmd client, connect with :class:`InitiatorHandshake`,
exchange messages through :class:`DistConnection`, receive atom-cache headers and
fragments when we offer those flags, and accept the VM's own connection with
:class:`AcceptorHandshake` (``net_adm:ping`` from the VM to a Python node).
Each test runs once per OTP runtime found (``otp25``, ``otp28``, ...).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyekka.dist import control as c
from pyekka.dist import epmd, epmd_server
from pyekka.dist import flags as df
from pyekka.dist.connection import DistConnection, MessageReceived
from pyekka.dist.events import SendBytes
from pyekka.dist.handshake import (
    AcceptorHandshake,
    HandshakeComplete,
    HandshakeFailed,
    InitiatorHandshake,
    LocalNode,
    PeerNamed,
)
from pyekka.term.types import Atom, BitString, ImproperList, Pid, Reference, exact_equal
from pyekka.testing.otp import OtpRuntime

COOKIE = "livecookie"
TIMEOUT = 30.0
HOST = "127.0.0.1"

# The VM side: a registered process `echo` that echoes {From, T} as {echo, T},
# answers {From, {big, N}} with an N-byte binary, and pings a node on request.
ERL_ECHO = (
    "register(echo, spawn(fun Loop() -> receive "
    "{From, {ping, Node}} -> From ! {ping_result, net_adm:ping(Node)}, Loop(); "
    "{From, {big, N}} -> From ! {big, binary:copy(<<7>>, N), lists:seq(1, 20)}, Loop(); "
    "{From, T} -> From ! {echo, T}, Loop() end end)), "
    'io:format("READY~n")'
)


# ------------------------------------------------------------------ epmd harness


class EmbeddedEpmd:
    """Our sans-I/O epmd served on 127.0.0.1 by one thread per connection."""

    def __init__(self) -> None:
        self.registry = epmd_server.EpmdRegistry()
        self.changed = threading.Condition()
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self.threads.append(accept)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        with self.changed:
            conn = epmd_server.EpmdServerConnection(self.registry, local_peer=True)
        try:
            while True:
                data = sock.recv(4096)
                with self.changed:
                    if not data:
                        conn.connection_closed()
                        return
                    events = conn.receive_data(data)
                    self.changed.notify_all()
                for event in events:
                    if isinstance(event, SendBytes):
                        sock.sendall(event.data)
                    else:
                        return
        except OSError:
            with self.changed:
                conn.connection_closed()
        finally:
            sock.close()
            with self.changed:
                self.changed.notify_all()

    def wait_registered(self, name: str) -> epmd.NodeInfo:
        with self.changed:
            ok = self.changed.wait_for(lambda: self.registry.lookup(name), timeout=TIMEOUT)
        assert ok, f"{name} never registered with our epmd"
        return ok

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(TIMEOUT)


@contextlib.contextmanager
def embedded_epmd() -> Iterator[EmbeddedEpmd]:
    server = EmbeddedEpmd()
    try:
        yield server
    finally:
        server.close()


def epmd_request(port: int, request: bytes, reader: Callable[[bytes], Any]) -> Any:
    """One client request to epmd at ``port``; read the reply with ``reader``."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while (reply := reader(data)) is None:
            chunk = sock.recv(4096)
            assert chunk, "epmd closed before replying"
            data += chunk
        return reply


# ------------------------------------------------------------------ the VM


@contextlib.contextmanager
def erlang_node(otp: OtpRuntime, epmd_port: int, *extra: str) -> Iterator[subprocess.Popen]:
    proc = otp.start(
        "-name",
        f"b@{HOST}",
        "-setcookie",
        COOKIE,
        "-epmd_port",
        str(epmd_port),
        "-start_epmd",
        "false",
        *extra,
        "-eval",
        ERL_ECHO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        output = b""
        deadline = time.monotonic() + TIMEOUT
        while b"READY" not in output:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
            assert chunk, f"the VM did not start: {output.decode(errors='replace')}"
            output += chunk
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the VM and its helpers
        proc.wait(TIMEOUT)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


# ------------------------------------------------------------------ socket drivers


def drive_handshake(
    sock: socket.socket, hs: Any, first: list, on_named: str = "ok"
) -> HandshakeComplete:
    events = list(first)
    while True:
        for event in events:
            if isinstance(event, SendBytes):
                sock.sendall(event.data)
            elif isinstance(event, HandshakeComplete):
                return event
            elif isinstance(event, HandshakeFailed):
                pytest.fail(f"handshake failed: {event.reason}")
        follow = [e for e in events if isinstance(e, PeerNamed)]
        events = hs.accept(on_named) if follow else []
        if not events:
            data = sock.recv(65536)
            assert data, "peer closed during the handshake"
            events = hs.receive_data(data)


class Link:
    """A socket plus a DistConnection, read until a wanted message arrives."""

    def __init__(self, sock: socket.socket, done: HandshakeComplete) -> None:
        self.sock = sock
        self.conn = DistConnection(done.flags, time.monotonic())
        self.raw = bytearray()  # everything received, for frame-kind statistics
        self.pending = [e.message for e in self.conn.receive_data(done.rest)]
        self.raw += done.rest

    def send(self, message: c.ControlMessage) -> None:
        self.sock.sendall(self.conn.send(message))

    def wait_for(self, match: Callable[[c.ControlMessage], bool]) -> c.ControlMessage:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, message in enumerate(self.pending):
                if match(message):
                    return self.pending.pop(i)
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the wanted message never came"
            self.sock.settimeout(remaining)
            data = self.sock.recv(1 << 20)
            assert data, "the peer closed the connection"
            self.raw += data
            for event in self.conn.receive_data(data):
                assert isinstance(event, MessageReceived)
                self.pending.append(event.message)

    def frame_kinds(self) -> dict[str, int]:
        """Count the received frames by kind, straight from the raw bytes."""
        kinds: dict[str, int] = {}
        pos = 0
        while pos + 4 <= len(self.raw):
            (size,) = struct.unpack_from(">I", self.raw, pos)
            body = self.raw[pos + 4 : pos + 4 + size]
            kind = (
                "tick"
                if not body
                else {112: "pass_through"}.get(body[0])
                or {68: "header", 69: "fragment_header", 70: "fragment_cont"}[body[1]]
            )
            kinds[kind] = kinds.get(kind, 0) + 1
            pos += 4 + size
        return kinds


def payload_of(message: c.ControlMessage) -> Any:
    return message.payload() if message.has_payload() else None


def to_me(pid: Pid, tag: str) -> Callable[[c.ControlMessage], bool]:
    def match(message: c.ControlMessage) -> bool:
        if not isinstance(message, (c.Send, c.SendSender)) or message.to_pid != pid:
            return False
        payload = payload_of(message)
        return type(payload) is tuple and payload[0] == Atom(tag)

    return match


def connect(port: int, local: LocalNode) -> Link:
    sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
    hs = InitiatorHandshake(local, f"b@{HOST}")
    done = drive_handshake(sock, hs, hs.start())
    assert done.peer_name == f"b@{HOST}"
    return Link(sock, done)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("header_flags", [False, True], ids=["pass_through", "atom_cache"])
def test_connect_echo_and_big_messages(otp: OtpRuntime, header_flags: bool) -> None:
    with embedded_epmd() as server, erlang_node(otp, server.port):
        registered = server.wait_registered("b")
        reply = epmd_request(server.port, epmd.encode_port_please2_req("b"), epmd.read_port2_resp)
        assert reply.result == 0 and reply.node == registered
        flags = df.DEFAULT_FLAGS | (df.HEADER_FLAGS if header_flags else 0)
        local = LocalNode(f"py@{HOST}", 77, COOKIE, flags=flags)
        link = connect(registered.port, local)
        try:
            me = Pid(Atom(local.name), 1, 0, local.creation)
            term = (
                Atom("hello"),
                [1, -5, 2.5, 2**70, b"bin", BitString(b"\xa0", 3)],
                {Atom("k"): ImproperList([Atom("x")], Atom("y")), b"k": [True, False]},
                me,
                Reference(Atom(local.name), local.creation, (1, 2, 3)),
                "text",  # goes out as a binary
            )
            link.send(c.RegSend(me, Atom("echo"), (me, term)))
            echoed = payload_of(link.wait_for(to_me(me, "echo")))[1]
            assert exact_equal(echoed, (*term[:-1], b"text"))
            # a message far above OTP's 64 KiB fragment size
            link.send(c.RegSend(me, Atom("echo"), (me, (Atom("big"), 300_000))))
            big = payload_of(link.wait_for(to_me(me, "big")))
            assert big[1] == b"\x07" * 300_000 and big[2] == list(range(1, 21))
            kinds = link.frame_kinds()
            if header_flags:
                assert "pass_through" not in kinds
                assert kinds.get("fragment_cont", 0) >= 4
                assert link.conn.decoder.pending_sequences == 0
            else:
                assert set(kinds) <= {"pass_through", "tick"}
        finally:
            link.sock.close()


def test_wrong_cookie_is_refused(otp: OtpRuntime) -> None:
    with embedded_epmd() as server, erlang_node(otp, server.port):
        port = server.wait_registered("b").port
        sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        with sock:
            hs = InitiatorHandshake(LocalNode(f"py@{HOST}", 5, "wrong"), f"b@{HOST}")
            events = hs.start()
            seen = list(events)
            while True:
                for event in events:
                    if isinstance(event, SendBytes):
                        sock.sendall(event.data)
                data = sock.recv(65536)
                if not data:
                    break  # the VM closed on our bad digest: no ack ever comes
                events = hs.receive_data(data)
                seen += events
            assert not hs.finished
            assert not any(isinstance(e, (HandshakeComplete, HandshakeFailed)) for e in seen)
            # we did get as far as sending our challenge reply
            assert sum(isinstance(e, SendBytes) for e in seen) == 2


def test_the_vm_connects_to_us(otp: OtpRuntime) -> None:
    """net_adm:ping from the VM: epmd lookup, our acceptor, is_auth answered yes."""
    with embedded_epmd() as server, erlang_node(otp, server.port):
        port = server.wait_registered("b").port
        listener = socket.create_server((HOST, 0))
        with listener, socket.create_connection((HOST, server.port)) as alive:
            my_port = listener.getsockname()[1]
            alive.sendall(epmd.encode_alive2_req(epmd.NodeInfo("pyacc", my_port)))
            response = None
            data = b""
            while response is None:
                data += alive.recv(64)
                response = epmd.read_alive2_resp(data)
            assert response.result == 0 and response.extended
            acc_local = LocalNode(f"pyacc@{HOST}", response.creation, COOKIE)

            ini_local = LocalNode(f"py@{HOST}", 78, COOKIE)
            link = connect(port, ini_local)
            me = Pid(Atom(ini_local.name), 1, 0, ini_local.creation)
            link.send(c.RegSend(me, Atom("echo"), (me, (Atom("ping"), Atom(acc_local.name)))))

            listener.settimeout(TIMEOUT)
            sock, _ = listener.accept()
            with sock:
                sock.settimeout(TIMEOUT)
                hs = AcceptorHandshake(acc_local)
                first = hs.receive_data(sock.recv(65536))
                named = first[-1]
                assert isinstance(named, PeerNamed) and named.name == f"b@{HOST}"
                assert named.version == 6 and named.creation is not None
                done = drive_handshake(sock, hs, first)
                assert done.peer_name == f"b@{HOST}"
                assert done.flags == df.negotiate(acc_local.flags, done.peer_flags)
                acc = Link(sock, done)

                def is_auth(message: c.ControlMessage) -> bool:
                    payload = payload_of(message)
                    return (
                        isinstance(message, c.RegSend)
                        and message.to_name == Atom("net_kernel")
                        and type(payload) is tuple
                        and payload[0] == Atom("$gen_call")
                    )

                call = acc.wait_for(is_auth)
                (_, (caller, tag), request) = payload_of(call)
                assert request == (Atom("is_auth"), Atom(f"b@{HOST}"))
                acc_pid = Pid(Atom(acc_local.name), 1, 0, acc_local.creation)
                acc.send(c.SendSender(acc_pid, caller, (tag, Atom("yes"))))
                result = payload_of(link.wait_for(to_me(me, "ping_result")))
                assert result == (Atom("ping_result"), Atom("pong"))
            link.sock.close()


def test_ticks_keep_an_idle_connection_alive(otp: OtpRuntime) -> None:
    """With net_ticktime 4 on both sides, 6 idle seconds: ticks both ways, still up."""
    with embedded_epmd() as server, erlang_node(otp, server.port, "-kernel", "net_ticktime", "4"):
        port = server.wait_registered("b").port
        local = LocalNode(f"py@{HOST}", 79, COOKIE)
        sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        hs = InitiatorHandshake(local, f"b@{HOST}")
        link = Link(sock, drive_handshake(sock, hs, hs.start()))
        link.conn = DistConnection(link.conn.flags, time.monotonic(), net_ticktime=4)
        with sock:
            end = time.monotonic() + 6.0
            while (now := time.monotonic()) < end:
                for event in link.conn.on_timer(now):
                    assert isinstance(event, SendBytes), "we declared the VM dead"
                    sock.sendall(event.data)
                wait = max(0.0, min(link.conn.next_deadline, end) - now)
                ready, _, _ = select.select([sock], [], [], wait)
                if ready:
                    data = sock.recv(65536)
                    assert data, "the VM dropped the connection"
                    link.raw += data
                    link.pending += [e.message for e in link.conn.receive_data(data)]
            assert link.frame_kinds().get("tick", 0) >= 2
            me = Pid(Atom(local.name), 1, 0, local.creation)
            link.send(c.RegSend(me, Atom("echo"), (me, Atom("still_here"))))
            echoed = payload_of(link.wait_for(to_me(me, "echo")))
            assert echoed == (Atom("echo"), Atom("still_here"))


def _accepts_old_name(otp_version: str) -> bool:
    """OTP 25.0-25.2 refuse the old 'n' name message; 23, 24 and 25.3+ take it."""
    parts = tuple(int(p) for p in otp_version.split(".")[:2] if p.isdigit())
    return not ((25, 0) <= parts[:2] < (25, 3))


def test_old_name_message_and_complement(otp: OtpRuntime) -> None:
    """What an OTP 23/24 node told "version 5" sends: 'n', then 'c' after the challenge."""
    with embedded_epmd() as server, erlang_node(otp, server.port):
        port = server.wait_registered("b").port
        local = LocalNode(f"py@{HOST}", 80, COOKIE)
        with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
            hs = InitiatorHandshake(local, f"b@{HOST}", version=5)
            events = hs.start()
            while not hs.finished:
                for event in events:
                    if isinstance(event, SendBytes):
                        sock.sendall(event.data)
                data = sock.recv(65536)
                if not data:
                    break
                events = hs.receive_data(data)
            if _accepts_old_name(otp.info.otp_version):
                done = events[-1]
                assert isinstance(done, HandshakeComplete)
                assert done.peer_creation == server.registry.creation_of("b")
                link = Link(sock, done)
                me = Pid(Atom(local.name), 1, 0, local.creation)
                link.send(c.RegSend(me, Atom("echo"), (me, Atom("v5"))))
                echoed = payload_of(link.wait_for(to_me(me, "echo")))
                assert echoed == (Atom("echo"), Atom("v5"))
            else:
                assert not hs.finished  # closed by the VM right after our 'n'
