"""The autocluster loop's semantics (ekka 0.8.1.9, spec 11.2) with scripted strategies
on live in-process pyekka members: lock/unlock/register order, what is alive, errors
that are logged and retried but never fatal, manual and disabled discovery, leave."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.app import ClusterMember, MemberOptions, cluster_member
from pyekka.cluster.cluster import ClusterError
from pyekka.discovery import DiscoveryError, Outcome, Strategy
from pyekka.discovery.autocluster import (
    Autocluster,
    AutoclusterState,
    RoundResult,
    discovery_json,
    discovery_rows,
)
from pyekka.node.node import Node
from pyekka.term.types import Atom
from tests.autocluster_nodes import COOKIE, FAST
from tests.otp_nodes import HOST, next_number

A = Atom
Answer = list[str] | Exception


class Scripted(Strategy):
    """Answers ``discover`` from a script (the last answer repeats) and records calls."""

    name = "scripted"

    def __init__(
        self,
        answers: list[Answer],
        *,
        lock: Outcome | Exception = Outcome.IGNORE,
        register: Outcome | Exception = Outcome.IGNORE,
        unlock: Outcome | Exception = Outcome.OK,
    ) -> None:
        self.answers = list(answers)
        self.outcomes = {"lock": lock, "register": register, "unlock": unlock}
        self.calls: list[str] = []
        self.closed = False

    def _answer(self, op: str) -> Outcome:
        self.calls.append(op)
        outcome = self.outcomes.get(op, Outcome.OK)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def discover(self) -> list[str]:
        self.calls.append("discover")
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    async def lock(self) -> Outcome:
        return self._answer("lock")

    async def unlock(self) -> Outcome:
        return self._answer("unlock")

    async def register(self) -> Outcome:
        return self._answer("register")

    async def unregister(self) -> Outcome:
        return self._answer("unregister")

    async def close(self) -> None:
        self.closed = True


class Members:
    """Starts cluster members (node + ekka services) and stops them all."""

    def __init__(self, base: int, root: Path) -> None:
        self.base = base
        self.root = root
        self.stack = contextlib.AsyncExitStack()

    async def start(self) -> ClusterMember:
        name = f"lp{next_number()}@{HOST}"
        node = Node(name, COOKIE, epmd=False, dist_base_port=self.base, dist_interface=HOST)
        await self.stack.enter_async_context(node)
        options = MemberOptions(data_dir=self.root / name, cluster_name="loop", autoheal=False)
        return await self.stack.enter_async_context(cluster_member(node, options))

    async def auto(
        self, member: ClusterMember, strategy: Strategy | None, **kw: Any
    ) -> Autocluster:
        auto = Autocluster(member.cluster, strategy, **{**FAST, **kw})
        self.stack.push_async_callback(auto.stop)
        await auto.start()
        return auto


@pytest.fixture
async def members(ekka_base: int, tmp_path: Path) -> AsyncIterator[Members]:
    m = Members(ekka_base, tmp_path)
    async with m.stack:
        yield m


def rounds(n: int) -> Callable[[Autocluster], bool]:
    return lambda a: a.rounds >= n


def name(m: ClusterMember) -> str:
    return m.node.name.name


async def test_locked_round_discovers_joins_registers_then_unlocks(members: Members) -> None:
    a, b = await members.start(), await members.start()
    strategy = Scripted([[name(b), name(a)]], lock=Outcome.OK, register=Outcome.OK)
    auto = await members.auto(b, strategy)
    await auto.wait_for(lambda x: x.state is AutoclusterState.DONE)
    # b sees two alive nodes, asks both for their member: a's guid is older
    assert strategy.calls == ["lock", "discover", "register", "unlock"]
    result = auto.last_result
    assert result is not None
    assert (result.lock, result.target, result.joined, result.registered) == (
        "ok",
        name(a),
        True,
        "ok",
    )
    assert result.alive == (name(b), name(a)) and result.in_cluster
    assert b.cluster.db_nodes() == sorted([a.node.name, b.node.name], key=lambda n: n.name)


async def test_dead_and_malformed_names_are_not_alive(members: Members) -> None:
    a = await members.start()
    ghost = f"ghost{next_number()}@{HOST}"  # nobody listens on its port
    strategy = Scripted([[name(a), ghost, "not-a-node-name", "x@bad host"]])
    auto = await members.auto(a, strategy)
    await auto.wait_for(rounds(2))
    result = auto.last_result
    assert result is not None and result.alive == (name(a),)
    assert result.target is None and not result.joined and not result.in_cluster
    assert auto.state is not AutoclusterState.DONE  # alone by design: rounds go on


async def test_a_node_without_ekka_is_alive_but_never_a_target(members: Members) -> None:
    a = await members.start()
    async with Node(
        f"plain{next_number()}@{HOST}",
        COOKIE,
        epmd=False,
        dist_base_port=members.base,
        dist_interface=HOST,
    ) as plain:
        # the plain node answers pings, but ekka_membership:local_member() is undef there
        strategy = Scripted([[plain.name.name, name(a)]])
        auto = await members.auto(a, strategy)
        await auto.wait_for(rounds(1))
    result = auto.last_result
    assert result is not None and result.alive == (plain.name.name, name(a))
    assert result.target is None and not result.joined


@pytest.mark.parametrize(
    "failure",
    [
        DiscoveryError("scripted", "no server answered"),
        RuntimeError("a bug in a strategy"),
    ],
)
async def test_discovery_errors_are_logged_and_retried(
    members: Members, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await members.start(), await members.start()
    strategy = Scripted([failure, failure, [name(a), name(b)]])
    auto = await members.auto(b, strategy)
    await auto.wait_for(lambda x: x.state is AutoclusterState.DONE)
    assert auto.rounds == 3
    assert strategy.calls.count("register") == 1  # only after a successful discover
    assert str(failure) in caplog.text
    assert auto.last_result is not None and auto.last_result.joined


async def test_lock_error_skips_the_round(members: Members) -> None:
    a = await members.start()
    strategy = Scripted([[name(a)]], lock=DiscoveryError("scripted", "lock is held"))
    auto = await members.auto(a, strategy)
    await auto.wait_for(rounds(3))
    assert "discover" not in strategy.calls
    result = auto.last_result
    assert result is not None and result.lock == "error" and result.discovered is None
    assert result.errors == ("stopped for lock error: scripted discovery: lock is held",)


async def test_register_and_unlock_errors_are_not_fatal(members: Members) -> None:
    a = await members.start()
    broken = DiscoveryError("scripted", "HTTP 500")
    strategy = Scripted([[name(a)]], lock=Outcome.OK, register=broken, unlock=broken)
    auto = await members.auto(a, strategy)
    await auto.wait_for(rounds(2))
    result = auto.last_result
    assert result is not None and result.registered == "error"
    assert len(result.errors) == 2 and all("HTTP 500" in e for e in result.errors)
    assert strategy.calls[:4] == ["lock", "discover", "register", "unlock"]


async def test_manual_and_disabled_run_no_round(members: Members) -> None:
    a = await members.start()
    manual = await members.auto(a, None)
    assert manual.state is AutoclusterState.DISABLED
    assert manual.status().to_json()["strategy"] == "manual"
    await manual.stop()
    b = await members.start()
    strategy = Scripted([[name(b)]])
    off = await members.auto(b, strategy, enabled=False)
    assert off.state is AutoclusterState.DISABLED and off.rounds == 0
    await off.stop()
    assert strategy.calls == [] and strategy.closed


async def test_leave_unregisters_and_stops_the_rounds(members: Members) -> None:
    a, b = await members.start(), await members.start()
    seen: list[RoundResult] = []
    strategy = Scripted([[name(a), name(b)]], register=Outcome.OK)
    auto = await members.auto(b, strategy, on_round=seen.append)
    await auto.wait_for(lambda x: x.state is AutoclusterState.DONE)
    assert seen and seen[-1] is auto.last_result
    await auto.leave()
    assert strategy.calls[-1] == "unregister"
    assert auto.state is AutoclusterState.STOPPED
    assert b.cluster.db_nodes() == [b.node.name]
    assert a.cluster.db_nodes() == [a.node.name]
    # the status as pyekka_ctl:discovery() serves it to other nodes, and read back
    term = await a.node.rpc(b.node.name, "pyekka_ctl", "discovery", [], 10)
    assert term[A("state")] == A("stopped") and term[A("strategy")] == A("scripted")
    assert discovery_json(term) == auto.status().to_json()
    rows = dict(discovery_rows(discovery_json(term)))
    assert rows["discovery"].startswith("scripted <Scripted")
    assert rows["autocluster"] == f"stopped, {auto.rounds} round(s)"
    assert rows["last round"].endswith(f"joined {name(a)}, register ok, in a cluster")
    with pytest.raises(ValueError, match="not a discovery status map"):
        discovery_json({A("strategy"): A("static")})


async def test_a_failed_leave_keeps_the_rounds_going(members: Members) -> None:
    a = await members.start()
    strategy = Scripted([[name(a)]], register=Outcome.OK)
    auto = await members.auto(a, strategy)
    await auto.wait_for(rounds(1))
    with pytest.raises(ClusterError):
        await auto.leave()  # alone: node_not_in_cluster
    assert "unregister" not in strategy.calls
    before = auto.rounds
    await auto.wait_for(rounds(before + 2))
    assert auto.state is not AutoclusterState.STOPPED
