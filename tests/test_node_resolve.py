"""Finding a peer: ``ERL_EPMD_PORT`` as OTP reads it, host checks and resolution,
EPMD lookups and ekka's epmd-less port rule; live against OTP nodes and epmd."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from pyekka.node.connect_error import ConnectError, ConnectFailure
from pyekka.node.epmd import (
    EpmdServer,
    EpmdUnavailable,
    configured_epmd_port,
    register,
)
from pyekka.node.resolve import (
    EKKA_EPMD_VERSION,
    HostNotFound,
    IllegalNodeName,
    NoEpmd,
    PeerAddress,
    PeerResolver,
    PortNotFound,
    own_node_name,
    resolve_host,
    split_peer,
)
from pyekka.testing.epmd import HOST, otp_env, ping_node, real_epmd
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.processes import free_port, os_process

TIMEOUT = 30.0
COOKIE = "resolvetestcookie"


# ------------------------------------------------------------------ ERL_EPMD_PORT


@pytest.mark.parametrize(
    ("env", "arg", "expected"),
    [
        (None, None, 4369),
        ("4400", None, 4400),
        (None, "4500", 4500),
        (None, 4500, 4500),
        ("4400", "4500", 4400),  # the environment variable comes first
        ("+4400", None, 4400),  # list_to_integer accepts a sign
        ("04400", None, 4400),
        (" 4400", None, ValueError),  # ...but no blanks
        ("4400 ", None, ValueError),
        ("", "4500", ValueError),  # an empty variable still wins, and is no integer
        ("0x10", None, ValueError),
        ("4_400", None, ValueError),
        ("\u0664\u0664", None, ValueError),  # non-ASCII digits
        ("-1", None, ValueError),
        ("0", None, ValueError),
        ("65536", None, ValueError),
    ],
)
def test_configured_epmd_port(env: str | None, arg: str | int | None, expected: object) -> None:
    environ = {} if env is None else {"ERL_EPMD_PORT": env}
    if expected is ValueError:
        with pytest.raises(ValueError):
            configured_epmd_port(environ, arg)
    else:
        assert configured_epmd_port(environ, arg) == expected


def test_configured_epmd_port_reads_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", "4411")
    assert configured_epmd_port() == 4411
    monkeypatch.delenv("ERL_EPMD_PORT")
    assert configured_epmd_port() == 4369


NAMES_EXPR = 'io:format("NAMES ~p~n", [catch erl_epmd:names({127,0,0,1})]), halt().'


async def _vm_names(otp: OtpRuntime, env: str | None, arg: str | None) -> str:
    """What ``erl_epmd:names/1`` answers in a VM started with that env and argument."""
    argv = [str(otp.erl), "-noshell"]
    if arg is not None:
        argv += ["-epmd_port", arg]
    argv += ["-eval", NAMES_EXPR]
    extra = {} if env is None else {"ERL_EPMD_PORT": env}
    async with os_process(argv, otp_env(**extra)) as vm:
        match = await vm.expect(r"^NAMES (.*)$")
        await vm.proc.wait()
        return match.group(1)


async def test_epmd_port_choice_matches_the_vm(otp: OtpRuntime) -> None:
    """Two epmds, each knowing one name: the VM and our rule must pick the same one."""
    a, b = EpmdServer(), EpmdServer()
    await a.start(HOST, 0)
    await b.start(HOST, 0)
    try:
        on_a = await register("on_a", 1111, epmd_port=a.port)
        on_b = await register("on_b", 2222, epmd_port=b.port)
        cases = [
            (str(a.port), None),
            (None, str(b.port)),
            (str(a.port), str(b.port)),
            (f"+{a.port}", str(b.port)),
            (f" {a.port}", str(b.port)),
            ("", str(b.port)),
        ]
        answers = await asyncio.gather(*(_vm_names(otp, env, arg) for env, arg in cases))
        for (env, arg), answer in zip(cases, answers, strict=True):
            environ = {} if env is None else {"ERL_EPMD_PORT": env}
            try:
                port = configured_epmd_port(environ, arg)
            except ValueError:
                assert "badarg" in answer, (env, arg, answer)
                continue
            assert port in (a.port, b.port)
            expected, other = ("on_a", "on_b") if port == a.port else ("on_b", "on_a")
            assert f'"{expected}"' in answer, (env, arg, answer)
            assert f'"{other}"' not in answer, (env, arg, answer)
        await on_a.close()
        await on_b.close()
    finally:
        await a.close()
        await b.close()


# ------------------------------------------------------------------ host part


@pytest.mark.parametrize(
    ("node", "long_names", "family", "expected"),
    [
        ("a@localhost", False, socket.AF_INET, ("a", "localhost")),
        ("a@host-1", False, socket.AF_INET, ("a", "host-1")),
        ("a@host.example.com", False, socket.AF_INET, IllegalNodeName),
        ("a@127.0.0.1", False, socket.AF_INET, IllegalNodeName),  # has dots
        ("a@host.example.com", True, socket.AF_INET, ("a", "host.example.com")),
        ("a@127.0.0.1", True, socket.AF_INET, ("a", "127.0.0.1")),
        ("a@localhost", True, socket.AF_INET, IllegalNodeName),  # not fully qualified
        ("a@::1", True, socket.AF_INET6, ("a", "::1")),  # an IPv6 address needs no dot
        ("a@::1", True, socket.AF_INET, IllegalNodeName),
        ("a@::1", False, socket.AF_INET6, ("a", "::1")),
        ("nohost", False, socket.AF_INET, IllegalNodeName),
        ("@host", False, socket.AF_INET, IllegalNodeName),
        ("a@", False, socket.AF_INET, IllegalNodeName),
        ("a@b@c", False, socket.AF_INET, IllegalNodeName),
    ],
)
def test_split_peer(
    node: str, long_names: bool, family: socket.AddressFamily, expected: object
) -> None:
    if expected is IllegalNodeName:
        with pytest.raises(IllegalNodeName) as info:
            split_peer(node, long_names=long_names, family=family)
        assert info.value.node == node
        assert isinstance(info.value, ValueError)
        assert info.value.reason is ConnectFailure.BAD_NAME
    else:
        assert split_peer(node, long_names=long_names, family=family) == expected


async def test_resolve_host() -> None:
    assert await resolve_host("localhost") == "127.0.0.1"
    assert await resolve_host("127.0.0.1") == "127.0.0.1"
    assert await resolve_host("::1", family=socket.AF_INET6) == "::1"
    with pytest.raises(HostNotFound) as info:
        await resolve_host("no-such-host.invalid", timeout=TIMEOUT)
    assert isinstance(info.value, ConnectError)
    assert info.value.reason is ConnectFailure.UNKNOWN_HOST
    assert str(info.value) == f"no-such-host.invalid: {info.value.detail}"
    with pytest.raises(HostNotFound):
        await resolve_host("127.0.0.1", family=socket.AF_INET6, timeout=TIMEOUT)


# ------------------------------------------------------------------ ekka's rule


@pytest.mark.parametrize(
    ("node", "long_names", "base", "port"),
    [
        ("emqx@127.0.0.1", True, 4370, 4370),
        ("emqx1@127.0.0.1", True, 4370, 4371),
        ("n007@localhost", False, 4370, 4377),
        ("a1b2@localhost", False, 4370, 4372),
        ("node12345@localhost", False, 4370, 16715),
        ("n60000@localhost", False, 4370, 4370),
        ("n99999@localhost", False, 4370, 44369),
        ("n5@localhost", False, 20000, 20005),
    ],
)
async def test_ekka_rule(node: str, long_names: bool, base: int, port: int) -> None:
    resolver = PeerResolver(long_names=long_names, use_epmd=False, dist_base_port=base)
    alive, host = node.split("@")
    assert await resolver.resolve(node) == PeerAddress(
        node, alive, host, "127.0.0.1", port, EKKA_EPMD_VERSION
    )
    assert resolver.listen_port(node) == port


@pytest.mark.parametrize(
    ("node", "base"),
    [("remsh_emqx@localhost", 4370), ("n99999@localhost", 30000)],
)
async def test_ekka_rule_without_a_port(node: str, base: int) -> None:
    resolver = PeerResolver(use_epmd=False, dist_base_port=base)
    with pytest.raises(PortNotFound) as info:
        await resolver.resolve(node)
    assert info.value.reason is ConnectFailure.UNKNOWN_NODE


def test_listen_port() -> None:
    assert PeerResolver().listen_port("a1@localhost") == 0  # epmd: any port
    assert PeerResolver(use_epmd=False).listen_port("a1@localhost") == 4371
    assert PeerResolver(use_epmd=False).listen_port("remsh1@localhost") == 0
    with pytest.raises(ValueError):
        PeerResolver(use_epmd=False, dist_base_port=65000).listen_port("a999@localhost")


# ------------------------------------------------------------------ the epmd rule


async def test_epmd_rule(epmd_server: EpmdServer) -> None:
    resolver = PeerResolver(epmd_port=epmd_server.port)
    async with (
        await register("peer", 40000, epmd_port=epmd_server.port),
        await register("oldpeer", 40001, epmd_port=epmd_server.port, highest_version=5),
    ):
        assert await resolver.resolve("peer@localhost") == PeerAddress(
            "peer@localhost", "peer", "localhost", "127.0.0.1", 40000, 6
        )
        assert (await resolver.resolve("oldpeer@localhost")).version == 5
        long_resolver = PeerResolver(long_names=True, epmd_port=epmd_server.port)
        assert (await long_resolver.resolve("peer@127.0.0.1")).port == 40000
        with pytest.raises(PortNotFound, match="does not know 'nobody'") as info:
            await resolver.resolve("nobody@localhost")
        assert info.value.reason is ConnectFailure.UNKNOWN_NODE
        with pytest.raises(IllegalNodeName):
            await resolver.resolve("peer@127.0.0.1")  # short names: no dots
        with pytest.raises(HostNotFound):
            await long_resolver.resolve("peer@no-such-host.invalid")


async def test_epmd_rule_reads_erl_epmd_port(
    epmd_server: EpmdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", str(epmd_server.port))
    async with await register("envpeer", 40002):  # the client reads it too
        assert (await PeerResolver().resolve("envpeer@localhost")).port == 40002


async def test_epmd_rule_without_epmd() -> None:
    resolver = PeerResolver(epmd_port=free_port())
    with pytest.raises(NoEpmd) as info:
        await resolver.resolve("peer@localhost")
    assert isinstance(info.value, PortNotFound)
    assert isinstance(info.value.__cause__, EpmdUnavailable)
    assert info.value.reason is ConnectFailure.NO_EPMD


async def test_epmd_rule_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, HOST, 0)
    try:
        resolver = PeerResolver(epmd_port=server.sockets[0].getsockname()[1], timeout=0.2)
        with pytest.raises(NoEpmd, match="did not answer"):
            await resolver.resolve("peer@localhost")
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------ own name


def test_own_node_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "box.example.com")
    monkeypatch.setattr(socket, "getfqdn", lambda: "box.example.com")
    assert own_node_name("a", long_names=False) == "a@box"
    assert own_node_name("a", long_names=True) == "a@box.example.com"
    assert own_node_name("a@other", long_names=False) == "a@other"
    with pytest.raises(ValueError):
        own_node_name("a@other.example.com", long_names=False)
    with pytest.raises(ValueError):
        own_node_name("a b", long_names=False)
    monkeypatch.setattr(socket, "getfqdn", lambda: "box")
    with pytest.raises(ValueError, match="not fully qualified"):
        own_node_name("a", long_names=True)


# ------------------------------------------------------------------ live OTP nodes


@contextlib.asynccontextmanager
async def _connectable(address: PeerAddress) -> AsyncIterator[None]:
    _, writer = await asyncio.open_connection(address.ip, address.port)
    try:
        yield
    finally:
        writer.close()


async def test_resolve_otp_nodes_through_real_epmd(otp: OtpRuntime) -> None:
    short_port, long_port = free_port(), free_port()
    async with (
        real_epmd(otp) as epmd_proc,
        ping_node(
            otp,
            "rs@localhost",
            epmd_proc.port,
            "-kernel",
            "inet_dist_listen_min",
            str(short_port),
            "inet_dist_listen_max",
            str(short_port),
            cookie=COOKIE,
        ),
        ping_node(
            otp,
            "rl@127.0.0.1",
            epmd_proc.port,
            "-kernel",
            "inet_dist_listen_min",
            str(long_port),
            "inet_dist_listen_max",
            str(long_port),
            name_flag="-name",
            cookie=COOKIE,
        ),
    ):
        epmd_port = epmd_proc.port
        short = await PeerResolver(epmd_port=epmd_port).resolve("rs@localhost")
        assert (short.ip, short.port, short.version) == ("127.0.0.1", short_port, 6)
        long = await PeerResolver(long_names=True, epmd_port=epmd_port).resolve("rl@127.0.0.1")
        assert (long.ip, long.port, long.version) == ("127.0.0.1", long_port, 6)
        async with _connectable(short), _connectable(long):
            pass


async def test_both_rules_agree_on_a_node_listening_on_its_ekka_port(
    otp: OtpRuntime, epmd_server: EpmdServer
) -> None:
    port = free_port()
    base = port - 7
    async with ping_node(
        otp,
        "n7@localhost",
        epmd_server.port,
        "-kernel",
        "inet_dist_listen_min",
        str(port),
        "inet_dist_listen_max",
        str(port),
        cookie=COOKIE,
    ):
        by_epmd = await PeerResolver(epmd_port=epmd_server.port).resolve("n7@localhost")
        ekka = PeerResolver(use_epmd=False, dist_base_port=base)
        by_rule = await ekka.resolve("n7@localhost")
        assert by_epmd.port == by_rule.port == port == ekka.listen_port("n7@localhost")
        async with _connectable(by_rule):
            pass
