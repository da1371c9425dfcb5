"""Autocluster with static seeds: nodes started from .conf and .config files form one
cluster by themselves, a new node joins it, and ``python -m pyekka start -c FILE``
nodes do the same (command-line flags overriding the file)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from pyekka.discovery.autocluster import AutoclusterState
from pyekka.node.node import Node
from pyekka.term.types import Atom
from pyekka.testing.processes import os_process
from tests.autocluster_nodes import COOKIE, Fleet, one_cluster, static_conf
from tests.cli_nodes import CliEnv, pyekka_argv, run
from tests.otp_nodes import HOST, next_number

A = Atom


def _names(count: int) -> list[str]:
    return [f"st{next_number()}@{HOST}" for _ in range(count)]


def _conf(tmp_path: Path, base: int, name: str, seeds: list[str], **extra: object) -> Path:
    return static_conf(tmp_path, base, name, seeds, "autotest", **extra)


def _config(tmp_path: Path, base: int, name: str, seeds: list[str]) -> Path:
    alive = name.split("@")[0]
    seed_list = ", ".join(f"'{s}'" for s in seeds)
    path = tmp_path / f"{alive}.config"
    path.write_text(
        f"[{{pyekka, [{{node_name, '{name}'}}, {{cookie, '{COOKIE}'}},\n"
        f'            {{data_dir, "{tmp_path / alive}"}}, {{epmd, false}},\n'
        f'            {{dist_base_port, {base}}}, {{dist_interface, "{HOST}"}}]}},\n'
        f" {{ekka, [{{cluster_name, autotest}},\n"
        f"         {{cluster_discovery, {{static, [{{seeds, [{seed_list}]}}]}}}}]}}].\n"
    )
    return path


async def test_three_nodes_form_one_cluster_and_a_fourth_joins(
    fleet: Fleet, tmp_path: Path, ekka_base: int
) -> None:
    names = _names(4)
    seeds = names[:3]
    files = [
        _conf(tmp_path, ekka_base, names[0], seeds),
        _config(tmp_path, ekka_base, names[1], seeds),  # sys.config syntax
        _conf(tmp_path, ekka_base, names[2], seeds),
    ]
    nodes = [await fleet.start(f) for f in files]
    await one_cluster(nodes)
    assert {r.autocluster.status().strategy for r in nodes} == {"static"}
    # the joiners all joined the same node, the oldest member; that one joined none
    results = [r.autocluster.last_result for r in nodes]
    targets = {res.target for res in results if res is not None and res.joined}
    assert len(targets) == 1, [r.lines for r in nodes]
    (target,) = targets
    first = next(r for r in nodes if r.name.name == target)
    assert not any("joined" in line for line in first.lines), first.lines

    fourth = await fleet.start(_conf(tmp_path, ekka_base, names[3], names))
    await one_cluster([*nodes, fourth])
    assert fourth.autocluster.last_result is not None
    assert fourth.autocluster.last_result.joined is True


async def test_status_is_served_to_other_nodes(
    fleet: Fleet, tmp_path: Path, ekka_base: int
) -> None:
    names = _names(2)
    alone = await fleet.start(_conf(tmp_path, ekka_base, names[0], [names[0], names[1]]))
    await alone.autocluster.wait_for(lambda a: a.rounds >= 2)
    status = alone.autocluster.status()
    assert status.state in (
        AutoclusterState.SLEEPING,
        AutoclusterState.WAITING,
        AutoclusterState.RUNNING,
    )
    last = status.last_result
    assert last is not None and last.discovered == tuple(names) and last.alive == (names[0],)
    assert last.lock == "ignore" and last.registered == "ignore" and not last.in_cluster
    async with Node(
        f"probe{next_number()}@{HOST}",
        COOKIE,
        hidden=True,
        listen=False,
        epmd=False,
        dist_base_port=ekka_base,
    ) as probe:
        term = await probe.rpc(names[0], "pyekka_ctl", "discovery", [], 10)
    assert term[A("strategy")] == A("static")
    assert term[A("last_result")][A("alive")] == [A(names[0])]
    assert term[A("last_result")][A("in_cluster")] is False


async def test_pyekka_start_c_nodes_form_one_cluster(
    tmp_path: Path, ekka_base: int, cli_env: CliEnv
) -> None:
    """Three ``python -m pyekka start -c FILE`` processes with ekka's own timings. The
    files carry a wrong cookie, base port and seed list: the flags override them."""
    names = _names(3)
    files = [_conf(tmp_path, 1, name, [name], **{"node.cookie": "wrong-cookie"}) for name in names]
    flags = [
        "--cookie",
        COOKIE,
        "--dist-base-port",
        str(ekka_base),
        "--set",
        f"cluster.static.seeds={','.join(names)}",
    ]
    env = cli_env()
    async with contextlib.AsyncExitStack() as stack:
        procs = [
            await stack.enter_async_context(
                os_process(pyekka_argv("start", "-c", str(f), *flags), env)
            )
            for f in files
        ]
        for proc in procs:
            await proc.expect(r"discovery static <StaticStrategy", timeout=30)
        for proc in procs:
            await proc.expect(r"autocluster round \d+: .*, in a cluster", timeout=30)
        async with Node(
            f"probe{next_number()}@{HOST}",
            COOKIE,
            hidden=True,
            listen=False,
            epmd=False,
            dist_base_port=ekka_base,
        ) as probe:
            for name in names:
                nodes = await probe.rpc(name, "ekka_mnesia", "cluster_nodes", [A("all")], 10)
                assert sorted(n.name for n in nodes) == sorted(names)
        # pyekka ctl status shows the strategy and the last round
        dist = ["--cookie", COOKIE, "--no-epmd", "--dist-base-port", str(ekka_base)]
        shown = await run(env, "ctl", *dist, "--node", names[1], "status")
        assert shown.status == 0, shown
        rows = dict(line.split(None, 1) for line in shown.out.splitlines() if " " in line)
        assert rows["discovery"].startswith("static <StaticStrategy seeds=")
        assert rows["autocluster"].startswith("done, ")
        got = await run(env, "ctl", *dist, "--node", names[2], "status", "--json")
        assert got.status == 0, got
        discovery = json.loads(got.out)["discovery"]
        assert (discovery["strategy"], discovery["state"]) == ("static", "done")
        assert discovery["last_result"]["in_cluster"] is True
        assert sorted(discovery["last_result"]["discovered"]) == sorted(names)
