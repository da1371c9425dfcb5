"""The pure parts of healing genuine nodes: the pyekka leader's plan for the genuine
domain, and the ``ekka_node:is_running`` policy towards genuine node monitors."""

from __future__ import annotations

from pyekka.cluster.autoheal_genuine import plan_genuine_heal
from pyekka.cluster.heal_plan import HEAL_PARTITION
from pyekka.cluster.member import Member
from pyekka.cluster.policy import is_node_monitor_reply, is_running_reply
from pyekka.term import Atom
from tests.test_cluster_heal_plan import sides, view

P = Atom("py@h")
"""The pyekka leader: the oldest member, in no genuine view."""
E1, E2, E3, E4 = (Atom(f"e{i}@h") for i in range(1, 5))


def aged(*nodes: Atom) -> list[Member]:
    """Members oldest first in the order given (P first: GENUINE guids, older)."""
    return [Member(n, bytes([i]) * 16) for i, n in enumerate(nodes)]


MEMBERS = aged(P, E1, E2, E3, E4)


def test_a_healthy_genuine_cluster_needs_nothing() -> None:
    views = {n: view([E1, E2, E3]) for n in (E1, E2, E3)}
    assert plan_genuine_heal(views, leader=P, members=MEMBERS) is None
    assert plan_genuine_heal({}, leader=P, members=MEMBERS) is None


def test_a_two_way_split_goes_to_the_genuine_coordinator() -> None:
    plan = plan_genuine_heal(sides([E1, E2], [E3]), leader=P, members=aged(P, E2, E1, E3))
    assert plan is not None and plan.genuine
    assert plan.coordinator == E2  # the oldest of the first view's running nodes
    assert plan.reboot == (E3,) and plan.keep == (E1, E2)
    assert plan.message == (HEAL_PARTITION, [([E1, E2], [E3]), ([E3], [E1, E2])])


def test_equal_sides_are_ordered_as_a_leader_outside_every_view_orders_them() -> None:
    # genuine compare_view: equal lengths, no view holds the leader -> reverse usort
    plan = plan_genuine_heal(sides([E1], [E2]), leader=P, members=MEMBERS)
    assert plan is not None and plan.genuine
    assert plan.message == (HEAL_PARTITION, [([E2], [E1]), ([E1], [E2])])
    assert plan.coordinator == E2 and plan.reboot == (E1,)


def test_a_three_way_split_is_coordinated_by_the_pyekka_leader() -> None:
    plan = plan_genuine_heal(sides([E1, E2], [E3], [E4]), leader=P, members=MEMBERS)
    assert plan is not None and not plan.genuine
    assert plan.coordinator == P
    assert plan.keep == (E1, E2) and plan.reboot == (E3, E4)
    # ekka 0.8.1.9 gives up: so does a genuine_only leader
    only = plan_genuine_heal(
        sides([E1, E2], [E3], [E4]), leader=P, members=MEMBERS, genuine_only=True
    )
    assert only is not None and only.coordinator is None


def test_a_first_view_that_sees_everyone_goes_to_its_genuine_coordinator() -> None:
    views = {E1: view([E1, E2, E3]), E2: view([E1, E2], [E3]), E3: view([E1, E3], [E2])}
    plan = plan_genuine_heal(views, leader=P, members=MEMBERS)
    assert plan is not None and plan.genuine  # genuine: reboot everyone else
    assert plan.coordinator == E1 and plan.reboot == (E2, E3)


def test_overlapping_views_keep_the_largest_connected_group() -> None:
    views = {
        E1: view([E1, E2, E3], [E4]),
        E2: view([E1, E2], [E3, E4]),
        E3: view([E1, E3, E4], [E2]),
        E4: view([E3, E4], [E1, E2]),
    }
    plan = plan_genuine_heal(views, leader=P, members=MEMBERS)
    assert plan is not None and not plan.genuine and plan.coordinator == P
    assert plan.keep == (E1, E2) and plan.reboot == (E3, E4)


def test_a_silent_genuine_node_is_neither_kept_nor_rebooted() -> None:
    views = {**sides([E1, E2], [E3]), E4: None}
    plan = plan_genuine_heal(views, leader=P, members=MEMBERS)
    assert plan is not None and not plan.genuine and plan.coordinator == P
    assert plan.reboot == (E3,) and plan.unreachable == (E4,)
    assert E4 not in plan.keep


def test_is_running_is_true_for_a_genuine_node_monitor() -> None:
    ekka = Atom("ekka")
    assert is_running_reply(ekka, caller_is_pyekka=False, caller_is_node_monitor=True)
    assert not is_running_reply(ekka, caller_is_pyekka=False)  # the join path
    assert not is_running_reply(
        ekka, caller_is_pyekka=False, caller_is_node_monitor=True, running=False
    )
    assert not is_running_reply(Atom("emqx"), caller_is_pyekka=False, caller_is_node_monitor=True)


def test_only_a_registered_name_of_ekka_node_monitor_counts() -> None:
    name = Atom("registered_name")
    assert is_node_monitor_reply((name, Atom("ekka_node_monitor")))
    for reply in [
        (name, Atom("ekka_membership")),
        [],  # process_info of an unregistered process
        None,
        Atom("undefined"),  # a dead process
        (Atom("badrpc"), Atom("timeout")),
        (name, Atom("ekka_node_monitor"), 1),
        (Atom("status"), Atom("ekka_node_monitor")),
    ]:
        assert not is_node_monitor_reply(reply)
