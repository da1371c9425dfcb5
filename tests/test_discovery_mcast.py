"""mcast discovery: packets against the VM's vectors, then real multicast on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyekka.discovery import DiscoveryError, McastOptions, McastStrategy
from pyekka.discovery.mcast import (
    Handshake,
    McastResponder,
    cookie_hash,
    decode_handshake,
    encode_handshake,
)
from pyekka.term import Atom, binary_to_term, term_to_binary
from pyekka.term.types import exact_equal
from pyekka.testing.otp import OtpRuntime, clean_env
from tests.discovery_servers import free_port
from tests.vectors import from_typed, records

GROUP = "239.192.0.1"
LOOPBACK = "127.0.0.1"
COOKIE = "mcastcookie"
WAIT = 10.0  # seconds an awaited datagram may take before the test fails


# ---------------------------------------------------------------- packets (vectors)


@pytest.mark.parametrize("rec", records("ekka", type="mcast"))
def test_packet_matches_the_vm(rec: dict) -> None:
    packet = Handshake(rec["msg"], rec["node"], rec["cluster"], cookie_hash(rec["cookie"]))
    assert packet.cookie_hash == rec["cookie_hash"]
    assert encode_handshake(packet).hex() == rec["etf"]  # what OTP 25 sends
    assert encode_handshake(packet, minor_version=2).hex() == rec["etf_v2"]  # OTP 26+
    for etf in (rec["etf"], rec["etf_v2"]):
        data = bytes.fromhex(etf)
        assert decode_handshake(data) == packet
        assert exact_equal(binary_to_term(data), from_typed(rec["term"]))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "corrupt data"),
        (b"\x83\x68\x04\x64", "corrupt data"),
        (b"GET / HTTP/1.1\r\n", "corrupt data"),
        (term_to_binary([1, 2, 3]), "bad term"),
        (term_to_binary((Atom("ping"), Atom("n@h"), Atom("ekka"))), "bad term"),
        (term_to_binary((Atom("hello"), Atom("n@h"), Atom("ekka"), 1)), "bad handshake"),
        (term_to_binary((Atom("ping"), b"n@h", Atom("ekka"), 1)), "bad handshake"),
        (term_to_binary((Atom("ping"), Atom("n@h"), "ekka", 1)), "bad handshake"),
        (term_to_binary((Atom("ping"), Atom("n@h"), Atom("ekka"), 1.0)), "bad handshake"),
    ],
)
def test_decode_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_handshake(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_random_bytes_only_raises_value_error(data: bytes) -> None:
    for candidate in (data, b"\x83" + data, b"\x83h\x04" + data):
        try:
            packet = decode_handshake(candidate)
        except ValueError:
            continue
        assert packet.kind in ("ping", "pong") and type(packet.cookie_hash) is int


def test_options_are_checked() -> None:
    with pytest.raises(ValueError):
        McastOptions(addr="not-an-ip")
    with pytest.raises(ValueError):
        McastOptions(ports=())
    with pytest.raises(ValueError):
        McastOptions(ttl=256)
    assert McastOptions(ports=[4369, 4370]).ports == (4369, 4370)


# ---------------------------------------------------------------- live multicast on lo


def _probe_loopback_multicast() -> bool:
    port = free_port(socket.SOCK_DGRAM)
    with _group_socket(port) as s:
        s.settimeout(2.0)
        s.sendto(b"probe", (GROUP, port))
        try:
            return s.recvfrom(64)[0] == b"probe"
        except OSError:
            return False


@pytest.fixture(scope="module")
def loopback_multicast() -> Iterator[None]:
    """Multicast on ``lo`` works (switched on for the module if needed and allowed)."""
    if _probe_loopback_multicast():
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("multicast does not work on lo and only root may enable it")
    subprocess.run(["ip", "link", "set", "lo", "multicast", "on"], check=False)
    try:
        if not _probe_loopback_multicast():
            pytest.skip("multicast on lo still does not work after enabling it")
        yield
    finally:
        subprocess.run(["ip", "link", "set", "lo", "multicast", "off"], check=False)


@contextlib.contextmanager
def _group_socket(port: int) -> Iterator[socket.socket]:
    """A plain socket in the group on ``port`` (as a foreign sender or listener)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        iface = socket.inet_aton(LOOPBACK)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(GROUP) + iface)
        yield s
    finally:
        s.close()


