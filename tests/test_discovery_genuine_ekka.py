"""Autocluster next to GENUINE ekka 0.8 nodes using the same strategy (run only when
``PYEKKA_EKKA_EBIN`` is set, see ``tests/genuine_ekka.py``; OTP runtimes with mnesia).

Two genuine ekka nodes run ``ekka:autocluster()`` with ``cluster_discovery`` set in
their ``ekka`` application environment, and one pyekka node is started in-process
from a ``.conf`` file (default guid policy ``defer``) with the same strategy, seeds
and cluster name. Expected: the genuine nodes form one mnesia cluster around the
oldest genuine node (genuine ``find_oldest_node`` asks every discovered node,
the pyekka node included, for ``ekka_membership:local_member()`` and never picks the
pyekka node, whose deferred guid is younger), the pyekka node's autocluster joins the
oldest node it finds, a genuine one, so it attaches: it is an ``up`` member of every
genuine node's ``ekka_membership:members()``, never one of their mnesia ``db_nodes``,
and its ``Cluster.status()`` lists the genuine nodes. Strategies: ``static``,
``mcast`` (on ``lo``) and ``etcd`` (API v2, a real etcd server).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.member import MemberStatus, MnesiaStatus
from pyekka.discovery.autocluster import AutoclusterState
from pyekka.term.types import Atom
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode
from pyekka.testing.wait import wait_until
from tests import test_discovery_etcd as etcd_tests
from tests.autocluster_nodes import Fleet, Running, write_conf
from tests.discovery_servers import Etcd, free_port
from tests.genuine_ekka import GENUINE_MARKS, genuine_ekka_starter, load_json_decoder, q
from tests.otp_nodes import COOKIE, HOST, next_number
from tests.test_discovery_etcd import _raw
from tests.test_discovery_mcast import GROUP, loopback_multicast  # noqa: F401

pytestmark = GENUINE_MARKS

# one etcd for the module and a fresh key prefix per test (the etcd discovery tests')
etcd_server = etcd_tests.etcd
key_prefix = etcd_tests.prefix

A = Atom

CLUSTER = "genuinemix"

GENUINE_TIMEOUT = 60.0
"""Seconds for genuine autocluster to settle (its loop sleeps 5 s between rounds,
``ekka_cluster:join/1`` restarts ekka; two busy cores)."""

DB_NODES = "lists:sort(mnesia:system_info(db_nodes))"


@pytest.fixture
def make_ekka(otp: OtpRuntime, make_otp: Any, tmp_path: Path) -> Callable[[], OtpNode]:
    """Start an OTP node running genuine ekka (mnesia in a fresh directory), named in
    ``cluster_name`` :data:`CLUSTER`."""
    return genuine_ekka_starter(otp, make_otp, tmp_path, "-ekka", "cluster_name", CLUSTER)


def _py_conf(tmp_path: Path, base: int, name: str, keys: dict[str, Any]) -> Path:
    alive = name.split("@")[0]
    return write_conf(
        tmp_path / f"{alive}.conf",
        {
            "node.name": name,
            "node.cookie": COOKIE,
            "node.data_dir": tmp_path / alive,
            "node.epmd": "off",
            "node.dist_base_port": base,
            "node.dist_interface": HOST,
            "cluster.name": CLUSTER,
            **keys,
        },
    )


async def _members_of(erl: OtpNode) -> dict[Atom, tuple]:
    """``ekka_membership:members()`` of a genuine node, after its pending casts."""
    table = await erl.aeval("sys:get_state(ekka_membership), ekka_membership:members()")
    return {m[1]: m for m in table}


async def _lists_up(erl: OtpNode, p: Running) -> bool:
    entry = (await _members_of(erl)).get(p.name)
    return (
        entry is not None
        and entry[3] == p.cluster.local_member().guid
        and entry[5] == A("up")
        and entry[6] is False
    )


async def _genuine_settled(erls: list[OtpNode], want: list[Atom]) -> None:
    """Wait until every genuine node of ``erls`` runs in the mnesia cluster ``want``
    (checking on the way that no other node, a pyekka one, ever is in their
    ``db_nodes``) and its autocluster loop has ended: no process runs ``ekka_autocluster`` code.
    (ekka's ``autocluster_lock`` is no sign of that: the loop releases it before
    sleeping 5 s and running one more round, whose discovery would share the mcast
    server's seen set with any other discovery then.)"""
    state = (
        "{lists:sort(mnesia:system_info(running_db_nodes)), mnesia:system_info(db_nodes), "
        "[P || P <- processes(), case erlang:process_info(P, current_stacktrace) of "
        "{current_stacktrace, S} -> lists:keymember(ekka_autocluster, 1, S); _ -> false end]}"
    )
    seen: dict[str, Any] = {}

    ever_db: set[Atom] = set()

    async def settled() -> bool:
        for erl in erls:
            seen[erl.atom.name] = await erl.aeval(state)
            ever_db.update(seen[erl.atom.name][1])
        return all((running, loops) == (want, []) for running, _db, loops in seen.values())

    await wait_until(
        settled,
        timeout=GENUINE_TIMEOUT,
        interval=0.5,
        message=f"genuine nodes run as {want} and their autocluster ended",
        observe=lambda: dict(seen),
    )
    assert ever_db == set(want), ever_db


async def _check_mixed(erls: list[OtpNode], p: Running) -> None:
    """The common expectations once genuine and pyekka autocluster are done."""
    e1 = erls[0]
    want = sorted((e.atom for e in erls), key=lambda a: a.name)
    cluster = p.cluster
    # the pyekka node attached to the genuine cluster, through its own autocluster
    await p.autocluster.wait_for(lambda a: a.state is AutoclusterState.DONE, GENUINE_TIMEOUT)
    result = p.autocluster.last_result
    assert result is not None and result.in_cluster, p.lines
    assert result.target == e1.atom.name and result.joined, p.lines
    await cluster.wait_for(
        lambda: (
            cluster.genuine_nodes() == want
            and all(
                (m := cluster.membership.lookup(e)) is not None and m.status is MemberStatus.UP
                for e in want
            )
        ),
        GENUINE_TIMEOUT,
    )
    assert cluster.db_nodes() == [p.name]
    for e in want:
        member = cluster.membership.lookup(e)
        assert member is not None and member.mnesia is MnesiaStatus.NOT_DB
    status = cluster.status()
    assert status.genuine_nodes == want
    assert status.running_nodes == [p.name]  # Python nodes only (README, mixed clusters)
    assert {m.node for m in status.members} == {*want, p.name}
    assert status.leader in want

    # every genuine node lists the pyekka node as an up member, never as a db node
    await wait_until(
        lambda: _all_up(erls, p),
        timeout=GENUINE_TIMEOUT,
        interval=0.5,
        message=f"{p.name.name} is an up member of every genuine node",
    )
    for erl in erls:
        assert await erl.aeval(DB_NODES) == want
        assert await erl.aeval("lists:sort(mnesia:system_info(running_db_nodes))") == want
        assert await erl.aeval("mnesia:table_info(schema, disc_copies)") != []
        assert await erl.aeval("ekka_membership:leader()") == status.leader
        assert await erl.aeval(f"ekka_node:is_running({q(p.name)}, ekka)") is False

    # genuine find_oldest_node over every discovered node, the pyekka one included
    names = ", ".join(q(n) for n in [*want, p.name])
    oldest = await erls[-1].aeval(
        f"{{Ms, Bad}} = rpc:multicall([{names}], ekka_membership, local_member, [], 30000), "
        "{[element(1, M) || M <- Ms], Bad, element(2, ekka_membership:oldest(Ms))}"
    )
    assert oldest == ([A("member")] * (len(want) + 1), [], e1.atom)
    for erl in erls:  # no "Bad members found", no discovery or join error
        assert [t for _level, t in erl.log_events() if "Ekka" in t] == []


async def _all_up(erls: list[OtpNode], p: Running) -> bool:
    for erl in erls:
        if not await _lists_up(erl, p):
            return False
    return True


async def test_static_seeds_genuine_nodes_cluster_and_the_pyekka_node_attaches(
    make_ekka: Callable[[], OtpNode], fleet: Fleet, tmp_path: Path, ekka_base: int
) -> None:
    """Start order, for a deterministic outcome: E1 then E2 start ekka (E1's guid is
    the oldest); P starts from its ``.conf`` and autoclusters at once: it sees E1 and
    E2 alive, finds E1 the oldest and attaches to it; only then do E1 and E2 run
    ``ekka:autocluster()``, so P is alive and answers their ``local_member`` rpc:
    E2 joins E1, E1 stays (the oldest is itself) until it is in a cluster."""
    e1, e2 = make_ekka(), make_ekka()
    p_name = A(f"gst{next_number()}@{HOST}")
    seeds = [e1.atom, e2.atom, p_name]
    conf = _py_conf(
        tmp_path,
        ekka_base,
        p_name.name,
        {"cluster.discovery": "static", "cluster.static.seeds": [s.name for s in seeds]},
    )
    p = await fleet.start(conf)
    assert p.name == p_name
    await p.autocluster.wait_for(lambda a: a.state is AutoclusterState.DONE, GENUINE_TIMEOUT)
    assert p.cluster.genuine_nodes() == [e1.atom], p.lines

    discovery = f"{{static, [{{seeds, [{', '.join(q(s) for s in seeds)}]}}]}}"
    for erl in (e1, e2):
        await erl.aeval(
            f"application:set_env(ekka, cluster_discovery, {discovery}), ekka:autocluster()"
        )
    await _genuine_settled([e1, e2], sorted([e1.atom, e2.atom], key=lambda a: a.name))
    await _check_mixed([e1, e2], p)


async def _genuine_discover(erl: OtpNode, strategy: str, options: str) -> list[Atom]:
    """One genuine ``ekka_cluster_<strategy>:discover(Options)`` round on ``erl``."""
    status, nodes = await erl.aeval(f"ekka_cluster_{strategy}:discover({options})")
    assert status == A("ok"), nodes
    return sorted(nodes, key=lambda a: a.name)


@pytest.mark.usefixtures("loopback_multicast")
async def test_mcast_genuine_nodes_cluster_and_the_pyekka_node_attaches(
    make_ekka: Callable[[], OtpNode], fleet: Fleet, tmp_path: Path, ekka_base: int
) -> None:
    """Everyone pings and pongs on one group and port of ``lo``. Start order, for a
    deterministic outcome: E1 then E2 start ekka (no mcast socket yet: genuine ekka
    opens it at its first discovery); P starts from its ``.conf`` and finds nobody;
    E1 runs ``ekka:autocluster()``: P's next round gets E1's pong, finds E1 the
    oldest and attaches to it (while E1's own rounds see P's pong and pick itself);
    only then does E2 run ``ekka:autocluster()`` and join E1. Afterwards one more
    genuine discovery round on each genuine node lists P (P still answers pings)."""
    port = free_port(socket.SOCK_DGRAM)
    e1, e2 = make_ekka(), make_ekka()
    p_name = A(f"gmc{next_number()}@{HOST}")
    conf = _py_conf(
        tmp_path,
        ekka_base,
        p_name.name,
        {
            "cluster.discovery": "mcast",
            "cluster.mcast.addr": GROUP,
            "cluster.mcast.ports": [port],
            "cluster.mcast.iface": HOST,
            "cluster.mcast.ttl": 1,
            "cluster.mcast.loop": "on",
        },
    )
    p = await fleet.start(conf)
    group = ",".join(GROUP.split("."))
    iface = ",".join(HOST.split("."))
    options = (
        f"[{{addr, {{{group}}}}}, {{ports, [{port}]}}, {{iface, {{{iface}}}}}, "
        "{ttl, 1}, {loop, true}]"
    )
    discovery = f"{{mcast, {options}}}"
    autocluster = f"application:set_env(ekka, cluster_discovery, {discovery}), ekka:autocluster()"

    await e1.aeval(autocluster)
    await p.autocluster.wait_for(lambda a: a.state is AutoclusterState.DONE, GENUINE_TIMEOUT)
    assert p.cluster.genuine_nodes() == [e1.atom], p.lines
    result = p.autocluster.last_result
    assert result is not None and e1.atom.name in result.discovered, p.lines
    assert e2.atom.name not in result.discovered, p.lines

    await e2.aeval(autocluster)
    want = sorted([e1.atom, e2.atom], key=lambda a: a.name)
    await _genuine_settled([e1, e2], want)
    await _check_mixed([e1, e2], p)
    seen = await asyncio.gather(*(_genuine_discover(e, "mcast", options) for e in (e1, e2)))
    for got in seen:
        assert got == sorted([*want, p.name], key=lambda a: a.name)


async def _etcd_v2_nodes(etcd: Etcd, prefix: str) -> list[str]:
    """The node names registered under ekka 0.8's v2 layout (none if no directory)."""
    status, answer = await _raw(
        "GET", f"{etcd.url}/v2/keys/{prefix}/{CLUSTER}/nodes?recursive=true"
    )
    if status == 404:
        return []
    assert status == 200, answer
    return sorted(n["key"].rsplit("/", 1)[1] for n in answer["node"].get("nodes", []))


async def test_etcd_v2_genuine_nodes_cluster_and_the_pyekka_node_attaches(
    make_ekka: Callable[[], OtpNode],
    fleet: Fleet,
    tmp_path: Path,
    ekka_base: int,
    etcd_server: Etcd,
    key_prefix: str,
) -> None:
    """One real etcd, ekka 0.8's v2 key layout on both sides (lock, ``nodes``
    directory with a TTL key per node). Start order, for a deterministic outcome:
    E1 then E2 start ekka; E1 runs ``ekka:autocluster()``: it takes the lock, finds
    nobody, registers; P starts from its ``.conf``: its round finds E1 registered,
    joins (attaches to) it and registers too; only then does E2 run
    ``ekka:autocluster()``: it finds E1 and P registered and alive, asks both for
    ``local_member`` and joins E1. Genuine ekka decodes etcd's JSON with jiffy (a NIF
    library): a plain-Erlang stand-in for its ``decode/2`` is loaded into the genuine
    nodes (``tests/genuine_ekka.py``)."""
    etcd, prefix = etcd_server, key_prefix
    e1, e2 = make_ekka(), make_ekka()
    for erl in (e1, e2):
        await load_json_decoder(erl, tmp_path)
    options = f'[{{server, ["{etcd.url}"]}}, {{prefix, "{prefix}"}}, {{node_ttl, 60000}}]'
    autocluster = (
        f"application:set_env(ekka, cluster_discovery, {{etcd, {options}}}), ekka:autocluster()"
    )
    await e1.aeval(autocluster)
    await wait_until(
        lambda: _registered_as(etcd, prefix, [e1.atom.name]),
        timeout=GENUINE_TIMEOUT,
        interval=0.2,
        message=f"{e1.atom.name} registered in etcd",
    )

    p_name = A(f"get{next_number()}@{HOST}")
    conf = _py_conf(
        tmp_path,
        ekka_base,
        p_name.name,
        {
            "cluster.discovery": "etcd",
            "cluster.etcd.server": etcd.url,
            "cluster.etcd.prefix": prefix,
            "cluster.etcd.node_ttl": "60s",
            "cluster.etcd.version": "v2",
        },
    )
    p = await fleet.start(conf)
    await p.autocluster.wait_for(lambda a: a.state is AutoclusterState.DONE, GENUINE_TIMEOUT)
    assert p.cluster.genuine_nodes() == [e1.atom], p.lines
    result = p.autocluster.last_result
    assert result is not None and result.discovered is not None, p.lines
    assert e1.atom.name in result.discovered and result.registered == "ok", p.lines
    assert sorted([e1.atom.name, p_name.name]) == await _etcd_v2_nodes(etcd, prefix)

    await e2.aeval(autocluster)
    want = sorted([e1.atom, e2.atom], key=lambda a: a.name)
    await _genuine_settled([e1, e2], want)
    await _check_mixed([e1, e2], p)
    assert await _etcd_v2_nodes(etcd, prefix) == sorted(n.name for n in [*want, p.name])
    # genuine discovery lists all three (it reads the keys pyekka wrote, and P's TTL key)
    for erl in (e1, e2):
        assert await _genuine_discover(erl, "etcd", options) == sorted(
            [*want, p.name], key=lambda a: a.name
        )
    # no lock left behind by either side
    status, _answer = await _raw("GET", f"{etcd.url}/v2/keys/{prefix}/{CLUSTER}/lock")
    assert status == 404


async def _registered_as(etcd: Etcd, prefix: str, names: list[str]) -> bool:
    return await _etcd_v2_nodes(etcd, prefix) == sorted(names)
