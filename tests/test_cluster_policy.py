"""pyekka's mixed-cluster policy (spec 16) and autoclean's expiry rule (spec 9)."""

from __future__ import annotations

import pytest

from pyekka.cluster.autoclean import check_interval_ms, expired, nodes_to_clean
from pyekka.cluster.election import coordinator, leader
from pyekka.cluster.guid import GuidGenerator, GuidPolicy
from pyekka.cluster.member import Member, MemberStatus, timestamp_from_us
from pyekka.cluster.policy import autoheal_leader, is_pyekka_member, is_running_reply
from pyekka.term import Atom, Pid

EMQX1, EMQX2 = Atom("emqx1@127.0.0.1"), Atom("emqx2@127.0.0.1")
PY1, PY2 = Atom("py1@127.0.0.1"), Atom("py2@127.0.0.1")
NOW_US = 1_795_303_266_484_993


def python_member(node: Atom, started_us: int) -> Member:
    gen = GuidGenerator(node, Pid(node, 80, 0, 2))  # DEFER, the default
    return Member.new(node, gen.next(started_us))


def genuine_member(node: Atom, started_us: int, status: MemberStatus = MemberStatus.UP) -> Member:
    gen = GuidGenerator(node, Pid(node, 145, 0, 3), GuidPolicy.GENUINE)
    return Member.new(node, gen.next(started_us), status=status)


def test_genuine_members_lead_a_mixed_cluster_whoever_started_first() -> None:
    py_old = python_member(PY1, 1_000)  # started decades before the Erlang nodes
    e1 = genuine_member(EMQX1, NOW_US)
    e2 = genuine_member(EMQX2, NOW_US + 5, MemberStatus.DOWN)
    members = [py_old, e1, e2]
    assert leader(members) == EMQX1
    assert coordinator(members) == EMQX1
    assert leader([py_old, e2]) == EMQX2  # down, but genuine: still the leader


def test_a_python_only_cluster_is_led_by_its_oldest_python_node() -> None:
    members = [python_member(PY2, NOW_US + 1), python_member(PY1, NOW_US + 2)]
    assert leader(members) == PY2
    assert autoheal_leader(members) == PY2


def test_is_pyekka_member() -> None:
    assert is_pyekka_member(python_member(PY1, NOW_US))
    assert not is_pyekka_member(genuine_member(EMQX1, NOW_US))
    assert not is_pyekka_member(Member(PY1))


def test_is_running_is_true_only_for_pyekka_callers() -> None:
    ekka = Atom("ekka")
    assert is_running_reply(ekka, caller_is_pyekka=True)
    assert not is_running_reply(ekka, caller_is_pyekka=False)  # would wipe its schema
    assert not is_running_reply(ekka, caller_is_pyekka=True, running=False)
    assert not is_running_reply(Atom("emqx"), caller_is_pyekka=True)


def test_autoheal_leader_skips_dead_and_genuine_members() -> None:
    oldest_py = python_member(PY1, NOW_US)
    younger_py = python_member(PY2, NOW_US + 10)
    e1 = genuine_member(EMQX1, NOW_US - 10)
    members = [oldest_py, younger_py, e1, Member(Atom("x@h"), status=MemberStatus.JOINING)]
    assert leader(members) == Atom("x@h")  # genuine: a guid-less entry is the oldest
    assert autoheal_leader(members, eligible=is_pyekka_member) == PY1
    assert autoheal_leader(members, eligible=is_pyekka_member, alive=lambda n: n != PY1) == PY2
    down = [Member(PY1, oldest_py.guid, oldest_py.hash, MemberStatus.DOWN), younger_py]
    assert autoheal_leader(down) == PY2
    assert autoheal_leader([], eligible=is_pyekka_member) is None
    assert autoheal_leader(members) == EMQX1  # everyone eligible: the oldest guid


def test_autoclean_expiry() -> None:
    t0 = timestamp_from_us(NOW_US)
    assert check_interval_ms(300_000) == 75_000
    assert not expired(t0, timestamp_from_us(NOW_US + 300_000_999), 300_000)
    assert expired(t0, timestamp_from_us(NOW_US + 300_001_000), 300_000)
    assert not expired(None, t0, 1)
    members = [
        Member(PY2, status=MemberStatus.DOWN, ltime=timestamp_from_us(NOW_US - 10**9)),
        Member(PY1, status=MemberStatus.DOWN, ltime=timestamp_from_us(NOW_US - 10**9)),
        Member(EMQX1, status=MemberStatus.UP, ltime=timestamp_from_us(NOW_US - 10**9)),
        Member(EMQX2, status=MemberStatus.DOWN, ltime=t0),
    ]
    assert nodes_to_clean(members, t0, 1000) == [PY1, PY2]
    with pytest.raises(ValueError):
        check_interval_ms(0)


def test_autoclean_div_truncates_towards_zero() -> None:
    """Erlang's ``div`` (visible only with a clock that went back)."""
    t0 = timestamp_from_us(NOW_US)
    assert expired(t0, timestamp_from_us(NOW_US - 1999), -2)  # -1 > -2
    assert not expired(t0, timestamp_from_us(NOW_US - 2000), -2)  # -2 > -2