def _options(*ports: int, window: float = 0.5) -> McastOptions:
    return McastOptions(addr=GROUP, ports=ports, iface=LOOPBACK, ttl=1, window=window)


@contextlib.asynccontextmanager
async def _nodes(
    port: int, *names: str, cluster: str | None = "pytestcl", cookie: str = COOKIE
) -> AsyncIterator[list[McastStrategy]]:
    strategies = [McastStrategy(n, cookie, cluster, _options(port)) for n in names]
    try:
        for s in strategies:
            await s.start()
        yield strategies
    finally:
        for s in strategies:
            await s.close()


async def _recv(sock: socket.socket, predicate: object) -> bytes:
    """The next datagram on ``sock`` for which ``predicate(data)`` holds."""
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    while True:
        data = await loop.sock_recv(sock, 65536)
        if predicate(data):  # type: ignore[operator]
            return data


live = pytest.mark.usefixtures("loopback_multicast")


@live
async def test_three_nodes_discover_each_other() -> None:
    port = free_port(socket.SOCK_DGRAM)
    names = ["n1@127.0.0.1", "n2@127.0.0.1", "n3@127.0.0.1"]
    async with _nodes(port, *names) as (n1, n2, n3):
        found = await asyncio.wait_for(n1.discover(), WAIT)
        assert found == names  # self first, then the seen nodes sorted
        # Seen also collects the pinging node on the others, until their next round.
        assert n2.responder.peek_seen()[:1] == ["n1@127.0.0.1"]
        assert await asyncio.wait_for(n3.discover(), WAIT) == [
            "n3@127.0.0.1",
            "n1@127.0.0.1",
            "n2@127.0.0.1",
        ]
        # A round clears what it returned; n3's ping and n2's pong to it came since.
        assert n1.responder.peek_seen() == ["n2@127.0.0.1", "n3@127.0.0.1"]


@live
async def test_pong_is_multicast_to_the_ping_port_byte_exact() -> None:
    port = free_port(socket.SOCK_DGRAM)
    async with _nodes(port, "py@127.0.0.1") as (py,):
        with _group_socket(port) as probe:
            ping = encode_handshake(
                Handshake("ping", "probe@127.0.0.1", "pytestcl", cookie_hash(COOKIE))
            )
            probe.sendto(ping, (GROUP, port))
            pong = await asyncio.wait_for(_recv(probe, lambda d: d != ping), WAIT)
            expected = Handshake("pong", "py@127.0.0.1", "pytestcl", cookie_hash(COOKIE))
            assert pong == encode_handshake(expected)  # OTP 25 encoding by default
            await asyncio.wait_for(py.wait_seen("probe@127.0.0.1"), WAIT)


@live
async def test_garbage_and_foreign_packets_are_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    good_hash = cookie_hash(COOKIE)
    bad = [
        b"\x00garbage",
        b"\x83P\x00\x00\x10\x00x\x9c",  # truncated compressed term
        term_to_binary({"a": 1}),
        encode_handshake(Handshake("ping", "other@127.0.0.1", "othercl", good_hash)),
        encode_handshake(Handshake("ping", "thief@127.0.0.1", "pytestcl", good_hash + 1)),
        encode_handshake(Handshake("pong", "thief2@127.0.0.1", "pytestcl", 0)),
    ]
    caplog.set_level(logging.WARNING, logger="pyekka.discovery.mcast")
    async with _nodes(port, "py@127.0.0.1") as (py,):
        with _group_socket(port) as probe:
            for data in bad:
                probe.sendto(data, (GROUP, port))
            # Datagrams on lo from one socket arrive in order: this one comes last.
            sentinel = Handshake("pong", "friend@127.0.0.1", "pytestcl", good_hash)
            probe.sendto(encode_handshake(sentinel, minor_version=2), (GROUP, port))
            await asyncio.wait_for(py.wait_seen("friend@127.0.0.1"), WAIT)
        assert py.responder.peek_seen() == ["friend@127.0.0.1"]
        assert py.responder.is_open
        text = caplog.text
        assert text.count("corrupt data") == 2
        assert "bad term" in text
        assert text.count("bad handshake") == 3


