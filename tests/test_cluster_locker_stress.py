# ruff: noqa: F811 - test parameters are the fixtures imported from tests.otp_nodes
"""Mutual exclusion under contention, checked by an independent referee.

A mixed cluster of three pyekka nodes and two OTP nodes (running the test lock
server) serves locks; owners on every node (Python processes, and Erlang processes of
``pyekka_locker_probe:hammer/1``) hammer three resources with one lock type at a time.
An owner that gets a lock makes two synchronous calls to a referee process on a
fourth Python node that is no member: ``{enter, Resource, Owner}`` once the lock is
granted and ``{exit, Resource, Owner}`` before releasing it. Because each call
completes before the owner goes on, a lock that two owners held at once shows up as
an ``enter`` while the resource is marked held. The referee also stamps every
enter/exit with its own monotonic clock; the intervals of one resource must not
overlap. Membership is static (stable) throughout.

``local`` locks live in one node's table, so only that node's owners contend for
them; the other types mix Python and Erlang owners.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from pyekka.cluster.lock import LockType
from pyekka.cluster.locker import Locker
from pyekka.cluster.member import Member
from pyekka.node.gen_server import GenServer
from pyekka.node.node import Node
from pyekka.node.process import Process
from pyekka.term.types import Atom, Pid
from pyekka.testing.otp import OtpRuntime
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import ekka_base, make_otp, make_py, next_number  # noqa: F401 - fixtures
from tests.test_cluster_locker_otp import (  # noqa: F401 - fixtures
    lit,
    lock_otp,
    locker_ebin,
    member_terms,
)
from tests.test_cluster_locker_service import guid_of, start_cluster

pytestmark = pytest.mark.otp

A = Atom
REFEREE = A("pyekka_lock_referee")
ENTER, EXIT, OK = A("enter"), A("exit"), A("ok")
RESOURCES = [b"res-a", b"res-b", b"res-c"]
HAMMER_SECONDS = 1.5
HAMMER_MAX_SECONDS = 4.0
PY_OWNERS = 4
OTP_OWNERS = 4
BUDGET = 20.0
BACKOFF = 0.005
"""Seconds (at most) an owner waits after a refusal before it tries again."""


class Referee(GenServer):
    """Who holds what, as the owners report it; every inconsistency is a violation."""

    def __init__(self) -> None:
        self.holders: dict[Any, tuple[Pid, int]] = {}
        self.violations: list[tuple] = []
        self.intervals: list[tuple[Any, int, int, Pid]] = []

    async def handle_call(self, request: Any, from_: tuple[Pid, Any]) -> Any:
        kind, resource, pid = request
        now = time.monotonic_ns()
        if kind == ENTER:
            if resource in self.holders:
                self.violations.append(("both hold", resource, self.holders[resource][0], pid))
            self.holders[resource] = (pid, now)
        elif kind == EXIT:
            held = self.holders.pop(resource, None)
            if held is None or held[0] != pid:
                self.violations.append(("exit without enter", resource, pid))
            else:
                self.intervals.append((resource, held[1], now, pid))
        else:
            self.violations.append(("unknown report", request))
        return OK

    def overlaps(self) -> list[tuple]:
        """Pairs of intervals of one resource that overlap in the referee's time."""
        bad = []
        by_resource: dict[Any, list[tuple]] = {}
        for iv in self.intervals:
            by_resource.setdefault(iv[0], []).append(iv)
        for ivs in by_resource.values():
            ivs.sort(key=lambda iv: iv[1])
            bad += [(a, b) for a, b in itertools.pairwise(ivs) if b[1] < a[2]]
        return bad


@dataclass
class Run:
    """One round of owners: until ``soft`` (loop time), or ``hard`` while no grant yet."""

    soft: float
    hard: float
    granted: int = 0

    def over(self) -> bool:
        now = asyncio.get_running_loop().time()
        return now >= self.hard or (now >= self.soft and self.granted > 0)


