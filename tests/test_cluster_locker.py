"""ekka_locker's terms and decisions (spec 3.3, 10, 16.5)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pyekka.cluster.lock import (
    Lock,
    LockType,
    Piggyback,
    lock_reply,
    parse_lock_result,
    parse_piggyback,
)
from pyekka.cluster.locker_core import (
    Lockers,
    LockTable,
    MalformedReply,
    MergeMode,
    acquire_outcome,
    leader_result,
    lock_nodes,
    merge_results,
    resource_key,
)
from pyekka.cluster.member import Member, MemberStatus
from pyekka.cluster.ring import find_nodes, ring
from pyekka.term import Atom, Pid, binary_to_term, term_to_binary

EMQX1, EMQX2, PY9 = Atom("emqx1@127.0.0.1"), Atom("emqx2@127.0.0.1"), Atom("py9@127.0.0.1")
LOCKER = Atom("ekka_locker")
BADRPC = (Atom("badrpc"), (Atom("EXIT"), (Atom("undef"), [])))
P1, P2 = Pid(EMQX1, 192, 0, 3), Pid(EMQX2, 77, 0, 1)

# Spec 3.3 (run): a stored entry, as OTP 25 encodes it.
SPEC_LOCK_ETF = bytes.fromhex(
    "8368056400046C6F636B6D000000027232"
    "5864000F656D717831403132372E302E302E31000000C00000000000000003"
    "61016E0600BF186A00A201"
)


def test_spec_lock_record() -> None:
    term = binary_to_term(SPEC_LOCK_ETF)
    lock = Lock.from_term(term)
    assert lock == Lock(b"r2", P1, 1, 1795303282879)
    assert lock.to_term() == term
    assert Lock.request(b"r2", P1, 1795303282879).stored() == lock
    assert binary_to_term(term_to_binary(lock.to_term())) == term


@pytest.mark.parametrize(
    "term",
    [
        (Atom("lock"), b"r", P1, 0),
        (Atom("lokc"), b"r", P1, 0, 1),
        (Atom("lock"), b"r", Atom("nopid"), 0, 1),
        (Atom("lock"), b"r", P1, 0, 1.0),
    ],
)
def test_lock_from_term_rejects(term: Any) -> None:
    with pytest.raises(ValueError):
        Lock.from_term(term)


def test_lock_types() -> None:
    assert [t.value for t in LockType] == ["local", "leader", "quorum", "all"]
    assert LockType.parse(Atom("quorum")) is LockType.QUORUM
    assert LockType.parse("all") is LockType.ALL
    assert LockType.LEADER.atom == Atom("leader")
    with pytest.raises(ValueError):
        LockType.parse("global")


def test_piggyback() -> None:
    assert parse_piggyback(Atom("undefined")) is None
    mfa = parse_piggyback((Atom("erlang"), Atom("node"), []))
    assert mfa == Piggyback(Atom("erlang"), Atom("node"))
    assert mfa.to_term() == (Atom("erlang"), Atom("node"), [])
    for bad in [(Atom("erlang"), Atom("node")), (b"m", Atom("f"), []), (Atom("m"), Atom("f"), 1)]:
        with pytest.raises(ValueError):
            parse_piggyback(bad)


def test_reply_shapes_observed_in_spec_10_1() -> None:
    assert lock_reply(False, EMQX2) == (False, [EMQX2])
    assert lock_reply(True, EMQX2, EMQX2) == (True, [(EMQX2, EMQX2)])
    assert lock_reply(True, EMQX2, None) == (True, [(EMQX2, None)])  # a result may be anything
    assert parse_lock_result((True, [EMQX1])) == (True, [EMQX1])
    assert parse_lock_result(BADRPC) is None
    assert parse_lock_result((Atom("ok"), [])) is None


# -- server side --


def test_acquire_and_release_as_observed() -> None:
    """Spec 10.1 (run): other owner false, same owner true, release by owner true."""
    table = LockTable(LOCKER)
    first = Lock.request(b"r2", P1, 1000)
    assert table.acquire(first)
    assert table.lookup(b"r2") == first.stored()
    assert not table.acquire(Lock.request(b"r2", P2, 2000))
    assert table.acquire(Lock.request(b"r2", P1, 3000))
    assert table.lookup(b"r2").created == 1000  # re-acquire keeps the lease running
    assert not table.release(Lock.request(b"r2", P2, 4000))
    assert table.release(Lock.request(b"r2", P1, 5000))
    assert table.lookup(b"r2") is None
    assert table.release(Lock.request(b"r2", P2, 6000))  # nothing held: true


def test_unknown_locker_name_grants_without_storing() -> None:
    lockers = Lockers([LOCKER])
    other = Atom("emqx_cm_locker")
    assert lockers.acquire_lock(other, Lock.request(b"r", P1, 0))
    assert lockers.release_lock(other, Lock.request(b"r", P2, 0))
    assert other not in lockers.tables
    assert lockers.acquire_lock(LOCKER, Lock.request(b"r", P1, 0))
    assert not lockers.acquire_lock(LOCKER, Lock.request(b"r", P2, 0))
    lockers.start(other)
    assert lockers.acquire_lock(other, Lock.request(b"r", P2, 0))
    lockers.stop(other)
    assert other not in lockers.tables


def test_resources_are_distinct_exactly_when_not_exactly_equal() -> None:
    table = LockTable(LOCKER)
    assert table.acquire(Lock.request(1, P1, 0))
    assert table.acquire(Lock.request(1.0, P2, 0))  # 1 =/= 1.0
    assert table.acquire(Lock.request([1, (Atom("a"), b"x")], P1, 0))  # unhashable in Python
    assert not table.acquire(Lock.request([1, (Atom("a"), b"x")], P2, 0))
    assert table.acquire(Lock.request("c1", P1, 0))
    assert not table.acquire(Lock.request(b"c1", P2, 0))  # a str is the binary <<"c1">>
    assert resource_key("c1") == resource_key(b"c1")
    assert len(table) == 4


def test_force_release() -> None:
    table = LockTable(LOCKER)
    table.acquire(Lock.request(b"r", P1, 0))
    assert table.force_release(b"r") == Lock(b"r", P1, 1, 0)
    assert table.force_release(b"r") is None
    assert table.acquire(Lock.request(b"r", P2, 0))


def test_lease_monitors_then_kills() -> None:
    """Spec 10.3: older than 15 s -> monitor; seen again -> kill; DOWN -> delete."""
    table = LockTable(LOCKER)
    table.acquire(Lock.request(b"a", P1, 0))
    table.acquire(Lock.request(b"b", P1, 10_000))
    table.acquire(Lock.request(b"c", P2, 0))
    quiet = table.check_lease(15_000)
    assert (quiet.monitor, quiet.kill) == ([], [])
    first = table.check_lease(15_001)
    assert first.monitor == [P1, P2] and first.kill == []
    second = table.check_lease(45_001)  # b is now old too: tracked, not killed
    assert second.monitor == [] and sorted(second.kill, key=repr) == sorted(
        [(P1, b"a"), (P2, b"c")], key=repr
    )
    assert table.tracked() == {P1: [b"a", b"b"], P2: [b"c"]}
    third = table.check_lease(75_001)
    assert (P1, b"b") in third.kill
    assert table.owner_down(P1) == [Lock(b"a", P1, 1, 0), Lock(b"b", P1, 1, 10_000)]
    assert table.lookup(b"a") is None and table.lookup(b"c") is not None
    assert table.owner_down(P1) == []


def test_owner_down_spares_a_resource_now_held_by_another() -> None:
    table = LockTable(LOCKER)
    table.acquire(Lock.request(b"a", P1, 0))
    table.check_lease(20_000)
    table.release(Lock.request(b"a", P1, 0))
    table.acquire(Lock.request(b"a", P2, 0))
    assert table.owner_down(P1) == []
    assert table.lookup(b"a").owner == P2


def test_release_owner_drops_all_its_entries_at_once() -> None:
    table = LockTable(LOCKER)
    table.acquire(Lock.request(b"a", P1, 0))
    table.acquire(Lock.request(b"b", P1, 0))
    table.acquire(Lock.request(b"c", P2, 0))
    table.check_lease(20_000)
    assert table.owners() == {P1, P2}
    assert table.release_owner(P1) == [Lock(b"a", P1, 1, 0), Lock(b"b", P1, 1, 0)]
    assert table.owners() == {P2} and P1 not in table.tracked()
    assert table.release_owner(P1) == []


def test_tracking_survives_release_early_kill_quirk() -> None:
    """A tracked owner that re-takes a resource is killed at the first check seeing it."""
    table = LockTable(LOCKER)
    table.acquire(Lock.request(b"a", P1, 0))
    assert table.check_lease(16_000).monitor == [P1]
    table.release(Lock.request(b"a", P1, 0))
    table.acquire(Lock.request(b"a", P1, 20_000))
    assert table.check_lease(36_000).kill == [(P1, b"a")]


class LockTableMachine(RuleBasedStateMachine):
    """Many owners hammering a few resources: never two holders, and holders keep locks."""

    def __init__(self) -> None:
        super().__init__()
        self.table = LockTable(LOCKER)
        self.holders: dict[bytes, Pid] = {}

    owners = st.sampled_from([Pid(EMQX1, i, 0, 1) for i in range(4)])
    resources = st.sampled_from([b"x", b"y", b"z"])

    @rule(owner=owners, resource=resources)
    def acquire(self, owner: Pid, resource: bytes) -> None:
        granted = self.table.acquire(Lock.request(resource, owner, 0))
        holder = self.holders.get(resource)
        assert granted == (holder is None or holder == owner)
        if granted:
            self.holders[resource] = owner

    @rule(owner=owners, resource=resources)
    def release(self, owner: Pid, resource: bytes) -> None:
        released = self.table.release(Lock.request(resource, owner, 0))
        holder = self.holders.get(resource)
        assert released == (holder is None or holder == owner)
        if holder == owner:
            del self.holders[resource]

    @rule(owner=owners)
    def owner_dies(self, owner: Pid) -> None:
        self.table.check_lease(10**9, 0)  # make sure the owner is tracked
        self.table.owner_down(owner)
        self.holders = {r: o for r, o in self.holders.items() if o != owner}

    @rule(owner=owners)
    def owner_released(self, owner: Pid) -> None:
        self.table.release_owner(owner)
        self.holders = {r: o for r, o in self.holders.items() if o != owner}

    @invariant()
    def one_holder_per_resource(self) -> None:
        assert {lock.resource: lock.owner for lock in self.table.locks()} == self.holders


TestLockTableMachine = LockTableMachine.TestCase


# -- client side --


def _table() -> list[Member]:
    return [
        Member.new(EMQX1, bytes.fromhex("000660D19D75EC0670F1000000910000")),
        Member.new(EMQX2, bytes.fromhex("000660D19D75EC0770F2000000920000")),
        Member.new(Atom("emqx3@127.0.0.1"), b"\x00\x07" + bytes(14), status=MemberStatus.DOWN),
        Member.new(PY9, b"\x80" + bytes(15)),
    ]


def test_lock_nodes_per_type() -> None:
    members = _table()
    assert lock_nodes(LockType.LOCAL, b"r", self_node=PY9, members=members) == [PY9]
    assert lock_nodes(LockType.LEADER, b"r", self_node=PY9, members=members) == [EMQX1]
    assert lock_nodes(LockType.ALL, b"r", self_node=PY9, members=members) == [EMQX1, EMQX2, PY9]
    up_ring = ring(members, MemberStatus.UP)
    for resource in (b"c1", b"c2", b"clientid", Atom("foo")):
        quorum = lock_nodes(LockType.QUORUM, resource, self_node=PY9, members=members)
        assert quorum == find_nodes(resource, up_ring)
        assert len(quorum) == 2
    assert lock_nodes(LockType.LEADER, b"r", self_node=PY9, members=[]) == []


def test_merge_as_observed_in_appendix_b() -> None:
    """``all`` over [emqx1, emqx2]: the nodes come back in reverse reply order."""
    replies = [(True, [EMQX1]), (True, [EMQX2])]
    assert merge_results(replies) == (True, [EMQX2, EMQX1])
    pig = [(True, [(EMQX1, EMQX1)]), (True, [(EMQX2, EMQX2)])]
    assert merge_results(pig, MergeMode.GENUINE) == (True, [(EMQX2, EMQX2), (EMQX1, EMQX1)])


def test_merge_keeps_only_failures_when_one_fails() -> None:
    replies = [(True, [EMQX1]), (False, [EMQX2]), (False, [PY9])]
    assert merge_results(replies) == (False, [PY9, EMQX2])
    outcome = acquire_outcome(replies)
    assert outcome.release and outcome.result == (False, [PY9, EMQX2])
    assert not acquire_outcome([(True, [EMQX1])]).release


def test_merge_flattens_nested_lists_and_keeps_odd_bodies() -> None:
    assert merge_results([(True, [[EMQX1], [[EMQX2]]])]) == (True, [EMQX1, EMQX2])
    assert merge_results([(True, EMQX1)], MergeMode.GENUINE) == (True, [EMQX1])


def test_genuine_merge_quirks() -> None:
    """0.8.1.9: a badrpc crashes the caller; no replies at all is success."""
    with pytest.raises(MalformedReply):
        merge_results([(True, [EMQX1]), BADRPC], MergeMode.GENUINE)
    assert merge_results([], MergeMode.GENUINE) == (True, [])


def test_safe_merge() -> None:
    """pyekka's default: a badrpc is a failure, no replies is a failure."""
    assert merge_results([(True, [EMQX1]), BADRPC]) == (False, [BADRPC])
    assert merge_results([]) == (False, [])
    assert acquire_outcome([]).release


def test_leader_result() -> None:
    """Appendix B step 5: the leader lacked ekka_locker."""
    assert leader_result(PY9, BADRPC) == (False, [(PY9, BADRPC)])
    assert leader_result(EMQX1, (True, [EMQX1])) == (True, [EMQX1])


@given(st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from([EMQX1, EMQX2, PY9])))))
def test_merge_result_property(replies: list[tuple[bool, list[Atom]]]) -> None:
    for mode in MergeMode:
        ok, nodes = merge_results(replies, mode)
        failed = [r for r in replies if not r[0]]
        chosen = failed if failed else replies
        assert ok == (not failed and (bool(replies) or mode is MergeMode.GENUINE))
        assert nodes == [n for r in reversed(chosen) for n in r[1]]
