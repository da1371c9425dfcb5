"""The autoheal leader's plan: genuine where ekka heals, pyekka's extension where it gives up."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from pyekka.cluster.heal_plan import (
    HEAL_CLUSTER,
    HEAL_PARTITION,
    largest_connected_group,
    maximal_groups,
    mutual_links,
    plan_heal,
)
from pyekka.cluster.member import Member, MemberStatus
from pyekka.cluster.split_view import ClusterView
from pyekka.term import Atom

A, B, C, D, E, F = (Atom(f"{x}@h") for x in "abcdef")


def view(running: Sequence[Atom], stopped: Sequence[Atom] = ()) -> ClusterView:
    """A cluster view from two node lists."""
    return ClusterView(tuple(running), tuple(stopped))


def sides(*groups: Sequence[Atom]) -> dict[Atom, ClusterView]:
    """Views of a clean partition into ``groups``: each sees its own side running."""
    everyone = [n for g in groups for n in g]
    out = {}
    for g in groups:
        for n in g:
            out[n] = view(sorted(g, key=str), sorted((x for x in everyone if x not in g), key=str))
    return out


def aged(*nodes: Atom) -> list[Member]:
    """Members whose guids make them oldest first, in the order given."""
    return [Member(n, bytes([i]) * 16) for i, n in enumerate(nodes)]


def test_nothing_to_heal() -> None:
    views = {n: view([A, B, C]) for n in (A, B, C)}
    assert plan_heal(views, leader=A, members=aged(A, B, C)) is None
    assert plan_heal({}, leader=A) is None
    assert plan_heal({A: None}, leader=A) is None


def test_a_clean_two_way_split_is_healed_as_genuine_ekka_does() -> None:
    views = sides([A, B], [C])
    plan = plan_heal(views, leader=A, members=aged(B, A, C))
    assert plan is not None and plan.genuine
    assert plan.reboot == (C,) and plan.keep == (A, B)
    assert plan.coordinator == B  # the oldest of the first view
    assert plan.message == (HEAL_PARTITION, [([A, B], [C]), ([C], [A, B])])


def test_first_view_seeing_everyone_reboots_everyone_but_the_coordinator() -> None:
    views = {A: view([A, B, C]), B: view([A, B, C]), C: view([C], [A, B])}
    plan = plan_heal(views, leader=A, members=aged(A, B, C))
    assert plan is not None and plan.genuine
    assert plan.coordinator == A
    assert plan.reboot == (B, C)


def test_three_sides_keep_the_largest() -> None:
    views = sides([A], [B, C, D], [E, F])
    plan = plan_heal(views, leader=A, members=aged(A, B, C, D, E, F))
    assert plan is not None and not plan.genuine
    assert plan.keep == (B, C, D)
    assert plan.reboot == (A, E, F)
    assert plan.coordinator == B  # the leader is not kept: the oldest kept member
    assert plan.message[0] == HEAL_CLUSTER
    assert plan.message[1] == [A, E, F]
    assert plan.message[2][0] == (A, [A], [B, C, D, E, F])


def test_ties_prefer_the_leaders_group_then_the_oldest_then_term_order() -> None:
    views = sides([A, B], [C, D], [E, F])
    members = aged(E, C, A, B, D, F)
    assert plan_heal(views, leader=C, members=members).keep == (C, D)
    assert plan_heal(views, leader=Atom("z@h"), members=members).keep == (E, F)
    assert plan_heal(views, leader=Atom("z@h")).keep == (A, B)


def test_overlapping_views_that_genuine_ekka_heals_are_healed_its_way() -> None:
    """B runs with A and C, which do not run with each other: B's view sees nobody
    stopped, so genuine ekka reboots every node but the coordinator."""
    views = {A: view([A, B], [C]), B: view([A, B, C]), C: view([B, C], [A])}
    plan = plan_heal(views, leader=B, members=aged(A, B, C))
    assert plan is not None and plan.genuine
    assert plan.coordinator == A and plan.reboot == (B, C)


def test_overlapping_views_keep_a_fully_connected_group() -> None:
    """Genuine ekka gives up here (four views, the first one sees D stopped)."""
    views = {
        A: view([A, B], [C, D]),
        B: view([A, B, C], [D]),
        C: view([B, C], [A, D]),
        D: view([D], [A, B, C]),
    }
    plan = plan_heal(views, leader=B, members=aged(A, B, C, D))
    assert plan is not None and not plan.genuine
    assert plan.keep == (A, B)  # {A, B} and {B, C} both hold the leader; A is older
    assert plan.reboot == (C, D)
    assert plan.coordinator == B


def test_a_dead_node_neither_blocks_nor_is_rebooted() -> None:
    """The oldest member is gone: genuine ekka waits for it forever (spec 16.6)."""
    views: dict = sides([B, C], [D])
    views[A] = None
    plan = plan_heal(views, leader=B, members=aged(A, B, C, D))
    assert plan is not None and not plan.genuine
    assert plan.unreachable == (A,)
    assert plan.keep == (B, C) and plan.reboot == (D,)
    assert plan.coordinator == B


def test_can_coordinate_filters_coordinators() -> None:
    views = sides([A], [B, C, D], [E])
    plan = plan_heal(views, leader=A, members=aged(B, C, D), can_coordinate=lambda n: n == D)
    assert plan.coordinator == D
    plan = plan_heal(views, leader=A, members=aged(B, C, D), can_coordinate=lambda n: False)
    assert plan.coordinator is None


def test_a_first_view_without_a_known_member_falls_back_to_the_extension() -> None:
    views = sides([A, B], [C])
    plan = plan_heal(views, leader=A, members=[])
    assert plan is not None and not plan.genuine
    assert plan.keep == (A, B) and plan.reboot == (C,) and plan.coordinator == A


def test_maximal_groups_of_a_small_graph() -> None:
    links = mutual_links(
        {A: view([A, B, C]), B: view([A, B, C]), C: view([A, B, C, D]), D: view([C, D])}
    )
    assert links[C] == {A, B, D}
    assert sorted(sorted(map(str, g)) for g in maximal_groups(links)) == [
        ["a@h", "b@h", "c@h"],
        ["c@h", "d@h"],
    ]


# -- properties --

NODES = [Atom(f"n{i}@h") for i in range(7)]


@st.composite
def view_sets(draw: st.DrawFn) -> tuple[dict[Atom, ClusterView | None], list[Member]]:
    nodes = draw(st.lists(st.sampled_from(NODES), min_size=1, max_size=7, unique=True))
    views: dict[Atom, ClusterView | None] = {}
    for n in nodes:
        if draw(st.integers(0, 9)) == 0:
            views[n] = None
            continue
        running = sorted({n} | set(draw(st.lists(st.sampled_from(nodes)))), key=str)
        stopped = sorted((x for x in nodes if x not in running), key=str)
        views[n] = view(running, stopped)
    members = [
        Member(n, draw(st.one_of(st.none(), st.binary(min_size=16, max_size=16))))
        for n in draw(st.lists(st.sampled_from(nodes), unique=True))
    ]
    return views, members


def _connected(group: Sequence[Atom], views: dict) -> bool:
    return all(b in views[a].running and a in views[b].running for a, b in combinations(group, 2))


@settings(max_examples=300)
@given(view_sets(), st.randoms(use_true_random=False))
def test_plan_properties(case: tuple[dict, list[Member]], rnd) -> None:
    views, members = case
    answered = {n for n, v in views.items() if v is not None}
    leader = min(answered, key=str) if answered else NODES[0]
    plan = plan_heal(views, leader=leader, members=members)
    # independent of the order of the views and of the members
    items = list(views.items())
    rnd.shuffle(items)
    shuffled_members = members[:]
    rnd.shuffle(shuffled_members)
    assert plan_heal(dict(items), leader=leader, members=shuffled_members) == plan
    if plan is None:
        return
    assert set(plan.keep) | set(plan.reboot) == answered
    assert not set(plan.keep) & set(plan.reboot)
    assert set(plan.unreachable) == set(views) - answered
    assert plan.reboot
    if not plan.genuine:
        assert plan.coordinator in plan.keep
        assert _connected(plan.keep, views)
        # no larger fully connected group exists among the answering nodes
        for size in range(len(plan.keep) + 1, len(answered) + 1):
            for group in combinations(sorted(answered, key=str), size):
                assert not _connected(group, views)


@given(view_sets())
def test_largest_group_is_a_maximal_group(case: tuple[dict, list[Member]]) -> None:
    views = {n: v for n, v in case[0].items() if v is not None}
    group = largest_connected_group(views, NODES[0], case[1])
    if views:
        assert frozenset(group) in maximal_groups(mutual_links(views))
    else:
        assert group == ()


def test_down_members_still_count_for_age() -> None:
    views = sides([A, B], [C, D], [E])
    members = [Member(C, b"\x00" * 16, status=MemberStatus.DOWN), *aged(A, B, D, E)[1:]]
    assert plan_heal(views, leader=Atom("z@h"), members=members).keep == (C, D)