async def python_owner(
    proc: Process,
    locker: Locker,
    lock_type: LockType,
    referee: tuple[Atom, Atom],
    run: Run,
    seed: str,
) -> tuple[int, int]:
    """Hammer: take, report enter, report exit, release; ``(granted, refused)``."""
    rng = random.Random(seed)
    granted = refused = 0
    while not run.over():
        resource = rng.choice(RESOURCES)
        result = await locker.acquire(resource, lock_type, owner=proc.pid)
        if result[0] is not True:
            refused += 1
            await asyncio.sleep(rng.uniform(0, BACKOFF))  # a retrying client's jitter
            continue
        assert await proc.call(referee, (ENTER, resource, proc.pid), 10) == OK
        assert await proc.call(referee, (EXIT, resource, proc.pid), 10) == OK
        released = await locker.release(resource, lock_type, owner=proc.pid)
        assert released[0] is True, released
        granted += 1
        run.granted += 1
    return granted, refused


async def hammer_otp(
    erl: OtpNode, lock_type: LockType, members: Sequence[Member], referee: tuple[Atom, Atom]
) -> dict:
    return await erl.aeval(
        "pyekka_locker_probe:hammer(#{name => ekka_locker, "
        f"type => {lock_type.value}, resources => {lit(RESOURCES)}, "
        f"members => {member_terms(list(members))}, owners => {OTP_OWNERS}, "
        f"backoff => {int(BACKOFF * 1000)}, "
        f"duration => {int(HAMMER_SECONDS * 1000)}, "
        f"max_duration => {int(HAMMER_MAX_SECONDS * 1000)}, "
        f"checker => {{{REFEREE.name}, '{referee[1].name}'}}}})",
        timeout=BUDGET,
    )


async def test_no_two_owners_ever_hold_a_resource(
    otp: OtpRuntime, make_py: Any, lock_otp: Any
) -> None:
    started = time.monotonic()
    erls = [lock_otp(), lock_otp()]
    for erl in erls:
        assert await erl.aeval("element(1, ekka_locker:start(ekka_locker))") == A("ok")
    otp_members = [Member.new(e.atom, guid_of(3 + i)) for i, e in enumerate(erls)]
    c = await start_cluster(make_py, 3, extra_members=otp_members)
    members = c.members.members()
    referee_node: Node = await make_py("referee")
    referee = Referee()
    referee.start(referee_node.runtime, name=REFEREE)
    referee_at = (REFEREE, referee_node.name)
    loop = asyncio.get_running_loop()
    per_type: dict[LockType, Counter] = {}

    async with asyncio.timeout(BUDGET):
        for lock_type in (LockType.LOCAL, LockType.LEADER, LockType.QUORUM, LockType.ALL):
            run = Run(loop.time() + HAMMER_SECONDS, loop.time() + HAMMER_MAX_SECONDS)
            # Local locks: one table, so one node's owners (twice as many of them).
            py_nodes = [0, 0] if lock_type is LockType.LOCAL else [0, 1, 2]
            python = [
                c.nodes[i].run(
                    python_owner,
                    c.lockers[i],
                    lock_type,
                    referee_at,
                    run,
                    f"{lock_type.value}-{n}-{k}",
                )
                for n, i in enumerate(py_nodes)
                for k in range(PY_OWNERS)
            ]
            erlang = (
                []
                if lock_type is LockType.LOCAL
                else [hammer_otp(e, lock_type, members, referee_at) for e in erls]
            )
            outcomes = await asyncio.gather(*python, *erlang)
            py_stats, otp_stats = outcomes[: len(python)], outcomes[len(python) :]
            stats = Counter(
                py_granted=sum(g for g, _ in py_stats),
                py_refused=sum(r for _, r in py_stats),
                otp_granted=sum(s[A("granted")] for s in otp_stats),
                otp_refused=sum(s[A("refused")] for s in otp_stats),
            )
            per_type[lock_type] = stats
            assert [s[A("errors")] for s in otp_stats] == [[]] * len(otp_stats)
            assert stats["py_granted"] > 0, (lock_type, stats)
            if lock_type is not LockType.LOCAL:
                assert stats["otp_granted"] > 0, (lock_type, stats)
            assert referee.violations == [], (lock_type, referee.violations[:5])

    assert referee.holders == {}
    assert referee.overlaps() == []
    entered = {iv[3].node for iv in referee.intervals}
    assert entered == {n.name for n in c.nodes} | {e.atom for e in erls}
    granted = sum(s["py_granted"] + s["otp_granted"] for s in per_type.values())
    assert len(referee.intervals) == granted
    for service in c.services:  # every lock was released
        assert service.locks() == []
    for erl in erls:
        assert await erl.aeval("ekka_locker:entries(ekka_locker)") == []
    assert time.monotonic() - started < BUDGET