@live
async def test_unset_cluster_names_never_match() -> None:
    """ekka's quirk: senders write ``undefined``, receivers expect ``ekka``."""
    port = free_port(socket.SOCK_DGRAM)
    async with _nodes(port, "a@127.0.0.1", "b@127.0.0.1", cluster=None) as (a, b):
        with _group_socket(port) as probe:
            b.responder.ping()
            assert encode_handshake(
                Handshake("ping", "b@127.0.0.1", "undefined", cookie_hash(COOKIE))
            ) == await asyncio.wait_for(_recv(probe, lambda d: b"b@127" in d), WAIT)
            sentinel = Handshake("pong", "friend@127.0.0.1", "ekka", cookie_hash(COOKIE))
            probe.sendto(encode_handshake(sentinel), (GROUP, port))
            await asyncio.wait_for(a.wait_seen("friend@127.0.0.1"), WAIT)
        assert a.responder.peek_seen() == ["friend@127.0.0.1"]


@live
async def test_own_packets_are_ignored() -> None:
    port = free_port(socket.SOCK_DGRAM)
    async with _nodes(port, "solo@127.0.0.1") as (solo,):
        assert await asyncio.wait_for(solo.discover(), WAIT) == ["solo@127.0.0.1"]


@live
async def test_port_fallback_and_all_ports_taken() -> None:
    taken, spare = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocker:
        blocker.bind(("0.0.0.0", taken))  # no SO_REUSEADDR: the port cannot be shared
        strategy = McastStrategy("x@127.0.0.1", COOKIE, "c", _options(taken, spare))
        async with strategy:
            await strategy.start()
            assert strategy.responder.port == spare
        only_taken = McastStrategy("y@127.0.0.1", COOKIE, "c", _options(taken))
        async with only_taken:
            with pytest.raises(DiscoveryError, match="in use"):
                await only_taken.discover()


async def test_names_that_cannot_be_atoms_are_refused() -> None:
    with pytest.raises(ValueError):
        McastResponder("nohost", COOKIE)
    with pytest.raises(ValueError):
        McastResponder("x" * 300 + "@h", COOKIE)


# ---------------------------------------------------------------- against a real VM

_ERLANG_PEER = """
{{ok, S}} = gen_udp:open({port}, [binary, {{active, false}}, {{reuseaddr, true}},
    {{multicast_if, {{127,0,0,1}}}}, {{multicast_ttl, 1}}, {{multicast_loop, true}},
    {{add_membership, {{{{239,192,0,1}}, {{127,0,0,1}}}}}}]),
Hash = erlang:phash2(erlang:get_cookie()),
ok = gen_udp:send(S, {{239,192,0,1}}, {port},
    term_to_binary({{ping, node(), erlcl, Hash}})),
Wait = fun W() ->
    case gen_udp:recv(S, 0, 10000) of
        {{ok, {{_, _, D}}}} ->
            case binary_to_term(D) of
                {{pong, N, _, _}} = T when N =/= node() ->
                    io:format("PONG ~w ~w ~w~n", [T, Hash, binary_to_list(D)]);
                _ -> W()
            end;
        Other -> io:format("ERROR ~p~n", [Other])
    end
end,
Wait(), halt().
"""


@live
async def test_real_erlang_peer(otp: OtpRuntime) -> None:
    """A VM with ekka's socket options shares the port, pings us and decodes our pong."""
    port = free_port(socket.SOCK_DGRAM)
    # A VM without distribution: node() is nonode@nohost, its cookie the atom nocookie.
    async with _nodes(port, "py@127.0.0.1", cluster="erlcl", cookie="nocookie") as (py,):
        proc = await asyncio.create_subprocess_exec(
            *otp.command("-eval", _ERLANG_PEER.format(port=port)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=clean_env(),
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
            await asyncio.wait_for(py.wait_seen("nonode@nohost"), WAIT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = out.decode()
    assert text.startswith("PONG {pong,'py@127.0.0.1',erlcl,"), text
    term_hash, vm_hash = text.split()[1].rsplit(",", 1)[1].rstrip("}"), text.split()[2]
    assert int(term_hash) == int(vm_hash) == cookie_hash("nocookie")
    raw = bytes(int(b) for b in text.split(None, 3)[3].strip().strip("[]").split(","))
    assert raw == encode_handshake(Handshake("pong", "py@127.0.0.1", "erlcl", int(vm_hash)))
