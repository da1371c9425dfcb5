"""The autocluster timings of a configuration file reach the loop: nodes started from
``.conf`` files with short ``cluster.autocluster.*`` values run their rounds with
them and form a static cluster fast, in-process and as ``pyekka start -c FILE``."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.config import load_config
from pyekka.discovery.autocluster import Autocluster, RoundResult
from pyekka.discovery.run import autoclustering_member, node_spec
from pyekka.testing.processes import os_process
from tests.autocluster_nodes import COOKIE, Running, one_cluster, static_conf
from tests.cli_nodes import CliEnv, pyekka_argv
from tests.otp_nodes import HOST, next_number

TIMINGS = {
    "cluster.autocluster.interval": "200ms",
    "cluster.autocluster.ignore_delay": "50ms",
    "cluster.autocluster.ready_timeout": "4s",
    "cluster.autocluster.member_timeout": "6s",
    "cluster.autocluster.ping_timeout": "2.5s",
}
TIMINGS_LINE = (
    "autocluster timings: interval 200ms, ignore_delay 50ms, ready_timeout 4s, "
    "member_timeout 6s, ping_timeout 2s500ms"
)


def _names(count: int) -> list[str]:
    return [f"tm{next_number()}@{HOST}" for _ in range(count)]


def _conf(tmp_path: Path, base: int, name: str, seeds: list[str], **extra: Any) -> Path:
    return static_conf(tmp_path, base, name, seeds, "timings", **{**TIMINGS, **extra})


@pytest.fixture
async def stack() -> AsyncIterator[contextlib.AsyncExitStack]:
    async with contextlib.AsyncExitStack() as s:
        yield s


async def _start(stack: contextlib.AsyncExitStack, config: Path) -> Running:
    """A node started from ``config`` with nothing but the file's settings."""
    settings = load_config(config, environ={})
    node = node_spec(settings, cookie=COOKIE).node()
    await node.start()
    stack.push_async_callback(node.stop)
    lines: list[str] = []
    configured = await stack.enter_async_context(
        autoclustering_member(node, settings, lines.append)
    )
    return Running(settings, node, configured, lines)


def _assert_configured(auto: Autocluster) -> None:
    assert auto.interval == 0.2 and auto.ignore_delay_ms == 50
    assert (auto.ready_timeout, auto.member_timeout, auto.ping_timeout) == (4.0, 6.0, 2.5)


async def test_nodes_from_conf_files_use_the_configured_timings(
    stack: contextlib.AsyncExitStack, tmp_path: Path, ekka_base: int
) -> None:
    names = _names(2)
    nodes = [await _start(stack, _conf(tmp_path, ekka_base, n, names)) for n in names]
    for running in nodes:
        _assert_configured(running.autocluster)
        assert TIMINGS_LINE in running.lines
    await one_cluster(nodes)


async def test_rounds_are_the_configured_interval_apart(
    stack: contextlib.AsyncExitStack, tmp_path: Path, ekka_base: int
) -> None:
    """A node whose only other seed never starts keeps trying: each round starts at
    least ``cluster.autocluster.interval`` after the previous one finished."""
    name, absent = _names(2)
    running = await _start(stack, _conf(tmp_path, ekka_base, name, [name, absent]))
    auto = running.autocluster
    _assert_configured(auto)
    results: list[RoundResult] = []

    def seen(a: Autocluster) -> bool:
        if a.last_result is not None and (not results or results[-1] is not a.last_result):
            results.append(a.last_result)
        return len(results) >= 3

    await auto.wait_for(seen)
    for before, after in itertools.pairwise(results):
        assert after.started - before.finished >= 0.2 - 0.01  # wall clock vs monotonic
    last = results[-1]
    assert last.discovered == (name, absent) and last.alive == (name,)
    assert not last.in_cluster and auto.rounds >= 3


async def test_pyekka_start_c_takes_timings_from_the_file_and_environment(
    tmp_path: Path, ekka_base: int, cli_env: CliEnv
) -> None:
    """``PYEKKA_CLUSTER__AUTOCLUSTER__INTERVAL`` overrides the file's interval; the
    node reports the timings its loop runs with, then its rounds."""
    name, absent = _names(2)
    conf = _conf(
        tmp_path, ekka_base, name, [name, absent], **{"cluster.autocluster.interval": "1h"}
    )
    env = cli_env(PYEKKA_CLUSTER__AUTOCLUSTER__INTERVAL="200ms")
    async with os_process(pyekka_argv("start", "-c", str(conf)), env) as proc:
        await proc.expect(r"discovery static <StaticStrategy", timeout=30)
        await proc.expect(re.escape(TIMINGS_LINE), timeout=10)
        await proc.expect(r"autocluster round 2: .*not in a cluster", timeout=30)
