"""Membership and partition event terms (spec 3.4) and the node monitor's casts (6.2, 8.2, 17)."""

from __future__ import annotations

from typing import Any

import pytest

from pyekka.cluster.events import (
    EventType,
    MnesiaEvent,
    NodeEvent,
    PartitionEvent,
    event_from_term,
)
from pyekka.cluster.member import MemberStatus
from pyekka.cluster.monitor_messages import (
    Confirm,
    HealCluster,
    HealPartition,
    Heartbeat,
    ReportPartition,
    Suspect,
    parse_monitor_cast,
)
from pyekka.cluster.split_view import ClusterView
from pyekka.term import Atom, parse_term

N1, N2 = Atom("n1@h"), Atom("n2@h")


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (NodeEvent(MemberStatus.UP, N1), "{membership,{node,up,'n1@h'}}"),
        (NodeEvent(MemberStatus.LEAVING, N1), "{membership,{node,leaving,'n1@h'}}"),
        (MnesiaEvent("down", N1), "{membership,{mnesia,down,'n1@h'}}"),
        (PartitionEvent("occurred", N1), "{partition,{occurred,'n1@h'}}"),
        (PartitionEvent("healed", N1), "{partition,{healed,'n1@h'}}"),
    ],
)
def test_event_terms(event: Any, text: str) -> None:
    term = parse_term(text)
    assert event.to_term() == term
    assert event_from_term(term) == event
    assert event.type is (EventType.PARTITION if text.startswith("{p") else EventType.MEMBERSHIP)


@pytest.mark.parametrize(
    "text",
    [
        "{membership,{node,sleepy,'n1@h'}}",
        '{membership,{mnesia,up,<<"n1">>}}',
        "{partition,{split,'n1@h'}}",
        "{partition,{occurred,'n1@h'},x}",
        "{other,{node,up,'n1@h'}}",
        "membership",
    ],
)
def test_event_from_term_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        event_from_term(parse_term(text))


def test_event_type_atoms() -> None:
    assert EventType.MEMBERSHIP.atom == Atom("membership")
    assert EventType.PARTITION.atom == Atom("partition")


@pytest.mark.parametrize(
    ("message", "text"),
    [
        (Heartbeat(N1), "{heartbeat,'n1@h'}"),
        (Suspect(N1, N2), "{suspect,'n1@h','n2@h'}"),
        (Confirm(N2, "down"), "{confirm,'n2@h',down}"),
        (ReportPartition(N1), "{report_partition,'n1@h'}"),
        (
            HealPartition((ClusterView((N1,), (N2,)), ClusterView((N2,), (N1,)))),
            "{heal_partition,[{['n1@h'],['n2@h']},{['n2@h'],['n1@h']}]}",
        ),
        (HealPartition(()), "{heal_partition,[]}"),
        (
            HealCluster((N2,), [(N1, [N1], [N2])]),
            "{heal_cluster,['n2@h'],[{'n1@h',['n1@h'],['n2@h']}]}",
        ),
    ],
)
def test_monitor_casts(message: Any, text: str) -> None:
    term = parse_term(text)
    assert message.to_term() == term
    assert parse_monitor_cast(term) == message


@pytest.mark.parametrize(
    "text",
    [
        "heartbeat",
        "{}",
        '{heartbeat,<<"n1">>}',
        "{suspect,'n1@h'}",
        "{confirm,'n2@h',maybe}",
        "{report_partition,'n1@h','n2@h'}",
        "{heal_partition,[{['n1@h']}]}",
        "{heal_partition,{['n1@h'],[]}}",
        '{heal_cluster,["n2"],[]}',
        "{create_splitview,'n1@h'}",
    ],
)
def test_malformed_monitor_casts_are_refused(text: str) -> None:
    assert parse_monitor_cast(parse_term(text)) is None
