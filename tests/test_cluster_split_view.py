"""Autoheal's split view and the genuine coordinator's decision (spec 8.2, 16.6)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from pyekka.cluster.member import Member
from pyekka.cluster.split_view import (
    ClusterView,
    HealAction,
    autoheal_delay,
    cluster_view,
    heal_partition,
    parse_split_view,
    split_view,
    split_view_coordinator,
    split_view_term,
)
from pyekka.term import Atom, format_term, parse_term
from pyekka.testing.otp import OtpRuntime

A, B, C, D, E = (Atom(f"{x}@h") for x in "abcde")


def view(running: Sequence[Atom], stopped: Sequence[Atom] = ()) -> ClusterView:
    """A cluster view from two node lists."""
    return ClusterView(tuple(running), tuple(stopped))


def test_cluster_view_sorts_both_lists() -> None:
    assert cluster_view([C, A], [B, A, D, C]) == view([A, C], [B, D])
    assert cluster_view([A], [A]) == view([A])
    assert view([A], [B]).to_term() == ([A], [B])


def test_views_are_deduplicated_and_the_largest_comes_first() -> None:
    views = [view([C], [A, B]), view([A, B], [C]), view([A, B], [C])]
    assert split_view(views, A) == [view([A, B], [C]), view([C], [A, B])]


def test_on_equal_length_the_leaders_view_comes_first() -> None:
    views = [view([A, B], [C, D]), view([C, D], [A, B])]
    assert split_view(views, C) == [view([C, D], [A, B]), view([A, B], [C, D])]
    assert split_view(views, A) == [view([A, B], [C, D]), view([C, D], [A, B])]


def test_equal_length_views_without_the_leader_come_out_reversed() -> None:
    """What ``lists:sort/2`` does with ekka's inconsistent ordering fun (checked below)."""
    views = [view([B]), view([C]), view([D]), view([A, E])]
    assert split_view(views, A) == [view([A, E]), view([D]), view([C]), view([B])]


@pytest.mark.parametrize(
    ("views", "me", "action"),
    [
        ([], A, HealAction()),
        ([view([A, B])], A, HealAction()),
        # the first view sees nobody stopped: reboot all of it but the coordinator
        ([view([A, B, C]), view([A], [B, C])], A, HealAction((B, C))),
        ([view([A, B, C]), view([A], [B, C])], B, HealAction((A, C))),
        # a clean two-way split: reboot the minority
        ([view([A, B], [C]), view([C], [A, B])], A, HealAction((C,))),
        # anything else: genuine ekka gives up
        ([view([A], [B])], A, HealAction(healable=False)),
        ([view([A, B], [C]), view([C], [A])], A, HealAction(healable=False)),
        ([view([A], [B, C]), view([B], [A, C]), view([C], [A, B])], A, HealAction(healable=False)),
    ],
)
def test_heal_partition_table(views: list[ClusterView], me: Atom, action: HealAction) -> None:
    assert heal_partition(views, me) == action


def test_split_view_coordinator_is_the_oldest_of_the_first_view() -> None:
    members = [Member(A, b"\x05"), Member(B, b"\x02"), Member(C, b"\x01")]
    sv = split_view([view([A, B], [C]), view([C], [A, B])], A)
    assert split_view_coordinator(sv, members) == B
    assert split_view_coordinator([], members) is None


def test_split_view_term_round_trip() -> None:
    sv = [view([A, B], [C]), view([C], [A, B])]
    term = split_view_term(sv)
    assert term == [([A, B], [C]), ([C], [A, B])]
    assert parse_split_view(term) == sv


@pytest.mark.parametrize(
    "term",
    [None, ([A], [B]), [([A], [B], [C])], [([A], b"b")], [([A], [b"b"])], [[[A], [B]]]],
)
def test_parse_split_view_rejects(term: Any) -> None:
    with pytest.raises(ValueError):
        parse_split_view(term)


@pytest.mark.parametrize(("setting", "delay"), [(True, 15000), (False, None), (500, 500)])
def test_autoheal_delay(setting: Any, delay: int | None) -> None:
    assert autoheal_delay(setting) == delay


def test_autoheal_delay_rejects() -> None:
    with pytest.raises(ValueError):
        autoheal_delay("on")


def _random_view_sets(seed: int, count: int) -> list[list[ClusterView]]:
    rnd = random.Random(seed)
    nodes = [Atom(f"n{i}@h") for i in range(7)]
    out = []
    for _ in range(count):
        views = []
        for _ in range(rnd.randint(1, 12)):
            running = [n for n in nodes if rnd.random() < 0.5]
            stopped = [n for n in nodes if n not in running and rnd.random() < 0.7]
            views.append(view(running, stopped))
        out.append(views)
    return out


def test_split_view_matches_lists_sort_in_a_vm(otp: OtpRuntime) -> None:
    """ekka's ``compare_view`` ordering, run by a real ``lists:sort/2`` after ``usort``.

    The ordering fun is the one spec 8.2 describes: more running nodes first; for an
    equal number, ``true`` when the first view's running list holds the leader.
    """
    leader = Atom("n0@h")
    cases = _random_view_sets(8_2_4, 300)
    terms = [split_view_term(views) for views in cases]
    expr = (
        f"Cases = {format_term(terms)}, Leader = {format_term(leader)}, "
        "Cmp = fun({R1, _}, {R2, _}) -> L1 = length(R1), L2 = length(R2), "
        "if L1 > L2 -> true; L1 == L2 -> lists:member(Leader, R1); true -> false end end, "
        'io:format("~w.~n", [[lists:sort(Cmp, lists:usort(C)) || C <- Cases]])'
    )
    expected = parse_term(otp.eval_text(expr).strip())
    got = [split_view_term(split_view(views, leader)) for views in cases]
    assert got == expected
