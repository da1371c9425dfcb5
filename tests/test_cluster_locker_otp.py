# ruff: noqa: F811 - test parameters are the fixtures imported from tests.otp_nodes
"""Locks between pyekka nodes and live OTP 25/28 nodes.

* OTP nodes call ``ekka_locker:acquire_lock/2,3`` and ``release_lock/2`` on Python
  nodes with ``rpc:call`` and get the result shapes genuine ekka 0.8.1.9 was observed
  to return (spec 10.1).
* ``pyekka_locker_probe`` takes ``quorum``/``all``/``leader`` locks from OTP the way an
  ekka client does, choosing its nodes with the VM's own ``phash2``: its choice must
  equal pyekka's for any resource.
* Python servers monitor OTP owners (a lock dies with its Erlang owner) and kill
  them after the lease; Python clients lock on OTP nodes running the test server
  ``erl_interop/src/ekka_locker_probe/ekka_locker.erl``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyekka.cluster.lock import Lock, LockType
from pyekka.cluster.locker import Locker
from pyekka.cluster.locker_core import lock_nodes
from pyekka.cluster.member import Member
from pyekka.term import term_to_binary
from pyekka.term.types import Atom, Pid, exact_equal
from pyekka.testing.otp import OtpError, OtpRuntime, compile_interop, interop_source_dir
from pyekka.testing.otp_node import OtpNode
from tests.otp_nodes import (  # noqa: F401 - fixtures
    ekka_base,
    make_otp,
    make_py,
    next_number,
)
from tests.test_cluster_locker_service import PyCluster, guid_of, owner, start_cluster

pytestmark = pytest.mark.otp

A = Atom
BADRPC, EXIT_TAG = A("badrpc"), A("EXIT")
LOCKER_SRC = "ekka_locker_probe"


def lit(term: Any) -> str:
    """An Erlang expression whose value is ``term`` (through the external format)."""
    return "binary_to_term(<<" + ",".join(map(str, term_to_binary(term))) + ">>)"


def q(node: Atom) -> str:
    return f"'{node.name}'"


@pytest.fixture(scope="session")
def locker_ebin(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    otp_runtimes: list[OtpRuntime],
) -> Path:
    """The OTP test lock server (a module named ``ekka_locker``), compiled once."""
    cache = getattr(request.config, "cache", None)
    out = cache.mkdir("pyekka_erl_interop") if cache else tmp_path_factory.mktemp("lk")
    try:
        return compile_interop(
            out, runtimes=otp_runtimes, src_dir=interop_source_dir() / LOCKER_SRC
        )
    except OtpError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def lock_otp(make_otp: Any, locker_ebin: Path) -> Iterator[Any]:
    """Start OTP nodes that can load the test lock server (not started yet)."""

    def start() -> OtpNode:
        return make_otp("-pa", str(locker_ebin), prefix="lkerl")

    yield start


def member_terms(members: list[Member]) -> str:
    return lit([m.to_term() for m in members])


async def otp_owner(erl: OtpNode) -> Pid:
    """A long-lived process of ``erl`` that runs funs for the test."""
    return await erl.aeval("pyekka_locker_probe:owner()")


async def run_as(erl: OtpNode, pid: Pid, body: str) -> Any:
    """Run Erlang expressions ``body`` in the owner process ``pid``; their value."""
    result = await erl.aeval(f"pyekka_locker_probe:run({lit(pid)}, fun() -> {body} end)")
    assert result[0] == A("ok"), result
    return result[1]


# -- the RPC surface, from OTP ------------------------------------------------------------------


async def test_rpc_result_shapes_seen_by_otp(otp: OtpRuntime, make_py: Any, lock_otp: Any) -> None:
    c = await start_cluster(make_py, 1)
    erl = lock_otp()
    p = c.nodes[0].name
    o1, o2 = await otp_owner(erl), await otp_owner(erl)
    created = 1795303282879
    results = await erl.aeval(
        f"""
        P = {q(p)}, O1 = {lit(o1)}, O2 = {lit(o2)},
        L1 = {{lock, <<"r2">>, O1, 0, {created}}},
        L2 = {{lock, <<"r2">>, O2, 0, erlang:system_time(millisecond)}},
        Acq = fun(N, L, Pb) -> rpc:call(P, ekka_locker, acquire_lock, [N, L, Pb]) end,
        Rel = fun(N, L) -> rpc:call(P, ekka_locker, release_lock, [N, L]) end,
        [Acq(ekka_locker, L1, undefined),
         Acq(ekka_locker, L1, undefined),
         Acq(ekka_locker, L2, undefined),
         Acq(nolocker, L2, undefined),
         Acq(ekka_locker, L1, {{erlang, node, []}}),
         Acq(ekka_locker, L2, {{erlang, node, []}}),
         rpc:call(P, ekka_locker, acquire_lock, [ekka_locker, L2]),
         Rel(ekka_locker, L2),
         Rel(ekka_locker, L1),
         Rel(ekka_locker, L1),
         Rel(nolocker, L1),
         Acq(ekka_locker, {{lock, <<"r2">>}}, undefined)]
        """
    )
    expected = [
        (True, [p]),  # acquire
        (True, [p]),  # re-acquire by the same owner
        (False, [p]),  # another owner
        (True, [p]),  # a locker that does not run
        (True, [(p, p)]),  # piggyback {erlang, node, []}
        (False, [(p, p)]),  # piggyback applied on refusal too
        False,  # acquire_lock/2
        (False, [p]),  # release by another owner
        (True, [p]),  # release by the owner
        (True, [p]),  # nothing to release
        (True, [p]),  # a locker that does not run
    ]
    assert exact_equal(results[:-1], expected), results
    bad = results[-1]
    assert bad[0] == BADRPC and bad[1][0] == EXIT_TAG and bad[1][1][0] == A("function_clause")


async def test_the_stored_entry_is_the_request_of_the_otp_caller(
    otp: OtpRuntime, make_py: Any, lock_otp: Any
) -> None:
    c = await start_cluster(make_py, 1)
    erl = lock_otp()
    o1 = await otp_owner(erl)
    await erl.aeval(
        f"{{true, _}} = rpc:call({q(c.nodes[0].name)}, ekka_locker, acquire_lock, "
        f'[ekka_locker, {{lock, <<"r2">>, {lit(o1)}, 0, 1795303282879}}, undefined])'
    )
    assert c.services[0].lookup(b"r2") == Lock(b"r2", o1, 1, 1795303282879)
    assert c.services[0].lookup(b"r2").to_term() == (  # type: ignore[union-attr]
        A("lock"),
        b"r2",
        o1,
        1,
        1795303282879,
    )


# -- OTP clients over Python members --------------------------------------------------------------


def resources(n: int, seed: int = 7) -> list[Any]:
    rng = random.Random(seed)
    out: list[Any] = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(0, 24)))
        elif kind == 1:
            out.append(f"client-{rng.randrange(10**9)}".encode())
        elif kind == 2:
            out.append(A(f"res_{rng.randrange(10**6)}"))
        elif kind == 3:
            out.append((rng.randrange(-(2**40), 2**40), b"t", [1, 2]))
        elif kind == 4:
            out.append(rng.randrange(-(2**70), 2**70))
        else:
            out.append([rng.randrange(256) for _ in range(rng.randrange(0, 5))])
    return out


@pytest.mark.parametrize("size", [3, 5, 7])
async def test_otp_and_pyekka_choose_the_same_nodes(
    otp: OtpRuntime, lock_otp: Any, size: int
) -> None:
    erl = lock_otp()
    rng = random.Random(size)
    members = [
        Member.new(A(f"n{i}_{rng.randrange(10**6)}@127.0.0.1"), rng.randbytes(16))
        for i in range(size)
    ]
    keys = resources(150)
    for lock_type in (LockType.QUORUM, LockType.ALL, LockType.LEADER):
        theirs = await erl.aeval(
            f"Ms = {member_terms(members)},"
            f"[pyekka_locker_probe:lock_nodes({lock_type.value}, R, Ms) || R <- {lit(keys)}]"
        )
        ours = [lock_nodes(lock_type, k, self_node=A("x@y"), members=members) for k in keys]
        assert theirs == ours, lock_type
    hashes = await erl.aeval(
        f"[pyekka_locker_probe:hash(N, G) || {{member, N, _, G, _, _, _, _}} <- "
        f"{member_terms(members)}]"
    )
    assert hashes == [m.hash for m in members]


@pytest.mark.parametrize("lock_type", ["quorum", "all", "leader"])
async def test_otp_client_locks_on_python_nodes(
    otp: OtpRuntime, make_py: Any, lock_otp: Any, lock_type: str
) -> None:
    c = await start_cluster(make_py, 5)
    erl = lock_otp()
    members = member_terms(c.members.members())
    o = await otp_owner(erl)
    res = b"mqtt-client-1"
    kind = LockType(lock_type)
    nodes = c.lockers[0].nodes_for(res, kind)

    def acquire(pb: str = "undefined") -> str:
        return f"pyekka_locker_probe:acquire(ekka_locker, {lit(res)}, {lock_type}, {pb}, {members})"

    granted = await run_as(erl, o, acquire())
    assert granted[0] is True and set(granted[1]) == set(nodes)
    assert c.holders(res) == dict.fromkeys(nodes, o)

    # A Python owner is refused; an OTP one too, with the genuine piggyback shape.
    refused = await c.lockers[4].acquire(res, kind, owner=owner(c.nodes[4]))
    assert refused[0] is False and set(refused[1]) == set(nodes)
    o2 = await otp_owner(erl)
    refused = await run_as(erl, o2, acquire("{erlang, node, []}"))
    assert refused[0] is False and set(refused[1]) == {(n, n) for n in nodes}
    assert c.holders(res) == dict.fromkeys(nodes, o)

    released = await run_as(
        erl, o, f"pyekka_locker_probe:release(ekka_locker, {lit(res)}, {lock_type}, {members})"
    )
    assert released[0] is True and set(released[1]) == set(nodes)
    assert c.holders(res) == {}


# -- OTP owners: monitored, and killed after the lease ----------------------------------------


async def test_a_lock_dies_with_its_otp_owner(otp: OtpRuntime, make_py: Any, lock_otp: Any) -> None:
    c = await start_cluster(make_py, 3)
    erl = lock_otp()
    members = member_terms(c.members.members())
    o = await otp_owner(erl)
    granted = await run_as(
        erl, o, f'pyekka_locker_probe:acquire(ekka_locker, <<"r">>, all, undefined, {members})'
    )
    assert granted[0] is True
    assert set(c.holders(b"r").values()) == {o}
    await erl.aeval(f"pyekka_locker_probe:stop_owner({lit(o)})")
    await c.wait_free(b"r")


async def test_lease_kills_an_otp_owner(otp: OtpRuntime, make_py: Any, lock_otp: Any) -> None:
    c = await start_cluster(make_py, 3, lease_ms=100)
    erl = lock_otp()
    members = member_terms(c.members.members())
    o = await otp_owner(erl)
    granted = await run_as(
        erl, o, f'pyekka_locker_probe:acquire(ekka_locker, <<"r">>, quorum, undefined, {members})'
    )
    assert granted[0] is True
    # The Python lease check asks for process_info over rpc, then sends EXIT2 kill.
    assert await erl.aeval(f"pyekka_locker_probe:wait_down({lit(o)}, 10000)") == A("killed")
    await c.wait_free(b"r")


async def test_otp_can_inspect_and_kill_a_python_owner(
    otp: OtpRuntime, make_py: Any, lock_otp: Any
) -> None:
    """What a genuine lease check does to a Python owner: process_info, then kill."""
    c = await start_cluster(make_py, 1)
    erl = lock_otp()
    async with c.lockers[0].lock(b"held", LockType.LOCAL) as held:
        info = await erl.aeval(
            f"rpc:call({q(c.nodes[0].name)}, erlang, process_info, "
            f"[{lit(held.owner)}, [status, message_queue_len, current_stacktrace]], 5000)"
        )
        assert [k for k, _ in info] == [
            A("status"),
            A("message_queue_len"),
            A("current_stacktrace"),
        ]
        await erl.aeval(f"exit({lit(held.owner)}, kill)")
        await c.wait_free(b"held")
        assert held.lost


# -- Python clients over OTP lock servers -----------------------------------------------------


async def test_python_client_locks_on_otp_servers(
    otp: OtpRuntime, make_py: Any, lock_otp: Any
) -> None:
    c: PyCluster = await start_cluster(make_py, 2)
    erl = lock_otp()
    assert (await erl.aeval("element(1, ekka_locker:start(ekka_locker))")) == A("ok")
    e = erl.atom
    c.members.set([*c.members.members(), Member.new(e, guid_of(5))])
    a = owner(c.nodes[0])

    granted = await c.lockers[0].acquire(b"r", LockType.ALL, owner=a)
    assert granted[0] is True and set(granted[1]) == {c.nodes[0].name, c.nodes[1].name, e}
    entries = await erl.aeval("ekka_locker:entries(ekka_locker)")
    assert len(entries) == 1 and entries[0][:4] == (A("lock"), b"r", a.pid, 1)

    # Held on the OTP node by an OTP owner: refused there, released where granted.
    assert (await c.lockers[0].release(b"r", LockType.ALL, owner=a))[0] is True
    o = await otp_owner(erl)
    took = 'ekka_locker:acquire_lock(ekka_locker, pyekka_locker_probe:lock_obj(<<"r">>))'
    assert await run_as(erl, o, took) is True
    refused = await c.lockers[1].acquire(b"r", LockType.ALL, owner=a)
    assert refused == (False, [e])
    assert c.holders(b"r") == {}
    assert len(await erl.aeval("ekka_locker:entries(ekka_locker)")) == 1

    # The same through the leader, when the OTP node is the oldest member.
    c.members.set([*c.members.members()[:2], Member.new(e, bytes(16))])
    assert c.lockers[0].nodes_for(b"r", LockType.LEADER) == [e]
    assert await c.lockers[0].acquire(b"r", LockType.LEADER, owner=a) == (False, [e])
    assert await c.lockers[0].acquire(b"s", LockType.LEADER, owner=a) == (True, [e])
    assert await Locker(c.nodes[1], c.members).release(b"s", LockType.LEADER, owner=a) == (
        True,
        [e],
    )
    assert [x[1] for x in await erl.aeval("ekka_locker:entries(ekka_locker)")] == [b"r"]
